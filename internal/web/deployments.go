package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

type deploymentsView struct {
	Projects    []*marketplace.Project
	Deployments []*marketplace.Deployment
	Total       int
	Error       string
	// Switcher leads to the caller's organizations' pages.
	Switcher switcher
}

// deploymentsPage lists the caller's projects and deployments, newest first.
func (s *server) deploymentsPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.deploymentsView(r)
	if err != nil {
		s.domainError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "deployments", "My deployments", v)
}

func (s *server) deploymentsView(r *http.Request) (*deploymentsView, error) {
	c := marketplace.CallerFrom(r.Context())
	v := &deploymentsView{}
	var err error
	if !c.Operator {
		if v.Projects, _, err = s.Store.FindProjectsByUser(r.Context(), c.UserID, marketplace.Page{Number: 1, Limit: 200}); err != nil {
			return nil, err
		}
		if v.Switcher, err = s.switcherOf(r, 0); err != nil {
			return nil, err
		}
	}
	v.Deployments, v.Total, err = s.Store.FindDeployments(r.Context(), marketplace.DeploymentFilter{ConsumerID: c.UserID, Page: marketplace.Page{Number: 1, Limit: 100}})
	return v, err
}

// createProject makes a project of the caller's.
func (s *server) createProject(w http.ResponseWriter, r *http.Request) {
	c := marketplace.CallerFrom(r.Context())
	p := &marketplace.Project{Name: strings.TrimSpace(r.PostFormValue("name")), UserID: c.UserID}
	err := marketplace.ValidateName("name", p.Name)
	if err == nil && c.Operator {
		err = marketplace.Errorf(marketplace.EINVALID, "the operator has no projects: sign in as a user")
	}
	if err == nil {
		err = s.Store.CreateProject(r.Context(), p)
	}
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			s.serverError(w, r, err)
			return
		}
		v, verr := s.deploymentsView(r)
		if verr != nil {
			s.domainError(w, r, verr)
			return
		}
		v.Error = "Project " + marketplace.ErrorMessage(err)
		s.render(w, r, statusOf(err), "deployments", "My deployments", v)
		return
	}
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// deploymentView is everything a deployment's page shows; its live part is re-read every poll. Its
// revisions and usage records are a page each, the newest first: a deployment with thousands of them
// is read a page at a time.
type deploymentView struct {
	D         *marketplace.Deployment
	App       *marketplace.Application
	Versions  []*marketplace.AppVersion
	Revisions []*marketplace.Revision
	Usage     []*marketplace.UsageRecord
	// RevisionsPager and UsagePager place the pages shown in their lists.
	RevisionsPager, UsagePager pager
	Accrued                    marketplace.Money
	Console                    string
	Currency                   string
	// CSRF is the session's token, for the actions' forms, which change with the status.
	CSRF string
}

// deploymentPageItems is how many revisions, usage records and versions to upgrade to a deployment's
// page shows at once.
const deploymentPageItems = 20

func (s *server) deploymentView(r *http.Request, id int64, full bool) (*deploymentView, error) {
	ctx := r.Context()
	d, err := s.Store.FindDeploymentByID(ctx, id)
	if err != nil {
		return nil, err
	}
	v := &deploymentView{D: d, Currency: s.Currency}
	if sess := sessionFrom(ctx); sess != nil {
		v.CSRF = sess.CSRFToken
	}
	if d.Status == marketplace.StatusInstalled {
		d.Health = s.Deployer.Health(ctx, d)
	}
	// The live part needs only the totals; the whole page a page of the records too.
	v.UsagePager = pagerOf(r, "usage_page", deploymentPageItems, "usage records", "Newer", "Older")
	usagePage := v.UsagePager.page()
	if !full {
		usagePage = marketplace.Page{Number: 1, Limit: 1}
	}
	var totals marketplace.UsageTotals
	if v.Usage, totals, err = s.Store.FindUsageRecords(ctx, marketplace.UsageFilter{UserID: d.ConsumerID, DeploymentID: d.ID,
		NewestFirst: true, Page: usagePage}); err != nil {
		return nil, err
	}
	v.Accrued = totals.Accrued
	v.UsagePager = v.UsagePager.of(r, "usage_page", totals.Records, len(v.Usage))
	if marketplace.Offers(d.Type).Console && s.Consoles != nil && d.Placement.VMName != "" {
		if console, err := s.Consoles.Console(ctx, d, 4096); err == nil {
			v.Console = console
		}
	}
	// The versions offered for an upgrade (the newest ones taking installs); the actions are part of the
	// live section, as they depend on the status.
	if d.Status == marketplace.StatusInstalled {
		if v.Versions, _, err = s.Store.FindVersions(ctx, marketplace.VersionFilter{ApplicationID: d.ApplicationID, Open: true, NewestFirst: true,
			Page: marketplace.Page{Number: 1, Limit: 50}}); err != nil && marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
			return nil, err
		}
	}
	if !full {
		return v, nil
	}
	if v.App, err = s.Store.FindAppByID(ctx, d.ApplicationID); err != nil && marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		return nil, err
	}
	v.RevisionsPager = pagerOf(r, "revisions_page", deploymentPageItems, "revisions", "Newer", "Older")
	var revisions int
	if v.Revisions, revisions, err = s.Store.FindRevisions(ctx, marketplace.RevisionFilter{DeploymentID: d.ID, NewestFirst: true,
		Page: v.RevisionsPager.page()}); err != nil {
		return nil, err
	}
	v.RevisionsPager = v.RevisionsPager.of(r, "revisions_page", revisions, len(v.Revisions))
	return v, nil
}

// deploymentPage shows one deployment; its status part polls itself until it stops changing.
func (s *server) deploymentPage(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathID(w, r)
	if !ok {
		return
	}
	v, err := s.deploymentView(r, id, true)
	if err != nil {
		s.domainError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "deployment", fmt.Sprintf("Deployment %d", id), v)
}

// deploymentStatus is the live part of a deployment's page, which htmx swaps in every second or two.
func (s *server) deploymentStatus(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathID(w, r)
	if !ok {
		return
	}
	v, err := s.deploymentView(r, id, false)
	if err != nil {
		s.domainError(w, r, err)
		return
	}
	s.renderPart(w, r, "deployment", v)
}

type confirmView struct {
	D                 *marketplace.Deployment
	Action            string
	Version           string
	Revision          string
	What, Consequence string
}

// changeDeployment asks first and then acts: a delete, upgrade or rollback posted without "confirmed"
// shows what it will do and a button that does it.
func (s *server) changeDeployment(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.pathID(w, r)
		if !ok {
			return
		}
		d, err := s.Store.FindDeploymentByID(r.Context(), id)
		if err != nil {
			s.domainError(w, r, err)
			return
		}
		v := confirmView{D: d, Action: action, Version: r.PostFormValue("version"), Revision: r.PostFormValue("revision")}
		number := func(field, value string) (int, bool) {
			if value == "" {
				return 0, true
			}
			n, err := strconv.Atoi(value)
			if err != nil || n < 1 {
				s.fail(w, r, http.StatusUnprocessableEntity, field+" must be a whole number from 1.")
				return 0, false
			}
			return n, true
		}
		version, ok := number("version", v.Version)
		if !ok {
			return
		}
		revision, ok := number("revision", v.Revision)
		if !ok {
			return
		}
		switch action {
		case "delete":
			v.What = fmt.Sprintf("Delete deployment %d", d.ID)
			v.Consequence = "Billing stops now and its resources are removed. This cannot be undone."
		case "upgrade":
			v.What = fmt.Sprintf("Upgrade deployment %d to version %s", d.ID, orLatest(v.Version))
			v.Consequence = "The running revision keeps running until the new one is ready; if the new one fails, it stays."
		case "rollback":
			v.What = fmt.Sprintf("Roll deployment %d back to revision %s", d.ID, orPrevious(v.Revision))
			v.Consequence = "A new revision with that revision's version and inputs is installed."
		}
		if r.PostFormValue("confirmed") != "yes" {
			s.render(w, r, http.StatusOK, "confirm", v.What, v)
			return
		}
		switch action {
		case "delete":
			_, err = s.Deployer.RequestUninstall(r.Context(), d.ID)
		case "upgrade":
			_, err = s.Deployer.RequestUpgrade(r.Context(), d.ID, version, nil)
		case "rollback":
			_, err = s.Deployer.RequestRollback(r.Context(), d.ID, revision)
		}
		if err != nil {
			s.domainError(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/deployments/%d", d.ID), http.StatusSeeOther)
	}
}

func orLatest(v string) string {
	if v == "" {
		return "latest"
	}
	return v
}

func orPrevious(v string) string {
	if v == "" {
		return "before the current one"
	}
	return v
}

// deploymentAction routes /deployments/{id}/{action}.
func (s *server) deploymentAction(w http.ResponseWriter, r *http.Request) {
	switch action := chi.URLParam(r, "action"); action {
	case "delete", "upgrade", "rollback":
		s.changeDeployment(action)(w, r)
	default:
		s.fail(w, r, http.StatusNotFound, "There is nothing at this address.")
	}
}
