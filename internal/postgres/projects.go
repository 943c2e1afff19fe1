package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// CreateProject stores a project of p.UserID, who must be the caller (or the operator acts).
func (db *DB) CreateProject(ctx context.Context, p *marketplace.Project) error {
	if !marketplace.CallerFrom(ctx).Owns(p.UserID) {
		return notFound("user", p.UserID)
	}
	err := db.pool.QueryRow(ctx, `INSERT INTO projects (user_id, name) SELECT id, $2 FROM users WHERE id = $1
RETURNING id, created_at`, p.UserID, p.Name).Scan(&p.ID, &p.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound("user", p.UserID)
	} else if err != nil {
		return fmt.Errorf("create project: %w", err)
	}
	return nil
}

// FindProjectByID returns one of the caller's projects with its deployments.
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
	p.Deployments, err = db.FindDeployments(ctx, marketplace.DeploymentFilter{ProjectID: id})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// FindProjectsByUser lists a user's projects; another user's list is not found.
func (db *DB) FindProjectsByUser(ctx context.Context, userID int64) ([]*marketplace.Project, error) {
	if _, err := db.FindUserByID(ctx, userID); err != nil {
		return nil, err
	}
	rows, _ := db.pool.Query(ctx, `SELECT id, user_id, name, created_at FROM projects
WHERE user_id = $1 AND deleted_at IS NULL ORDER BY id`, userID)
	projects, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*marketplace.Project, error) {
		var p marketplace.Project
		return &p, row.Scan(&p.ID, &p.UserID, &p.Name, &p.CreatedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("find projects of user %d: %w", userID, err)
	}
	return projects, nil
}

// DeleteProject removes one of the caller's projects, refusing while it has live deployments. The
// reconciler then removes what providers keep for it (its namespace).
func (db *DB) DeleteProject(ctx context.Context, id int64) error {
	return db.softDelete(ctx, softDeletion{what: "project", table: "projects", owner: "user_id",
		deploymentKey: "project_id"}, id)
}
