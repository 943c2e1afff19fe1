package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Private applications (migration 00114): app_visible is the one rule of who sees an application, and
// every read of one for a caller (its page, versions, about, icon, installs, upgrades) has it in its
// WHERE clause, so that an application the caller may not see is simply not found. The catalog reads the
// public catalog, shared, and adds a caller's private applications (catalog.go).

// visibleTo is the condition on an application row (alias a) that the caller ($n, as scopeUser) may see it.
func visibleTo(n string) string {
	return `app_visible(` + n + `, a.id, a.private, a.publisher_id, a.organization_id)`
}

// appVisible finds application id (in the catalog or retired) for the caller, or says it is not found.
func appVisible(ctx context.Context, q rowQuerier, id int64) error {
	err := q.QueryRow(ctx, `SELECT true FROM applications a WHERE a.id = $1 AND (a.deleted_at IS NULL OR a.retired_at IS NOT NULL)
  AND `+visibleTo("$2"), id, scopeUser(ctx)).Scan(new(bool))
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound("application", id)
	} else if err != nil {
		return fmt.Errorf("find application %d: %w", id, err)
	}
	return nil
}

// FindVisibility returns who may see one of the caller's applications.
func (db *DB) FindVisibility(ctx context.Context, appID int64) (*marketplace.Visibility, error) {
	var private bool
	v := &marketplace.Visibility{}
	err := db.pool.QueryRow(ctx, `SELECT a.private,
  ARRAY(SELECT s.organization_id FROM application_shares s WHERE s.application_id = a.id ORDER BY 1)
FROM applications a WHERE a.id = $1 AND (a.deleted_at IS NULL OR a.retired_at IS NOT NULL) AND `+publishable("$2"),
		appID, scopeUser(ctx)).Scan(&private, &v.SharedWith)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, appRefusal(ctx, db.pool, appID)
	} else if err != nil {
		return nil, fmt.Errorf("find the visibility of application %d: %w", appID, err)
	}
	v.Visibility = visibilityName(private)
	return v, nil
}

// SetVisibility replaces who may see one of the caller's applications. Made private, it leaves the
// catalog of everyone it is not shared with at once; its deployments keep running and billing.
func (db *DB) SetVisibility(ctx context.Context, appID int64, v *marketplace.Visibility) error {
	if err := v.Validate(); err != nil {
		return err
	}
	return db.changeApp(ctx, appID, func(tx pgx.Tx) error {
		private := v.Visibility == marketplace.VisibilityPrivate
		// Only a change writes the row: the write moves the catalog on (its counts, words and generation).
		if _, err := tx.Exec(ctx, `UPDATE applications SET private = $2, updated_at = now() WHERE id = $1 AND private <> $2`,
			appID, private); err != nil {
			return fmt.Errorf("set the visibility of application %d: %w", appID, err)
		}
		return storeShares(ctx, tx, appID, v.SharedWith, true)
	})
}

// storeShares shares application appID with orgs (replacing those it had with replace), refusing an
// organization that does not exist.
func storeShares(ctx context.Context, tx pgx.Tx, appID int64, orgs []int64, replace bool) error {
	if replace {
		if _, err := tx.Exec(ctx, `DELETE FROM application_shares WHERE application_id = $1 AND NOT organization_id = ANY ($2)`,
			appID, orgs); err != nil {
			return fmt.Errorf("share application %d: %w", appID, err)
		}
	}
	if len(orgs) == 0 {
		return nil
	}
	var missing []int64
	if err := tx.QueryRow(ctx, `SELECT ARRAY(SELECT o FROM unnest($1::bigint[]) o WHERE NOT EXISTS (SELECT FROM organizations WHERE id = o) ORDER BY o)`,
		orgs).Scan(&missing); err != nil {
		return fmt.Errorf("share application %d: %w", appID, err)
	}
	if len(missing) > 0 {
		return marketplace.Errorf(marketplace.EINVALID, "shared_with: organization %d does not exist", missing[0])
	}
	if _, err := tx.Exec(ctx, `INSERT INTO application_shares (application_id, organization_id)
SELECT $1, o FROM unnest($2::bigint[]) o ON CONFLICT DO NOTHING`, appID, orgs); err != nil {
		return fmt.Errorf("share application %d: %w", appID, err)
	}
	return nil
}

func visibilityName(private bool) string {
	if private {
		return marketplace.VisibilityPrivate
	}
	return marketplace.VisibilityPublic
}
