package web

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/valuesschema"
)

// formField is one input of an application as an HTML control, with what the chart's values schema
// says of it. The browser checks what the attributes say (required, a number between a minimum and a
// maximum, one of a list, a pattern); the deployer checks everything again, and what it refuses is shown
// next to the field it names.
type formField struct {
	Input       string // the application's input name, a dotted values path
	ID          string // the control's id
	HTMLType    string // text, number, checkbox, select or textarea
	Step        string // for numbers, and selects of numbers: "1" for integers, "any" otherwise
	Min, Max    string
	MinLength   int
	MaxLength   int
	Pattern     string
	Options     []string // a select's values
	Label       string
	Help        string
	Placeholder string // the chart's default, which applies when the field is left empty
	Required    bool
	Value       string
	Checked     bool
	Error       string
}

// installForm is the install form of one application.
type installForm struct {
	Fields    []formField
	ProjectID string
	Error     string
	// SchemaNote says why the chart's values schema is not in the form, when it could not be read.
	SchemaNote string
}

// fieldPrefix names the form fields that carry inputs: "in.service.port" is the input service.port.
const fieldPrefix = "in."

// newInstallForm is the empty form of app: its inputs with their defaults, shaped by schema (nil when
// there is none) and, for a vm application, the SSH keys every guest accepts. The form offers the
// application's inputs only: its publisher chose what a consumer may set, and the API refuses any other.
func newInstallForm(app *marketplace.Application, schema *valuesschema.Schema) installForm {
	var f installForm
	inputs := app.Inputs
	if app.Deployment.Type == marketplace.TypeVM && !hasInput(inputs, marketplace.SSHKeysInput) {
		inputs = append(inputs[:len(inputs):len(inputs)], marketplace.Input{Name: marketplace.SSHKeysInput, Type: "string",
			Description: "Public SSH keys the VM accepts, one per line (ssh-ed25519 AAAA… you@laptop)."})
	}
	for i, in := range inputs {
		f.Fields = append(f.Fields, newField(i, in, schema))
	}
	return f
}

func newField(i int, in marketplace.Input, schema *valuesschema.Schema) formField {
	ff := formField{Input: in.Name, ID: fmt.Sprintf("input-%d", i), Label: in.Name, Help: in.Description, Required: in.Required}
	var sf valuesschema.Field
	if schema != nil {
		if got := schema.Field(in.Name); got != nil {
			sf = *got
		}
	}
	if ff.Help == "" {
		ff.Help = sf.Description
	}
	switch in.Type {
	case "integer":
		ff.HTMLType, ff.Step = "number", "1"
	case "number":
		ff.HTMLType, ff.Step = "number", "any"
	case "boolean":
		ff.HTMLType = "checkbox"
	default:
		ff.HTMLType = "text"
		if in.Name == marketplace.SSHKeysInput {
			ff.HTMLType = "textarea"
		}
		ff.MinLength, ff.MaxLength = sf.MinLength, sf.MaxLength
		// The browser matches a pattern against the whole value, JSON schema anywhere in it: only an
		// anchored pattern means the same to both.
		if strings.HasPrefix(sf.Pattern, "^") && strings.HasSuffix(sf.Pattern, "$") {
			ff.Pattern = sf.Pattern
		}
	}
	if ff.HTMLType == "number" {
		ff.Min, ff.Max = sf.Minimum, sf.Maximum
	}
	if len(sf.Enum) > 0 && ff.HTMLType != "checkbox" {
		ff.HTMLType, ff.Options = "select", sf.Enum
	}
	// The schema requires it unless a default fills it: the application's, or the chart's values.yaml.
	if sf.Required && !sf.InValues {
		ff.Required = true
	}
	switch {
	case in.Default != nil:
		if b, ok := in.Default.(bool); ok {
			ff.Checked = b
		} else {
			ff.Value = fmt.Sprint(in.Default)
		}
		ff.Required = false
	case sf.HasDefault:
		// An unchecked box sends false, so a box starts as the chart would have it; other fields stay empty
		// and the chart's default applies, shown as the placeholder.
		if b, ok := sf.Default.(bool); ok {
			ff.Checked = b
		} else {
			ff.Placeholder = valuesschema.Text(sf.Default)
		}
	}
	return ff
}

func hasInput(inputs []marketplace.Input, name string) bool {
	for _, in := range inputs {
		if in.Name == name {
			return true
		}
	}
	return false
}

// fill takes the consumer's values from a submitted form into the fields, and returns them as the
// install request's inputs. A value that is not of the input's type is passed on as written: the
// deployer refuses it with a message that names the input.
func (f *installForm) fill(form url.Values) map[string]any {
	inputs := map[string]any{}
	f.ProjectID = form.Get("project")
	for i := range f.Fields {
		ff := &f.Fields[i]
		raw := form.Get(fieldPrefix + ff.Input)
		if ff.HTMLType == "checkbox" {
			ff.Checked = raw == "on" || raw == "true"
			inputs[ff.Input] = ff.Checked
			continue
		}
		ff.Value = raw
		if strings.TrimSpace(raw) == "" {
			continue // the default, or "required" from the deployer
		}
		switch ff.Step {
		case "1":
			if n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64); err == nil {
				inputs[ff.Input] = n
				continue
			}
		case "any":
			if n, err := strconv.ParseFloat(strings.TrimSpace(raw), 64); err == nil {
				inputs[ff.Input] = n
				continue
			}
		}
		inputs[ff.Input] = raw
	}
	return inputs
}

// place puts a refusal next to the field it names (the deployer's messages start with inputs.<name>),
// or above the form.
func (f *installForm) place(message string) {
	for i := range f.Fields {
		name := "inputs." + f.Fields[i].Input
		if rest, ok := strings.CutPrefix(message, name); ok && (rest == "" || rest[0] == ':' || rest[0] == ' ') {
			f.Fields[i].Error = message
			return
		}
	}
	f.Error = message
}
