package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/marketplace/marketplace/internal/deploy"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// formField is one input of an application as an HTML control. The browser checks what the attributes
// say (required, a number, a step); the deployer checks everything again, and what it refuses is shown
// next to the field it names.
type formField struct {
	Input    string // the application's input name, a dotted values path
	ID       string // the control's id
	HTMLType string // text, number, checkbox or textarea
	Step     string
	Label    string
	Help     string
	Required bool
	Value    string
	Checked  bool
	Error    string
}

// installForm is the install form of one application.
type installForm struct {
	Fields    []formField
	ProjectID string
	Error     string
}

// fieldPrefix names the form fields that carry inputs: "in.service.port" is the input service.port.
const fieldPrefix = "in."

// newInstallForm is the empty form of app: its inputs with their defaults, and, for a vm application,
// the SSH keys every guest accepts.
func newInstallForm(app *marketplace.Application) installForm {
	var f installForm
	inputs := app.Inputs
	if app.Deployment.Type == marketplace.TypeVM && !hasInput(inputs, marketplace.SSHKeysInput) {
		inputs = append(inputs[:len(inputs):len(inputs)], marketplace.Input{Name: marketplace.SSHKeysInput, Type: "string",
			Description: "Public SSH keys the VM accepts, one per line (ssh-ed25519 AAAA… you@laptop)."})
	}
	for i, in := range inputs {
		ff := formField{Input: in.Name, ID: fmt.Sprintf("input-%d", i), Label: in.Name, Help: in.Description, Required: in.Required}
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
		}
		if in.Default != nil {
			if b, ok := in.Default.(bool); ok {
				ff.Checked = b
			} else {
				ff.Value = fmt.Sprint(in.Default)
			}
			// A default fills the input when the consumer sets nothing, so the field may stay empty.
			ff.Required = false
		}
		f.Fields = append(f.Fields, ff)
	}
	return f
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

type previewView struct {
	App     *marketplace.Application
	Form    installForm
	Preview *marketplace.Preview
	Project *marketplace.Project
}

// install previews an install (action preview: what it creates and costs, nothing recorded) or requests
// it (action install, from the preview's confirm button).
func (s *server) install(w http.ResponseWriter, r *http.Request) {
	app, ok := s.findApp(w, r)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
		return
	}
	caller := marketplace.CallerFrom(r.Context())
	form := newInstallForm(app)
	inputs := form.fill(r.PostForm)
	refuse := func(message string) {
		v, err := s.appView(r, app)
		if err != nil {
			s.domainError(w, r, err)
			return
		}
		form.place(message)
		v.Form = form
		s.render(w, r, http.StatusUnprocessableEntity, "app", app.Name, v)
	}
	if caller.Operator {
		refuse("The operator has no projects: sign in as the consumer who installs.")
		return
	}
	projectID, err := strconv.ParseInt(form.ProjectID, 10, 64)
	if err != nil || projectID < 1 {
		refuse("Choose a project to install into (create one on the Deployments page).")
		return
	}
	req := deploy.InstallRequest{ConsumerID: caller.UserID, ApplicationID: app.ID, ProjectID: projectID, Inputs: inputs}
	if r.PostForm.Get("action") == "install" {
		d, err := s.Deployer.RequestInstall(r.Context(), req)
		if err != nil {
			if code := marketplace.ErrorCode(err); code == marketplace.EINVALID || code == marketplace.ENOTFOUND || code == marketplace.ECONFLICT {
				refuse(marketplace.RedactURLs(marketplace.ErrorMessage(err)))
				return
			}
			s.domainError(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/deployments/%d", d.ID), http.StatusSeeOther)
		return
	}
	p, err := s.Deployer.PreviewInstall(r.Context(), req)
	if err != nil {
		if code := marketplace.ErrorCode(err); code == marketplace.EINVALID || code == marketplace.ENOTFOUND || code == marketplace.ECONFLICT {
			refuse(marketplace.RedactURLs(marketplace.ErrorMessage(err)))
			return
		}
		s.domainError(w, r, err)
		return
	}
	project, err := s.Store.FindProjectByID(r.Context(), projectID)
	if err != nil {
		s.domainError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "preview", "Confirm: "+app.Name, previewView{App: app, Form: form, Preview: p, Project: project})
}
