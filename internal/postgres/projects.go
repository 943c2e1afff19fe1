package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// CreateProject stores a project of p.UserID, who must be the caller (or the operator acts), within the
// user's project quota.
func (db *DB) CreateProject(ctx context.Context, p *marketplace.Project) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, p.UserID); err != nil {
			return err
		}
		if err := checkQuota(ctx, tx, p.UserID, db.quotas.Projects, "projects", "QUOTA_PROJECTS_PER_USER",
			`SELECT count(*) FROM projects WHERE user_id = $1 AND deleted_at IS NULL`); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `INSERT INTO projects (user_id, name) VALUES ($1, $2) RETURNING id, created_at`,
			p.UserID, p.Name).Scan(&p.ID, &p.CreatedAt)
		if err != nil {
			return fmt.Errorf("create project: %w", err)
		}
		return nil
	})
}

// FindProjectByID returns one of the caller's projects, without its deployments (FindDeployments pages
// through them).
func (db *DB) FindProjectByID(ctx context.Context, id int64) (*marketplace.Project, error) {
	var p marketplace.Project
	err := db.pool.QueryRow(ctx, `SELECT id, user_id, name, created_at FROM projects
WHERE id = $1 AND deleted_at IS NULL AND ($2 = 0 OR user_id = $2)`, id, scopeUser(ctx)).
		Scan(&p.ID, &p.UserID, &p.Name, &p.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("project", id)
	} else if err != nil {
		return nil, fmt.Errorf("find project %d: %w", id, err)
	}
	return &p, nil
}

// FindProjectsByUser lists a page of a user's projects by id; another user's list is not found.
func (db *DB) FindProjectsByUser(ctx context.Context, userID int64, page marketplace.Page) ([]*marketplace.Project, int, error) {
	if _, err := db.FindUserByID(ctx, userID); err != nil {
		return nil, 0, err
	}
	var total int
	projects, err := findPage(ctx, db.pool, `SELECT count(*) FROM projects WHERE user_id = $1 AND deleted_at IS NULL`,
		`SELECT id, user_id, name, created_at FROM projects WHERE user_id = $1 AND deleted_at IS NULL ORDER BY id`,
		[]any{userID}, page, func(row pgx.Row) (*marketplace.Project, error) {
			var p marketplace.Project
			return &p, row.Scan(&p.ID, &p.UserID, &p.Name, &p.CreatedAt)
		}, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find projects of user %d: %w", userID, err)
	}
	return projects, total, nil
}

// DeleteProject removes one of the caller's projects, refusing while it has live deployments. The
// reconciler then removes what providers keep for it (its namespace).
func (db *DB) DeleteProject(ctx context.Context, id int64) error {
	return db.softDelete(ctx, softDeletion{what: "project", table: "projects", owner: "user_id",
		deploymentKey: "project_id"}, id)
}
