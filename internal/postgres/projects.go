package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

const projectColumns = `id, user_id, coalesce(organization_id, 0), name, created_at`

func scanProject(row pgx.Row, extra ...any) (*marketplace.Project, error) {
	var p marketplace.Project
	return &p, row.Scan(append([]any{&p.ID, &p.UserID, &p.OrganizationID, &p.Name, &p.CreatedAt}, extra...)...)
}

// CreateProject stores a project of p.UserID, who must be the caller (or the operator acts), within the
// user's project quota. With p.OrganizationID, the project is the organization's, and p.UserID must be
// one of its admins.
func (db *DB) CreateProject(ctx context.Context, p *marketplace.Project) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, p.UserID); err != nil {
			return err
		}
		var org *int64
		if p.OrganizationID != 0 {
			org = &p.OrganizationID
			if err := memberMay(ctx, tx, p.UserID, p.OrganizationID, mayManage, "create projects in"); err != nil {
				return err
			}
		}
		if err := checkQuota(ctx, tx, p.UserID, db.quotas.Projects, "projects", "QUOTA_PROJECTS_PER_USER",
			`SELECT count(*) FROM projects WHERE user_id = $1 AND deleted_at IS NULL`); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `INSERT INTO projects (user_id, name, organization_id) VALUES ($1, $2, $3) RETURNING id, created_at`,
			p.UserID, p.Name, org).Scan(&p.ID, &p.CreatedAt)
		if err != nil {
			return fmt.Errorf("create project: %w", err)
		}
		return nil
	})
}

// FindProjectByID returns a project the caller may read, without its deployments (FindDeployments pages
// through them).
func (db *DB) FindProjectByID(ctx context.Context, id int64) (*marketplace.Project, error) {
	var role *string
	var org *int64
	p, err := scanProject(db.pool.QueryRow(ctx, `SELECT `+projectColumns+`, organization_id, account_role($2, user_id, organization_id)
FROM projects WHERE id = $1 AND deleted_at IS NULL`, id, scopeUser(ctx)), &org, &role)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("project", id)
	} else if err != nil {
		return nil, fmt.Errorf("find project %d: %w", id, err)
	}
	if err := allowed(ctx, role, org, mayRead, "project", id); err != nil {
		return nil, err
	}
	return p, nil
}

// FindProjectsByUser lists a page of a user's own projects by id (not those it created in an
// organization); another user's list is not found.
func (db *DB) FindProjectsByUser(ctx context.Context, userID int64, page marketplace.Page) ([]*marketplace.Project, int, error) {
	if _, err := db.FindUserByID(ctx, userID); err != nil {
		return nil, 0, err
	}
	var total int
	where := ` FROM projects WHERE user_id = $1 AND organization_id IS NULL AND deleted_at IS NULL`
	projects, err := findPage(ctx, db.pool, `SELECT count(*)`+where, `SELECT `+projectColumns+where+` ORDER BY id`,
		[]any{userID}, page, func(row pgx.Row) (*marketplace.Project, error) { return scanProject(row) }, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find projects of user %d: %w", userID, err)
	}
	return projects, total, nil
}

// FindProjectsByOrganization lists a page of an organization's projects by id, for its members who
// read them.
func (db *DB) FindProjectsByOrganization(ctx context.Context, orgID int64, page marketplace.Page) ([]*marketplace.Project, int, error) {
	if err := memberMay(ctx, db.pool, scopeUser(ctx), orgID, mayRead, "read the projects of"); err != nil {
		return nil, 0, err
	}
	var total int
	where := ` FROM projects WHERE organization_id = $1 AND deleted_at IS NULL`
	projects, err := findPage(ctx, db.pool, `SELECT count(*)`+where, `SELECT `+projectColumns+where+` ORDER BY id`,
		[]any{orgID}, page, func(row pgx.Row) (*marketplace.Project, error) { return scanProject(row) }, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find projects of organization %d: %w", orgID, err)
	}
	return projects, total, nil
}

// DeleteProject removes a project the caller manages (its own, or as an admin of its organization),
// refusing while it has live deployments. The reconciler then removes what providers keep for it (its
// namespace).
func (db *DB) DeleteProject(ctx context.Context, id int64) error {
	return db.softDelete(ctx, softDeletion{what: "project", table: "projects", owner: "user_id",
		deploymentKey: "project_id"}, id)
}
