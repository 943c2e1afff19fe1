package web

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/marketplace/marketplace/internal/deploy"
	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/valuesschema"
)

// installForm is the install form of app, shaped by its chart's values schema when the chart can be
// read; when it cannot, the form has the application's inputs alone and says why.
func (s *server) installForm(r *http.Request, app *marketplace.Application) installForm {
	vs, err := s.Deployer.ValuesSchema(r.Context(), app)
	var schema *valuesschema.Schema
	if err == nil {
		schema, err = valuesschema.New(vs)
	}
	form := newInstallForm(app, schema)
	if err != nil {
		s.Logger.InfoContext(r.Context(), "install form without the values schema", "application", app.ID, "err", err)
		form.SchemaNote = "The chart's values schema could not be read just now, so this form checks less; the install is checked in full when you submit it."
	}
	return form
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
	form := s.installForm(r, app)
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
