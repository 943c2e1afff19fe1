package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// AppendAudit appends one event to the audit trail.
func (db *DB) AppendAudit(ctx context.Context, e *marketplace.AuditEvent) error {
	detail := e.Detail
	if detail == nil {
		detail = []byte(`{}`)
	}
	err := db.pool.QueryRow(ctx, `INSERT INTO audit_events (actor, owner_id, organization_id, request_id, action, resource, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, at`, e.Actor, e.OwnerID, e.OrganizationID, e.RequestID, e.Action, e.Resource, detail).Scan(&e.ID, &e.At)
	if err != nil {
		return fmt.Errorf("append to the audit trail: %w", err)
	}
	return nil
}

// FindAuditEvents returns a page of the audit trail in the order things happened: all of it for the
// operator, for a user the events of its own resources and those of the organizations whose projects
// it reads.
func (db *DB) FindAuditEvents(ctx context.Context, f marketplace.AuditFilter) ([]*marketplace.AuditEvent, int, error) {
	var c conditions
	scopeOwned(ctx, &c, "owner_id", mayRead)
	if f.Resource != "" {
		c.add("resource =", f.Resource)
	}
	if f.Actor != "" {
		c.add("actor =", f.Actor)
	}
	var total int
	events, err := findPage(ctx, db.pool, `SELECT count(*) FROM audit_events`+c.where(),
		`SELECT id, at, actor, owner_id, organization_id, request_id, action, resource, detail FROM audit_events`+c.where()+` ORDER BY id`,
		c.args, f.Page, func(row pgx.Row) (*marketplace.AuditEvent, error) {
			var e marketplace.AuditEvent
			err := row.Scan(&e.ID, &e.At, &e.Actor, &e.OwnerID, &e.OrganizationID, &e.RequestID, &e.Action, &e.Resource, &e.Detail)
			return &e, err
		}, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find audit events: %w", err)
	}
	return events, total, nil
}
