// Package valuesschema reads an application's values schema (a chart's values.schema.json with its
// values.yaml): it checks a consumer's values against it the way Helm will, and describes the schema of
// one input for a form. The schema is a publisher's document: it is compiled with a loader that loads
// nothing, so a reference outside the schema is never followed.
package valuesschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Schema is a compiled values schema and the package's default values.
type Schema struct {
	doc      map[string]any // the schema document, numbers as json.Number
	compiled *jsonschema.Schema
	defaults map[string]any
}

// New compiles vs. A package without a schema gives a Schema that accepts any values.
func New(vs *marketplace.ValuesSchema) (*Schema, error) {
	s := &Schema{}
	if vs == nil {
		return s, nil
	}
	s.defaults = vs.Defaults
	if len(bytes.TrimSpace(vs.Schema)) == 0 {
		return s, nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(vs.Schema))
	if err != nil {
		return nil, fmt.Errorf("values.schema.json is not JSON: %w", err)
	}
	s.doc, _ = doc.(map[string]any)
	if s.compiled, err = compile(doc); err != nil {
		return nil, err
	}
	return s, nil
}

// compile compiles doc under the name Helm gives it, with a loader that refuses every document: the
// compiler asks a loader only for what is not in the schema itself or among the drafts it carries.
func compile(doc any) (s *jsonschema.Schema, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("values.schema.json does not compile: %v", v)
		}
	}()
	c := jsonschema.NewCompiler()
	c.UseLoader(refusingLoader{})
	const name = "file:///values.schema.json"
	if err := c.AddResource(name, doc); err != nil {
		return nil, fmt.Errorf("values.schema.json: %w", err)
	}
	if s, err = c.Compile(name); err != nil {
		return nil, fmt.Errorf("values.schema.json does not compile: %w", err)
	}
	return s, nil
}

type refusingLoader struct{}

func (refusingLoader) Load(url string) (any, error) {
	if strings.HasPrefix(url, "urn:") {
		return true, nil // as Helm: an unresolved URN allows everything, fetching nothing
	}
	return nil, errors.New("schema references outside the schema are not loaded")
}

// Validate checks values (an application's values: its inputs set at their dotted paths) merged over
// the package's defaults, as Helm will check them. A refusal is EINVALID and names the inputs of app
// it is about ("inputs.service.port: …"), or the values path when no input sets it.
func (s *Schema) Validate(app *marketplace.Application, values map[string]any) error {
	if s.compiled == nil {
		return nil
	}
	doc, err := asJSON(merge(s.defaults, values))
	if err != nil {
		return err
	}
	if err := affordable(s.compiled, doc); err != nil {
		return err
	}
	err = s.compiled.Validate(doc)
	var verr *jsonschema.ValidationError
	if err == nil {
		return nil
	} else if !errors.As(err, &verr) {
		return marketplace.Errorf(marketplace.EINVALID, "the values do not fit the chart's values.schema.json: %v", err)
	}
	inputs := map[string]bool{}
	for _, in := range app.Inputs {
		inputs[in.Name] = true
	}
	var refusals []string
	seen := map[string]bool{}
	for _, l := range leaves(verr) {
		path := strings.Join(l.InstanceLocation, ".")
		if r, ok := l.ErrorKind.(*kind.Required); ok && len(r.Missing) > 0 {
			// "missing property x" is about the object; the field is its child.
			path = strings.TrimPrefix(path+"."+r.Missing[0], ".")
		}
		where := "values." + path
		if path == "" {
			where = "values"
		} else if inputs[path] {
			where = "inputs." + path
		}
		text := where + ": " + l.ErrorKind.LocalizedString(printer) + " (the chart's values.schema.json)"
		if !seen[text] {
			seen[text] = true
			refusals = append(refusals, text)
		}
	}
	// A refusal about an input first: the storefront shows the first one next to its field.
	slices.SortStableFunc(refusals, func(a, b string) int {
		return boolOrder(!strings.HasPrefix(a, "inputs.")) - boolOrder(!strings.HasPrefix(b, "inputs."))
	})
	const shown = 5
	if len(refusals) > shown {
		refusals = append(refusals[:shown], fmt.Sprintf("and %d more", len(refusals)-shown))
	}
	return marketplace.Errorf(marketplace.EINVALID, "%s", strings.Join(refusals, "; "))
}

// asJSON returns values through JSON, as Helm's values are: numbers become json.Number, maps and
// lists the types the validator (and the cost count) know.
func asJSON(values any) (any, error) {
	b, err := json.Marshal(values)
	if err != nil {
		return nil, fmt.Errorf("values as JSON: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("values as JSON: %w", err)
	}
	return doc, nil
}

var printer = message.NewPrinter(language.English)

func boolOrder(b bool) int {
	if b {
		return 1
	}
	return 0
}

// leaves are the errors of verr that have no causes: the refusals themselves, not the "doesn't
// validate with" above them.
func leaves(verr *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(verr.Causes) == 0 {
		return []*jsonschema.ValidationError{verr}
	}
	var out []*jsonschema.ValidationError
	for _, c := range verr.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

// merge returns over laid on base, recursively for maps, as Helm coalesces a consumer's values over a
// chart's: a null in over removes the key.
func merge(base, over map[string]any) map[string]any {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range over {
		if v == nil {
			delete(out, k)
			continue
		}
		bm, bok := out[k].(map[string]any)
		om, ook := v.(map[string]any)
		if bok && ook {
			out[k] = merge(bm, om)
			continue
		}
		out[k] = v
	}
	return out
}
