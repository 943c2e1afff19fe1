package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

const appColumns = `id, publisher_id, name, description, hourly_rate, deployment, inputs, created_at, updated_at, retired_at, version,
  publisher_name, categories, icon_url, app_version`

// appFields are the fields of a that appColumns are read into, in their order.
func appFields(a *marketplace.Application) []any {
	return []any{&a.ID, &a.PublisherID, &a.Name, &a.Description, &a.HourlyRate, &a.Deployment, &a.Inputs,
		&a.CreatedAt, &a.UpdatedAt, &a.RetiredAt, &a.Version, &a.PublisherName, &a.Categories, &a.IconURL, &a.AppVersion}
}

func scanApp(row pgx.Row, a *marketplace.Application, extra ...any) error {
	return row.Scan(append(appFields(a), extra...)...)
}

// publishable is the condition on an application row (alias a) that the caller ($n) may manage it: its
// publisher's own, or an organization's where the caller is an admin or a publisher (account_role).
func publishable(n string) string {
	return `account_role(` + n + `, a.publisher_id, a.organization_id) = ANY(string_to_array('` + mayPublish + `', ' '))`
}

// appRefusal is why the caller may not manage application id: forbidden for a member of its
// organization whose role does not allow it, not found for anyone else.
func appRefusal(ctx context.Context, q rowQuerier, id int64) error {
	var org *int64
	var role *string
	err := q.QueryRow(ctx, `SELECT organization_id, account_role($2, publisher_id, organization_id) FROM applications
WHERE id = $1 AND (deleted_at IS NULL OR retired_at IS NOT NULL)`, id, scopeUser(ctx)).Scan(&org, &role)
	if err != nil || org == nil {
		return notFound("application", id)
	}
	if err := allowed(ctx, role, org, mayPublish, "application", id); err != nil {
		return err
	}
	return notFound("application", id)
}

// FindAppByID returns an application of the catalog, or a retired one (whose deployments still need it),
// that the caller may see; deleted ones are not found.
func (db *DB) FindAppByID(ctx context.Context, id int64) (*marketplace.Application, error) {
	var a marketplace.Application
	err := scanApp(db.pool.QueryRow(ctx,
		`SELECT `+appColumns+`, coalesce(organization_id, 0), private,
  (SELECT v.signature FROM application_versions v WHERE v.application_id = a.id AND v.version = a.version)
FROM applications a WHERE id = $1 AND (deleted_at IS NULL OR retired_at IS NOT NULL)
  AND `+visibleTo("$2"), id, scopeUser(ctx)), &a, &a.OrganizationID, &a.Private, &a.Signature)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("application", id)
	} else if err != nil {
		return nil, fmt.Errorf("find application %d: %w", id, err)
	}
	return &a, nil
}

// CreateApp stores a validated application; the caller must be its publisher or the operator, and the
// publisher within its application quota. With a.OrganizationID it is published in the organization's
// name, by one of its admins or publishers.
func (db *DB) CreateApp(ctx context.Context, a *marketplace.Application) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, a.PublisherID); err != nil {
			return err
		}
		var org *int64
		if a.OrganizationID != 0 {
			org = &a.OrganizationID
			if err := memberMay(ctx, tx, a.PublisherID, a.OrganizationID, mayPublish, "publish applications in the name of"); err != nil {
				return err
			}
		}
		if err := checkQuota(ctx, tx, a.PublisherID, db.quotas.Apps, "published applications", "QUOTA_APPS_PER_USER",
			`SELECT count(*) FROM applications WHERE publisher_id = $1 AND deleted_at IS NULL`); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `INSERT INTO applications
  (publisher_id, name, description, hourly_rate, deployment_type, deployment, inputs, organization_id, private)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id, created_at, updated_at, version, publisher_name`,
			a.PublisherID, a.Name, a.Description, a.HourlyRate, a.Deployment.Type, a.Deployment, a.Inputs, org, a.Private).
			Scan(&a.ID, &a.CreatedAt, &a.UpdatedAt, &a.Version, &a.PublisherName)
		if err != nil {
			return fmt.Errorf("create application: %w", err)
		}
		if err := storeShares(ctx, tx, a.ID, a.Shared, false); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO application_versions (application_id, version, hourly_rate, deployment, inputs, signature)
VALUES ($1, 1, $2, $3, $4, $5)`, a.ID, a.HourlyRate, a.Deployment, a.Inputs, a.Signature); err != nil {
			return fmt.Errorf("create application %d version 1: %w", a.ID, err)
		}
		return nil
	})
}

// UpdateApp replaces an application's fields; only its publisher (or the operator) finds it. A change of
// its spec, inputs or rate is a new version (the seed's update keeps working by creating versions), so
// deployments already accepted keep the version they pinned.
func (db *DB) UpdateApp(ctx context.Context, a *marketplace.Application) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE applications a
SET name = $3, description = $4, hourly_rate = $5, deployment_type = $6, deployment = $7, inputs = $8, updated_at = now(),
    version = version + CASE WHEN hourly_rate <> $5 OR deployment <> $7 OR inputs <> $8 THEN 1 ELSE 0 END
WHERE id = $1 AND deleted_at IS NULL AND `+publishable("$2")+`
RETURNING publisher_id, coalesce(organization_id, 0), created_at, updated_at, version, private, publisher_name, categories, icon_url, app_version`,
			a.ID, scopeUser(ctx), a.Name, a.Description, a.HourlyRate, a.Deployment.Type, a.Deployment, a.Inputs).
			Scan(&a.PublisherID, &a.OrganizationID, &a.CreatedAt, &a.UpdatedAt, &a.Version, &a.Private, &a.PublisherName, &a.Categories, &a.IconURL, &a.AppVersion)
		if errors.Is(err, pgx.ErrNoRows) {
			return appRefusal(ctx, tx, a.ID)
		} else if err != nil {
			return fmt.Errorf("update application %d: %w", a.ID, err)
		}
		marketplace.NoteOrganization(ctx, a.OrganizationID)
		_, err = tx.Exec(ctx, `INSERT INTO application_versions (application_id, version, hourly_rate, deployment, inputs, changelog, signature)
VALUES ($1, $2, $3, $4, $5, 'updated through PUT /api/apps/{id}', $6) ON CONFLICT (application_id, version) DO NOTHING`,
			a.ID, a.Version, a.HourlyRate, a.Deployment, a.Inputs, a.Signature)
		if err != nil {
			return fmt.Errorf("update application %d: version %d: %w", a.ID, a.Version, err)
		}
		return nil
	})
}

// DeleteApp deletes one of the caller's applications (a retired one included), refusing (ECONFLICT)
// while deployments of it are live: a failed deployment is not live, so it never blocks its publisher.
// RetireApp is the way out of the catalog while they run.
func (db *DB) DeleteApp(ctx context.Context, id int64) error {
	return db.changeApp(ctx, id, func(tx pgx.Tx) error {
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM deployments
WHERE application_id = $1 AND status NOT IN ('uninstalled', 'failed')`, id).Scan(&live); err != nil {
			return fmt.Errorf("delete application %d: %w", id, err)
		}
		if live > 0 {
			return marketplace.Errorf(marketplace.ECONFLICT, "application %d has %d live deployment(s); delete them first, "+
				"or retire it (POST /api/apps/%d/retire): out of the catalog and no new installs, while the running ones keep running", id, live, id)
		}
		_, err := tx.Exec(ctx, `UPDATE applications SET deleted_at = coalesce(deleted_at, now()), retired_at = NULL WHERE id = $1`, id)
		return err
	})
}

// RetireApp takes one of the caller's applications out of the catalog and refuses new installs of it,
// while its deployments keep running: it stays readable by id (RetiredAt set) until it is deleted.
func (db *DB) RetireApp(ctx context.Context, id int64) error {
	return db.changeApp(ctx, id, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE applications SET deleted_at = coalesce(deleted_at, now()), retired_at = coalesce(retired_at, now())
WHERE id = $1`, id)
		return err
	})
}

// changeApp runs change on one of the caller's applications of the catalog or retired ones, with its
// row locked (installs take a share lock on it).
func (db *DB) changeApp(ctx context.Context, id int64, change func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var org int64
		err := tx.QueryRow(ctx, `SELECT coalesce(organization_id, 0) FROM applications a
WHERE id = $1 AND (deleted_at IS NULL OR retired_at IS NOT NULL) AND `+publishable("$2")+`
FOR UPDATE`, id, scopeUser(ctx)).Scan(&org)
		if errors.Is(err, pgx.ErrNoRows) {
			return appRefusal(ctx, tx, id)
		} else if err != nil {
			return fmt.Errorf("change application %d: %w", id, err)
		}
		marketplace.NoteOrganization(ctx, org)
		if err := change(tx); err != nil {
			if marketplace.ErrorCode(err) != marketplace.EINTERNAL {
				return err
			}
			return fmt.Errorf("change application %d: %w", id, err)
		}
		return nil
	})
}

// softDeletion names the columns of a row that is deleted by marking it, once no deployment uses it.
type softDeletion struct {
	what, table, owner, deploymentKey string
}

// softDelete marks one of the caller's rows deleted, refusing (ECONFLICT) while a deployment of it is
// live. The row lock orders this against installs, which take a share lock on the same row.
func (db *DB) softDelete(ctx context.Context, sd softDeletion, id int64) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var org *int64
		var role *string
		err := tx.QueryRow(ctx, `SELECT organization_id, account_role($2, `+sd.owner+`, organization_id) FROM `+sd.table+`
WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id, scopeUser(ctx)).Scan(&org, &role)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound(sd.what, id)
		} else if err != nil {
			return fmt.Errorf("delete %s %d: %w", sd.what, id, err)
		}
		if err := allowed(ctx, role, org, mayManage, sd.what, id); err != nil {
			return err
		}
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM deployments WHERE `+sd.deploymentKey+` = $1 AND status <> 'uninstalled'`, id).
			Scan(&live); err != nil {
			return fmt.Errorf("delete %s %d: %w", sd.what, id, err)
		}
		if live > 0 {
			return marketplace.Errorf(marketplace.ECONFLICT, "%s %d has %d live deployment(s); delete them first", sd.what, id, live)
		}
		if _, err := tx.Exec(ctx, `UPDATE `+sd.table+` SET deleted_at = now() WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete %s %d: %w", sd.what, id, err)
		}
		return nil
	})
}
