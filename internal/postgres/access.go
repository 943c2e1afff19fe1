package postgres

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// What each kind of action needs, as the roles account_role (migration 00105) answers: 'owner' is the
// user of a personal row and the operator, the others an organization member's role. A caller with no
// role on a row is told it does not exist; one with a role that is not listed is refused (EFORBIDDEN).
// Space-separated, so SQL reads them too (string_to_array).
const (
	mayRead    = "owner admin deployer viewer"
	mayDeploy  = "owner admin deployer"
	mayManage  = "owner admin"
	mayPublish = "owner admin publisher"
)

// allowed is the answer for a caller holding role (nil: none) on row id of kind what, owned by org
// (nil: a user): not found, forbidden, or nil. A row of an organization is noted for the audit trail.
func allowed(ctx context.Context, role *string, org *int64, roles, what string, id int64) error {
	if role == nil {
		return notFound(what, id)
	}
	if org != nil {
		marketplace.NoteOrganization(ctx, *org)
	}
	if !slices.Contains(strings.Fields(roles), *role) {
		need := strings.Join(slices.DeleteFunc(strings.Fields(roles), func(r string) bool { return r == "owner" }), ", ")
		return marketplace.Errorf(marketplace.EFORBIDDEN, "%s %d belongs to organization %d, where your role (%s) does not allow this: it takes one of %s",
			what, id, deref(org), *role, need)
	}
	return nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// scopeOwned limits c to the rows the caller may read: its own personal ones (userColumn is the caller)
// and those of organizations where its role is one of roles. The operator's scope is everything. It is
// account_role's rule spelled out so that the indexes by user and by organization serve lists.
func scopeOwned(ctx context.Context, c *conditions, userColumn, roles string) {
	scope := scopeUser(ctx)
	if scope == 0 {
		return
	}
	c.args = append(c.args, scope)
	n := "$" + strconv.Itoa(len(c.args))
	c.args = append(c.args, roles)
	r := "$" + strconv.Itoa(len(c.args))
	c.sql += " AND ((organization_id IS NULL AND " + userColumn + " = " + n + `) OR organization_id IN
  (SELECT m.organization_id FROM organization_members m WHERE m.user_id = ` + n + ` AND m.role = ANY(string_to_array(` + r + `, ' '))))`
}
