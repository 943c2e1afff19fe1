package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

type membersView struct {
	orgFrame
	Members []*marketplace.Member
	Roles   []string
	// User and Role are what the add form was posted with, kept when it is refused.
	User, Role string
}

func memberRoles() []string {
	return []string{marketplace.RoleViewer, marketplace.RoleDeployer, marketplace.RolePublisher, marketplace.RoleAdmin}
}

// membersPage lists the organization's members and, for everyone, the forms to add one, change a role
// and remove one: the store lets its admins do so (and a member leave), and refuses anyone else.
func (s *server) membersPage(w http.ResponseWriter, r *http.Request) {
	s.renderMembers(w, r, http.StatusOK, membersView{})
}

func (s *server) renderMembers(w http.ResponseWriter, r *http.Request, status int, v membersView) {
	refusal := v.Error
	var err error
	if v.orgFrame, err = s.orgFrameOf(r, "members"); err != nil {
		s.domainError(w, r, err)
		return
	}
	v.Error, v.Roles = refusal, memberRoles()
	if v.Role == "" {
		v.Role = marketplace.RoleViewer
	}
	if v.Members, err = s.Store.FindMembers(r.Context(), v.Org.ID); err != nil {
		s.domainError(w, r, err)
		return
	}
	s.render(w, r, status, "members", v.Org.Name+": members", v)
}

// orgIDOf is the request's {org}; 0 when it is not an id (the store then finds no organization).
func orgIDOf(r *http.Request) int64 {
	id, _ := strconv.ParseInt(chi.URLParam(r, "org"), 10, 64)
	return max(id, 0)
}

// addMember adds a user, by id or by name, with a role.
func (s *server) addMember(w http.ResponseWriter, r *http.Request) {
	user, role := strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("role")
	m := &marketplace.Member{OrganizationID: orgIDOf(r), Role: role}
	if id, err := strconv.ParseInt(user, 10, 64); err == nil && id > 0 {
		m.UserID = id
	} else {
		m.Name = user
	}
	var err error
	if user == "" || len(user) > 100 {
		err = marketplace.Errorf(marketplace.EINVALID, "give the member to add by user id or by name")
	} else {
		err = s.Store.AddMember(r.Context(), m)
	}
	if err != nil {
		s.refuse(w, r, err, func(status int, message string) {
			s.renderMembers(w, r, status, membersView{orgFrame: orgFrame{Error: "Member not added: " + message}, User: user, Role: role})
		})
		return
	}
	marketplace.NoteDetail(r.Context(), map[string]any{"user_id": m.UserID, "role": m.Role})
	http.Redirect(w, r, fmt.Sprintf("/orgs/%d/members", m.OrganizationID), http.StatusSeeOther)
}

// memberAction changes a member's role (role) or removes it (remove).
func (s *server) memberAction(w http.ResponseWriter, r *http.Request) {
	org := orgIDOf(r)
	user, err := strconv.ParseInt(chi.URLParam(r, "user"), 10, 64)
	if err != nil || user < 1 {
		s.fail(w, r, http.StatusNotFound, "There is nothing at this address.")
		return
	}
	var what string
	switch chi.URLParam(r, "action") {
	case "role":
		m := &marketplace.Member{OrganizationID: org, UserID: user, Role: r.PostFormValue("role")}
		what = fmt.Sprintf("Role of user %d not changed: ", user)
		if err = s.Store.SetMemberRole(r.Context(), m); err == nil {
			marketplace.NoteDetail(r.Context(), map[string]any{"user_id": user, "role": m.Role})
		}
	case "remove":
		what = fmt.Sprintf("User %d not removed: ", user)
		if err = s.Store.RemoveMember(r.Context(), org, user); err == nil {
			marketplace.NoteDetail(r.Context(), map[string]any{"user_id": user})
		}
	default:
		s.fail(w, r, http.StatusNotFound, "There is nothing at this address.")
		return
	}
	if err != nil {
		s.refuse(w, r, err, func(status int, message string) {
			s.renderMembers(w, r, status, membersView{orgFrame: orgFrame{Error: what + message}})
		})
		return
	}
	// A member who left no longer reads the organization: back to its own organizations.
	if c := marketplace.CallerFrom(r.Context()); c.UserID == user && chi.URLParam(r, "action") == "remove" {
		http.Redirect(w, r, "/orgs", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/orgs/%d/members", org), http.StatusSeeOther)
}
