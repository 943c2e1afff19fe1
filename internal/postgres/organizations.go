package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// memberMay checks that user may act in organization orgID with one of roles: a user who is no member
// (or an organization that does not exist) is not found, a member of another role forbidden. User 0 is
// the operator, who may do everything in an organization that exists.
func memberMay(ctx context.Context, q rowQuerier, user, orgID int64, roles, action string) error {
	var role *string
	err := q.QueryRow(ctx, `SELECT CASE WHEN $2 = 0 THEN 'owner' ELSE
  (SELECT m.role FROM organization_members m WHERE m.organization_id = o.id AND m.user_id = $2) END
FROM organizations o WHERE o.id = $1`, orgID, user).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && role == nil) {
		return notFound("organization", orgID)
	} else if err != nil {
		return fmt.Errorf("role in organization %d: %w", orgID, err)
	}
	marketplace.NoteOrganization(ctx, orgID)
	if !slices.Contains(strings.Fields(roles), *role) {
		need := strings.Join(slices.DeleteFunc(strings.Fields(roles), func(r string) bool { return r == "owner" }), ", ")
		return marketplace.Errorf(marketplace.EFORBIDDEN, "your role in organization %d (%s) may not %s it: that takes one of %s",
			orgID, *role, action, need)
	}
	return nil
}

// CreateOrganization stores o with the caller as its first admin, in one transaction. The operator, who
// is no user, cannot be a member: it creates none.
func (db *DB) CreateOrganization(ctx context.Context, o *marketplace.Organization) error {
	caller := marketplace.CallerFrom(ctx)
	if caller.UserID == 0 {
		return marketplace.Errorf(marketplace.EINVALID, "an organization is created by the user who will be its first admin; the operator is no user")
	}
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO organizations (name) VALUES ($1) RETURNING id, created_at`, o.Name).
			Scan(&o.ID, &o.CreatedAt); err != nil {
			return fmt.Errorf("create organization: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, 'admin')`,
			o.ID, caller.UserID); err != nil {
			return fmt.Errorf("create organization %d: %w", o.ID, err)
		}
		o.Role = marketplace.RoleAdmin
		marketplace.NoteOrganization(ctx, o.ID)
		return nil
	})
}

// FindOrganizations lists a page of the caller's organizations with its role in each, by id; all of
// them for the operator.
func (db *DB) FindOrganizations(ctx context.Context, p marketplace.Page) ([]*marketplace.Organization, int, error) {
	var total int
	where := ` FROM organizations o LEFT JOIN organization_members m ON m.organization_id = o.id AND m.user_id = $1
WHERE $1 = 0 OR m.user_id IS NOT NULL`
	orgs, err := findPage(ctx, db.pool, `SELECT count(*)`+where, `SELECT o.id, o.name, o.created_at, coalesce(m.role, '')`+where+` ORDER BY o.id`,
		[]any{scopeUser(ctx)}, p, func(row pgx.Row) (*marketplace.Organization, error) {
			var o marketplace.Organization
			return &o, row.Scan(&o.ID, &o.Name, &o.CreatedAt, &o.Role)
		}, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find organizations: %w", err)
	}
	return orgs, total, nil
}

// FindOrganizationByID returns an organization the caller is a member of, with its role.
func (db *DB) FindOrganizationByID(ctx context.Context, id int64) (*marketplace.Organization, error) {
	var o marketplace.Organization
	err := db.pool.QueryRow(ctx, `SELECT o.id, o.name, o.created_at, coalesce(m.role, '')
FROM organizations o LEFT JOIN organization_members m ON m.organization_id = o.id AND m.user_id = $2
WHERE o.id = $1 AND ($2 = 0 OR m.user_id IS NOT NULL)`, id, scopeUser(ctx)).Scan(&o.ID, &o.Name, &o.CreatedAt, &o.Role)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("organization", id)
	} else if err != nil {
		return nil, fmt.Errorf("find organization %d: %w", id, err)
	}
	return &o, nil
}

// FindMembers lists an organization's members by user id, for any of its members.
func (db *DB) FindMembers(ctx context.Context, orgID int64) ([]*marketplace.Member, error) {
	if err := memberMay(ctx, db.pool, scopeUser(ctx), orgID, "owner admin deployer publisher viewer", "read the members of"); err != nil {
		return nil, err
	}
	rows, _ := db.pool.Query(ctx, `SELECT m.organization_id, m.user_id, u.name, m.role, m.added_at
FROM organization_members m JOIN users u ON u.id = m.user_id WHERE m.organization_id = $1 ORDER BY m.user_id`, orgID)
	members, err := pgx.CollectRows(rows, scanMember)
	if err != nil {
		return nil, fmt.Errorf("find members of organization %d: %w", orgID, err)
	}
	return members, nil
}

func scanMember(row pgx.CollectableRow) (*marketplace.Member, error) {
	var m marketplace.Member
	return &m, row.Scan(&m.OrganizationID, &m.UserID, &m.Name, &m.Role, &m.AddedAt)
}

// FindAppsByOrganization lists a page of the applications published in an organization's name, retired
// ones included, by id; any member reads them, anyone else finds no organization.
func (db *DB) FindAppsByOrganization(ctx context.Context, orgID int64, p marketplace.Page) ([]*marketplace.Application, int, error) {
	if err := memberMay(ctx, db.pool, scopeUser(ctx), orgID, "owner admin deployer publisher viewer", "read the applications of"); err != nil {
		return nil, 0, err
	}
	var total int
	where := ` FROM applications WHERE organization_id = $1 AND (deleted_at IS NULL OR retired_at IS NOT NULL)`
	apps, err := findPage(ctx, db.pool, `SELECT count(*)`+where, `SELECT `+appColumns+`, organization_id`+where+` ORDER BY id`,
		[]any{orgID}, p, func(row pgx.Row) (*marketplace.Application, error) {
			var a marketplace.Application
			return &a, scanApp(row, &a, &a.OrganizationID)
		}, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find applications of organization %d: %w", orgID, err)
	}
	return apps, total, nil
}

// AddMember adds the user m.UserID, or else the one user named m.Name, to organization m.OrganizationID
// with m.Role; only its admins (or the operator) may. A user who is already a member is ECONFLICT (its
// role changes through SetMemberRole); a name several users share is refused: add by id.
func (db *DB) AddMember(ctx context.Context, m *marketplace.Member) error {
	if err := marketplace.ValidateRole(m.Role); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := lockOrganization(ctx, tx, m.OrganizationID, mayManage, "add members to"); err != nil {
			return err
		}
		if m.UserID == 0 {
			rows, _ := tx.Query(ctx, `SELECT id FROM users WHERE name = $1 ORDER BY id LIMIT 2`, m.Name)
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			switch {
			case err != nil:
				return fmt.Errorf("find user %q: %w", m.Name, err)
			case len(ids) == 0:
				return marketplace.Errorf(marketplace.EINVALID, "no user is named %q", m.Name)
			case len(ids) > 1:
				return marketplace.Errorf(marketplace.EINVALID, "several users are named %q: add the member by user_id", m.Name)
			}
			m.UserID = ids[0]
		}
		err := tx.QueryRow(ctx, `INSERT INTO organization_members (organization_id, user_id, role)
SELECT $1, u.id, $3 FROM users u WHERE u.id = $2
ON CONFLICT (organization_id, user_id) DO NOTHING
RETURNING organization_id, user_id, (SELECT name FROM users WHERE id = $2), role, added_at`, m.OrganizationID, m.UserID, m.Role).
			Scan(&m.OrganizationID, &m.UserID, &m.Name, &m.Role, &m.AddedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, m.UserID).Scan(&exists); err != nil {
				return fmt.Errorf("add member %d: %w", m.UserID, err)
			} else if !exists {
				return marketplace.Errorf(marketplace.EINVALID, "user %d does not exist", m.UserID)
			}
			return marketplace.Errorf(marketplace.ECONFLICT, "user %d is already a member of organization %d; change its role with PUT .../members/%d",
				m.UserID, m.OrganizationID, m.UserID)
		} else if err != nil {
			return fmt.Errorf("add member %d to organization %d: %w", m.UserID, m.OrganizationID, err)
		}
		return nil
	})
}

// SetMemberRole changes a member's role; only the organization's admins (or the operator) may, and the
// last admin cannot give up the role (ECONFLICT): an organization always keeps one.
func (db *DB) SetMemberRole(ctx context.Context, m *marketplace.Member) error {
	if err := marketplace.ValidateRole(m.Role); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := lockOrganization(ctx, tx, m.OrganizationID, mayManage, "change roles in"); err != nil {
			return err
		}
		if err := keepAnAdmin(ctx, tx, m.OrganizationID, m.UserID, m.Role == marketplace.RoleAdmin, "demoted"); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `UPDATE organization_members m SET role = $3, source = 'manual' FROM users u
WHERE m.organization_id = $1 AND m.user_id = $2 AND u.id = m.user_id
RETURNING m.organization_id, m.user_id, u.name, m.role, m.added_at`, m.OrganizationID, m.UserID, m.Role).
			Scan(&m.OrganizationID, &m.UserID, &m.Name, &m.Role, &m.AddedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("member", m.UserID)
		} else if err != nil {
			return fmt.Errorf("set role of member %d of organization %d: %w", m.UserID, m.OrganizationID, err)
		}
		return nil
	})
}

// RemoveMember removes a member: the organization's admins (or the operator) may remove anyone, a member
// itself may leave. The last admin stays (ECONFLICT). Access is decided from membership on every
// request, so the removed user's tokens reach nothing of the organization from the moment this returns.
func (db *DB) RemoveMember(ctx context.Context, orgID, userID int64) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		roles := mayManage
		if scopeUser(ctx) == userID {
			roles = "owner admin deployer publisher viewer" // leaving is every member's right
		}
		if err := lockOrganization(ctx, tx, orgID, roles, "remove members of"); err != nil {
			return err
		}
		if err := keepAnAdmin(ctx, tx, orgID, userID, false, "removed"); err != nil {
			return err
		}
		// A membership the identity provider's groups gave (OIDC_GROUP_ROLES) would come back at the
		// user's next sign-in: removing it here would only look done.
		var source string
		err := tx.QueryRow(ctx, `SELECT source FROM organization_members WHERE organization_id = $1 AND user_id = $2`, orgID, userID).Scan(&source)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read member %d of organization %d: %w", userID, orgID, err)
		}
		if source == "oidc" {
			return marketplace.Errorf(marketplace.ECONFLICT, "user %d is a member through the identity provider's groups (single sign-on): remove the user from the group at the provider, and the membership goes at its next sign-in", userID)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM organization_members WHERE organization_id = $1 AND user_id = $2`, orgID, userID)
		if err != nil {
			return fmt.Errorf("remove member %d of organization %d: %w", userID, orgID, err)
		} else if tag.RowsAffected() == 0 {
			return notFound("member", userID)
		}
		return nil
	})
}

// lockOrganization takes an organization's row for the rest of tx, so that membership changes take
// turns (two admins demoting each other cannot leave none), after checking the caller may act.
func lockOrganization(ctx context.Context, tx pgx.Tx, orgID int64, roles, action string) error {
	if err := tx.QueryRow(ctx, `SELECT true FROM organizations WHERE id = $1 FOR UPDATE`, orgID).Scan(new(bool)); errors.Is(err, pgx.ErrNoRows) {
		return notFound("organization", orgID)
	} else if err != nil {
		return fmt.Errorf("lock organization %d: %w", orgID, err)
	}
	return memberMay(ctx, tx, scopeUser(ctx), orgID, roles, action)
}

// keepAnAdmin refuses a change that would leave the organization without an admin: userID losing the
// role (stillAdmin false) while it is the only one.
func keepAnAdmin(ctx context.Context, tx pgx.Tx, orgID, userID int64, stillAdmin bool, change string) error {
	if stillAdmin {
		return nil
	}
	var isAdmin bool
	var others int
	if err := tx.QueryRow(ctx, `SELECT coalesce(bool_or(user_id = $2), false), count(*) FILTER (WHERE user_id <> $2)
FROM organization_members WHERE organization_id = $1 AND role = 'admin'`, orgID, userID).Scan(&isAdmin, &others); err != nil {
		return fmt.Errorf("count admins of organization %d: %w", orgID, err)
	}
	if isAdmin && others == 0 {
		return marketplace.Errorf(marketplace.ECONFLICT, "user %d is the last admin of organization %d and cannot be %s: make another member admin first",
			userID, orgID, change)
	}
	return nil
}
