package marketplace

import (
	"context"
	"slices"
	"time"
)

// EFORBIDDEN: the caller is a member of the organization that owns the resource, but its role does not
// allow this; the message names the roles that do (403). A caller who is no member is told the resource
// does not exist (ENOTFOUND) instead.
const EFORBIDDEN = "forbidden"

// Organization roles. Each allows what the one before it allows, publisher aside:
//   - viewer reads the organization's projects, deployments, health, consoles, bills and audit trail;
//   - deployer also installs, upgrades, rolls back and deletes deployments in its projects;
//   - publisher publishes and manages applications in the organization's name, and reads their revenue;
//   - admin does everything: projects, members and roles, billing.
//
// An organization always keeps at least one admin.
const (
	RoleViewer    = "viewer"
	RoleDeployer  = "deployer"
	RolePublisher = "publisher"
	RoleAdmin     = "admin"
)

// ValidateRole refuses a role that is not one of Roles.
func ValidateRole(role string) error {
	if !slices.Contains([]string{RoleViewer, RoleDeployer, RolePublisher, RoleAdmin}, role) {
		return Errorf(EINVALID, "role %q is not a role: use one of viewer, deployer, publisher, admin", role)
	}
	return nil
}

// Organization is a team that owns projects, applications and bills together.
type Organization struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// Role is the caller's role in it ("" for the operator).
	Role string `json:"role,omitempty" doc:"your role in it"`
}

// Member is a user's membership of an organization.
type Member struct {
	OrganizationID int64     `json:"organization_id"`
	UserID         int64     `json:"user_id"`
	Name           string    `json:"name" doc:"the user's name"`
	Role           string    `json:"role" enum:"viewer,deployer,publisher,admin"`
	AddedAt        time.Time `json:"added_at"`
}

// OrganizationService stores organizations and their members. A caller who is no member finds none of an
// organization (ENOTFOUND); a member whose role does not allow a change gets EFORBIDDEN, and nothing
// changes.
type OrganizationService interface {
	// CreateOrganization stores o with the caller as its first admin.
	CreateOrganization(ctx context.Context, o *Organization) error
	// FindOrganizations lists a page of the caller's organizations (all for the operator).
	FindOrganizations(ctx context.Context, p Page) ([]*Organization, int, error)
	FindOrganizationByID(ctx context.Context, id int64) (*Organization, error)
	// FindMembers lists an organization's members by user id; every member may.
	FindMembers(ctx context.Context, orgID int64) ([]*Member, error)
	// AddMember adds the user m.UserID, or the one user named m.Name, with m.Role (admins only).
	AddMember(ctx context.Context, m *Member) error
	// SetMemberRole changes a member's role (admins only); the last admin keeps its role (ECONFLICT).
	SetMemberRole(ctx context.Context, m *Member) error
	// RemoveMember removes a member (admins only, or the member itself); the last admin stays
	// (ECONFLICT). From the moment it returns, the user's tokens reach nothing of the organization.
	RemoveMember(ctx context.Context, orgID, userID int64) error
	// FindProjectsByOrganization lists a page of an organization's projects (members who read them).
	FindProjectsByOrganization(ctx context.Context, orgID int64, p Page) ([]*Project, int, error)
	// FindAppsByOrganization lists a page of the applications published in an organization's name,
	// retired ones included, by id (any member).
	FindAppsByOrganization(ctx context.Context, orgID int64, p Page) ([]*Application, int, error)
}

// OrganizationLedgerService is an organization's bill: what its projects' deployments used and were
// invoiced (readable by its admins, deployers and viewers), and what its applications earned (its
// admins and publishers).
type OrganizationLedgerService interface {
	FindOrganizationInvoices(ctx context.Context, orgID int64, p Page) ([]*Invoice, int, error)
	FindOrganizationInvoice(ctx context.Context, orgID int64, number string) (*Invoice, error)
	FindOrganizationStatement(ctx context.Context, orgID int64, from, to time.Time, p Page) (*Statement, error)
	FindOrganizationRevenue(ctx context.Context, orgID int64, from, to time.Time) (*Revenue, error)
	FindOrganizationPayout(ctx context.Context, orgID int64, p Period) (*Revenue, error)
}

// AuditNote is filled in by the store while it serves a request, so the audit trail records the
// organization a change was made in (the request's path alone does not always say).
type AuditNote struct {
	OrganizationID int64
	// Detail is what the request changed that its path does not say (a member's new role).
	Detail map[string]any
}

type auditNoteKey struct{}

// WithAuditNote returns a context that carries n for the store to fill in.
func WithAuditNote(ctx context.Context, n *AuditNote) context.Context {
	return context.WithValue(ctx, auditNoteKey{}, n)
}

// NoteOrganization records, on ctx's audit note if it has one, that the request acts in organization id.
func NoteOrganization(ctx context.Context, id int64) {
	if n, ok := ctx.Value(auditNoteKey{}).(*AuditNote); ok && n != nil && id != 0 {
		n.OrganizationID = id
	}
}

// NoteDetail records, on ctx's audit note if it has one, what the request changed.
func NoteDetail(ctx context.Context, detail map[string]any) {
	if n, ok := ctx.Value(auditNoteKey{}).(*AuditNote); ok && n != nil {
		n.Detail = detail
	}
}
