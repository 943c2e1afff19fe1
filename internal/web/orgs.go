package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// An organization's pages: /orgs lists the caller's organizations (the switcher between its personal
// account and each of them), /orgs/{org} and the pages under it show one organization's projects,
// deployments, members, bills and applications. Every read and change is the store's call the API
// makes, so the store decides: a stranger finds no organization (404), a member whose role does not
// allow a change is refused it (403) with the store's message, shown on the page, and nothing changes.

// orgListLimit is how many of the caller's organizations the switcher offers.
const orgListLimit = 100

// switcher is the choice between the caller's personal account and each of its organizations.
type switcher struct {
	UserID  int64
	Orgs    []*marketplace.Organization
	Current int64 // 0: personal
}

// orgFrame is what every page of one organization shows around its own part.
type orgFrame struct {
	Org      *marketplace.Organization
	Switcher switcher
	Tab      string
	// Error is a refusal of the change the page was posted to make (the store's message).
	Error string
}

func (s *server) switcherOf(r *http.Request, current int64) (switcher, error) {
	c := marketplace.CallerFrom(r.Context())
	orgs, _, err := s.Store.FindOrganizations(r.Context(), marketplace.Page{Number: 1, Limit: orgListLimit})
	return switcher{UserID: c.UserID, Orgs: orgs, Current: current}, err
}

// orgFrameOf reads the organization of the request's {org} and the switcher; an organization the
// caller is no member of is not found.
func (s *server) orgFrameOf(r *http.Request, tab string) (orgFrame, error) {
	id, err := strconv.ParseInt(chi.URLParam(r, "org"), 10, 64)
	if err != nil || id < 1 {
		return orgFrame{}, marketplace.Errorf(marketplace.ENOTFOUND, "there is nothing at this address")
	}
	f := orgFrame{Tab: tab}
	if f.Org, err = s.Store.FindOrganizationByID(r.Context(), id); err != nil {
		return f, err
	}
	f.Switcher, err = s.switcherOf(r, id)
	return f, err
}

type orgsView struct {
	Switcher switcher
	Error    string
	Name     string
}

// orgsPage lists the caller's organizations with its role in each, and a form to create one.
func (s *server) orgsPage(w http.ResponseWriter, r *http.Request) {
	s.renderOrgs(w, r, http.StatusOK, orgsView{})
}

func (s *server) renderOrgs(w http.ResponseWriter, r *http.Request, status int, v orgsView) {
	var err error
	if v.Switcher, err = s.switcherOf(r, 0); err != nil {
		s.domainError(w, r, err)
		return
	}
	s.render(w, r, status, "orgs", "Organizations", v)
}

// createOrg creates an organization with the caller as its first admin, and opens it.
func (s *server) createOrg(w http.ResponseWriter, r *http.Request) {
	o := &marketplace.Organization{Name: strings.TrimSpace(r.PostFormValue("name"))}
	err := marketplace.ValidateName("name", o.Name)
	if err == nil {
		err = s.Store.CreateOrganization(r.Context(), o)
	}
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			s.serverError(w, r, err)
			return
		}
		s.renderOrgs(w, r, statusOf(err), orgsView{Name: o.Name, Error: "Organization not created: " + marketplace.ErrorMessage(err)})
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/orgs/%d", o.ID), http.StatusSeeOther)
}

// switchAccount opens the pages of the account chosen in the switcher: the personal deployments, or an
// organization's.
func (s *server) switchAccount(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("to")
	if id, err := strconv.ParseInt(to, 10, 64); err == nil && id > 0 {
		http.Redirect(w, r, fmt.Sprintf("/orgs/%d", id), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/deployments", http.StatusSeeOther)
}

type orgView struct {
	orgFrame
	Projects         []*marketplace.Project
	ProjectsTotal    int
	Deployments      []*marketplace.Deployment
	DeploymentsTotal int
	ProjectName      string
}

// orgPageItems is how many projects and deployments an organization's page shows.
const orgPageItems = 100

// orgPage shows an organization's projects and deployments, newest deployments first.
func (s *server) orgPage(w http.ResponseWriter, r *http.Request) {
	s.renderOrg(w, r, http.StatusOK, "")
}

func (s *server) renderOrg(w http.ResponseWriter, r *http.Request, status int, refusal string) {
	v := orgView{}
	var err error
	if v.orgFrame, err = s.orgFrameOf(r, "overview"); err != nil {
		s.domainError(w, r, err)
		return
	}
	v.Error = refusal
	ctx := r.Context()
	if v.Projects, v.ProjectsTotal, err = s.Store.FindProjectsByOrganization(ctx, v.Org.ID, marketplace.Page{Number: 1, Limit: orgPageItems}); err != nil {
		s.domainError(w, r, err)
		return
	}
	if v.Deployments, v.DeploymentsTotal, err = s.Store.FindDeployments(ctx, marketplace.DeploymentFilter{OrganizationID: v.Org.ID,
		Page: marketplace.Page{Number: 1, Limit: orgPageItems}}); err != nil {
		s.domainError(w, r, err)
		return
	}
	s.render(w, r, status, "org", v.Org.Name, v)
}

// createOrgProject creates a project in the organization; the store allows its admins only.
func (s *server) createOrgProject(w http.ResponseWriter, r *http.Request) {
	f, err := s.orgFrameOf(r, "overview")
	if err != nil {
		s.domainError(w, r, err)
		return
	}
	c := marketplace.CallerFrom(r.Context())
	p := &marketplace.Project{Name: strings.TrimSpace(r.PostFormValue("name")), UserID: c.UserID, OrganizationID: f.Org.ID}
	if err = marketplace.ValidateName("name", p.Name); err == nil {
		err = s.Store.CreateProject(r.Context(), p)
	}
	if err != nil {
		s.refuse(w, r, err, func(status int, message string) { s.renderOrg(w, r, status, "Project not created: "+message) })
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/orgs/%d", f.Org.ID), http.StatusSeeOther)
}

// refuse shows a domain error of a change on the page the change was posted from (show), with the API's
// status; an internal error is logged and shown as such.
func (s *server) refuse(w http.ResponseWriter, r *http.Request, err error, show func(status int, message string)) {
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		s.serverError(w, r, err)
		return
	}
	show(status, marketplace.RedactURLs(marketplace.ErrorMessage(err)))
}

type orgAppsView struct {
	orgFrame
	Apps  []*marketplace.Application
	Pager pager
}

// orgAppsPage lists the applications published in the organization's name.
func (s *server) orgAppsPage(w http.ResponseWriter, r *http.Request) {
	v := orgAppsView{Pager: pagerOf(r, "page", orgPageItems, "applications", "Previous", "Next")}
	var err error
	if v.orgFrame, err = s.orgFrameOf(r, "apps"); err != nil {
		s.domainError(w, r, err)
		return
	}
	var total int
	if v.Apps, total, err = s.Store.FindAppsByOrganization(r.Context(), v.Org.ID, v.Pager.page()); err != nil {
		s.domainError(w, r, err)
		return
	}
	v.Pager = v.Pager.of(r, "page", total, len(v.Apps))
	s.render(w, r, http.StatusOK, "orgapps", v.Org.Name+": applications", v)
}
