package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

const versionColumns = `application_id, version, hourly_rate, deployment, inputs, changelog, deprecated_at, created_at, signature`

func scanVersion(row pgx.Row) (*marketplace.AppVersion, error) {
	var v marketplace.AppVersion
	err := row.Scan(&v.ApplicationID, &v.Version, &v.HourlyRate, &v.Deployment, &v.Inputs, &v.Changelog, &v.DeprecatedAt, &v.CreatedAt, &v.Signature)
	return &v, err
}

// CreateVersion adds the next version of one of the caller's catalog applications and makes it the
// application's current spec, in one transaction (the row lock numbers versions one at a time).
func (db *DB) CreateVersion(ctx context.Context, v *marketplace.AppVersion) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var app marketplace.Application
		err := scanApp(tx.QueryRow(ctx, `SELECT `+appColumns+`, coalesce(organization_id, 0) FROM applications a
WHERE id = $1 AND deleted_at IS NULL AND `+publishable("$2")+` FOR UPDATE`, v.ApplicationID, scopeUser(ctx)), &app, &app.OrganizationID)
		if errors.Is(err, pgx.ErrNoRows) {
			return appRefusal(ctx, tx, v.ApplicationID)
		} else if err != nil {
			return fmt.Errorf("create a version of application %d: %w", v.ApplicationID, err)
		}
		marketplace.NoteOrganization(ctx, app.OrganizationID)
		// A version made of the spec the publisher read keeps the current URLs' credentials.
		v.Deployment.KeepStoredCredentials(app.Deployment)
		if err := v.Validate(&app); err != nil {
			return err
		}
		if limit := db.quotas.VersionsPerApp; limit > 0 && app.Version >= limit {
			return marketplace.Errorf(marketplace.ECONFLICT,
				"application %d has %d versions, the most one application may have (QUOTA_VERSIONS_PER_APP=%d): publish it anew, or ask the operator to raise the limit",
				v.ApplicationID, app.Version, limit)
		}
		v.Version = app.Version + 1
		created, err := scanVersion(tx.QueryRow(ctx, `INSERT INTO application_versions
  (application_id, version, hourly_rate, deployment, inputs, changelog, signature) VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING `+versionColumns, v.ApplicationID, v.Version, v.HourlyRate, v.Deployment, v.Inputs, v.Changelog, v.Signature))
		if err != nil {
			return fmt.Errorf("create version %d of application %d: %w", v.Version, v.ApplicationID, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE applications SET version = $2, hourly_rate = $3, deployment = $4, inputs = $5, updated_at = now()
WHERE id = $1`, v.ApplicationID, v.Version, v.HourlyRate, v.Deployment, v.Inputs); err != nil {
			return fmt.Errorf("make version %d current on application %d: %w", v.Version, v.ApplicationID, err)
		}
		*v = *created
		return nil
	})
}

// FindVersions lists a page of the versions of a catalog (or retired) application that f selects,
// oldest first (newest first with f.NewestFirst), and how many it selects, in one round trip.
func (db *DB) FindVersions(ctx context.Context, f marketplace.VersionFilter) ([]*marketplace.AppVersion, int, error) {
	if _, err := db.FindAppByID(ctx, f.ApplicationID); err != nil {
		return nil, 0, err
	}
	where := ` FROM application_versions WHERE application_id = $1 AND ($2 = 0 OR version = $2) AND version > $3
  AND (NOT $4 OR deprecated_at IS NULL)`
	order := ` ORDER BY version`
	if f.NewestFirst {
		order += ` DESC`
	}
	var total int
	vs, err := findPage(ctx, db.pool, `SELECT count(*)`+where, `SELECT `+versionColumns+where+order,
		[]any{f.ApplicationID, f.Version, f.After, f.Open}, f.Page, scanVersion, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find the versions of application %d: %w", f.ApplicationID, err)
	}
	return vs, total, nil
}

// FindAppVersion returns an application as of one of its versions, or of its latest version not
// deprecated when version is 0. Deprecated versions and retired applications are found: deployments
// pinned to them still install and uninstall them.
func (db *DB) FindAppVersion(ctx context.Context, appID int64, version int) (*marketplace.Application, error) {
	app, err := db.FindAppByID(ctx, appID)
	if err != nil {
		return nil, err
	}
	v, err := scanVersion(db.pool.QueryRow(ctx, `SELECT `+versionColumns+` FROM application_versions
WHERE application_id = $1 AND (version = $2 OR ($2 = 0 AND deprecated_at IS NULL)) ORDER BY version DESC LIMIT 1`, appID, version))
	if errors.Is(err, pgx.ErrNoRows) && version == 0 {
		return nil, marketplace.Errorf(marketplace.ECONFLICT, "every version of application %d is deprecated: it takes no new installs", appID)
	} else if errors.Is(err, pgx.ErrNoRows) {
		return nil, marketplace.Errorf(marketplace.EINVALID, "application %d has no version %d (its latest is %d)", appID, version, app.Version)
	} else if err != nil {
		return nil, fmt.Errorf("find version %d of application %d: %w", version, appID, err)
	}
	return v.Application(app), nil
}

// DeprecateVersion stops new installs of one version of one of the caller's applications.
func (db *DB) DeprecateVersion(ctx context.Context, appID int64, version int) (*marketplace.AppVersion, error) {
	v, err := scanVersion(db.pool.QueryRow(ctx, `UPDATE application_versions v SET deprecated_at = coalesce(v.deprecated_at, now())
FROM applications a
WHERE v.application_id = $1 AND v.version = $2 AND a.id = v.application_id AND a.deleted_at IS NULL AND `+publishable("$3")+`
RETURNING v.application_id, v.version, v.hourly_rate, v.deployment, v.inputs, v.changelog, v.deprecated_at, v.created_at, v.signature`, appID, version, scopeUser(ctx)))
	if errors.Is(err, pgx.ErrNoRows) {
		if err := appRefusal(ctx, db.pool, appID); marketplace.ErrorCode(err) == marketplace.EFORBIDDEN {
			return nil, err
		}
		return nil, marketplace.Errorf(marketplace.ENOTFOUND, "application %d has no version %d of yours", appID, version)
	} else if err != nil {
		return nil, fmt.Errorf("deprecate version %d of application %d: %w", version, appID, err)
	}
	var org int64
	if err := db.pool.QueryRow(ctx, `SELECT coalesce(organization_id, 0) FROM applications WHERE id = $1`, appID).Scan(&org); err == nil {
		marketplace.NoteOrganization(ctx, org) // for the audit trail only: the change is made
	}
	return v, nil
}
