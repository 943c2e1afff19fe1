package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// RequestUpgrade moves one of the caller's installed deployments to upgrading towards a version of its
// application (0: the latest one not deprecated) and inputs. Its current revision keeps running and
// billing until the upgrade completes. An upgrade to the version and inputs that run is refused, and so
// is one past the deployment's upgrades per hour.
func (db *DB) RequestUpgrade(ctx context.Context, id int64, version int, inputs map[string]any) (*marketplace.Deployment, error) {
	if inputs == nil {
		inputs = map[string]any{}
	}
	var d *marketplace.Deployment
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		if d, err = lockDeployment(ctx, tx, id); err != nil {
			return err
		}
		// Another version (or inputs) of an application the caller may no longer see is not found; the
		// deployment itself keeps running.
		if err := appVisible(ctx, tx, d.ApplicationID); err != nil {
			return err
		}
		if d.Status != marketplace.StatusInstalled {
			return marketplace.Errorf(marketplace.ECONFLICT, "deployment %d is %s: only an installed deployment can be upgraded or rolled back", id, d.Status)
		}
		var deprecated bool
		err = tx.QueryRow(ctx, `SELECT version, deprecated_at IS NOT NULL FROM application_versions
WHERE application_id = $1 AND (version = $2 OR ($2 = 0 AND deprecated_at IS NULL)) ORDER BY version DESC LIMIT 1`,
			d.ApplicationID, version).Scan(&version, &deprecated)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return marketplace.Errorf(marketplace.EINVALID, "application %d has no such version to upgrade to", d.ApplicationID)
		case err != nil:
			return fmt.Errorf("upgrade deployment %d: %w", id, err)
		case deprecated && version != d.Version:
			return marketplace.Errorf(marketplace.ECONFLICT, "version %d of application %d is deprecated: nothing new moves to it", version, d.ApplicationID)
		}
		// An upgrade to what runs changes nothing but the bill's records: refused.
		var same bool
		if err := tx.QueryRow(ctx, `SELECT version = $2 AND inputs = $3::jsonb FROM deployments WHERE id = $1`, id, version, inputs).Scan(&same); err != nil {
			return fmt.Errorf("upgrade deployment %d: %w", id, err)
		}
		if same {
			return marketplace.Errorf(marketplace.ECONFLICT, "deployment %d already runs version %d with these inputs: there is nothing to change", id, version)
		}
		if limit := db.quotas.UpgradesPerHour; limit > 0 {
			var recent int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM deployment_revisions WHERE deployment_id = $1 AND created_at > now() - interval '1 hour'`, id).Scan(&recent); err != nil {
				return fmt.Errorf("upgrade deployment %d: %w", id, err)
			}
			if recent >= limit {
				return marketplace.Errorf(marketplace.ETOOMANY, "deployment %d was upgraded or rolled back %d times in the last hour, the most it may be (UPGRADES_PER_HOUR): try again later", id, recent)
			}
		}
		if d.Type == marketplace.TypeVM {
			if err := admitVMUpgrade(ctx, tx, d, version); err != nil {
				return err
			}
		}
		d, err = scanDeployment(tx.QueryRow(ctx, `UPDATE deployments
SET status = 'upgrading', target_version = $2, target_inputs = $3, attempts = 0, lease_expires_at = NULL,
    next_attempt_at = now(), failure_reason = '', updated_at = now()
WHERE id = $1 RETURNING `+deploymentColumns, id, version, inputs))
		if err != nil {
			return fmt.Errorf("upgrade deployment %d: %w", id, err)
		}
		return nil
	})
	return d, err
}

// FindRevisions lists a page of the revisions one of the caller's deployments ran, oldest first (newest
// first with f.NewestFirst), and how many there are, in one round trip.
func (db *DB) FindRevisions(ctx context.Context, f marketplace.RevisionFilter) ([]*marketplace.Revision, int, error) {
	if _, err := db.FindDeploymentByID(ctx, f.DeploymentID); err != nil {
		return nil, 0, err
	}
	where := ` FROM deployment_revisions WHERE deployment_id = $1 AND ($2 = 0 OR revision = $2)`
	order := ` ORDER BY revision`
	if f.NewestFirst {
		order += ` DESC`
	}
	var total int
	revs, err := findPage(ctx, db.pool, `SELECT count(*)`+where,
		`SELECT revision, version, inputs, chart_version, created_at`+where+order, []any{f.DeploymentID, f.Revision}, f.Page,
		func(row pgx.Row) (*marketplace.Revision, error) {
			var r marketplace.Revision
			return &r, row.Scan(&r.Revision, &r.Version, &r.Inputs, &r.ChartVersion, &r.CreatedAt)
		}, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find the revisions of deployment %d: %w", f.DeploymentID, err)
	}
	return revs, total, nil
}

// CompleteUpgrade marks the deployment installed at its target version and inputs, records the revision
// and, when the new version's rate differs, splits its bill at this instant: the open usage record closes
// and one at the new rate opens, in one transaction. A revision of 0 (a provider that keeps no count, like libvirt's) is recorded
// as the one after the deployment's last; an empty IP address keeps the recorded one.
func (db *DB) CompleteUpgrade(ctx context.Context, id int64, attempt int, p marketplace.Placement, revision int) error {
	return pgx.BeginFunc(ctx, db.work, func(tx pgx.Tx) error {
		now := db.clock()
		if err := atInstant(ctx, tx, now); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE deployments d
SET status = 'installed', version = d.target_version, inputs = d.target_inputs, chart_version = $3,
    ip_address = CASE WHEN $4::text = '' THEN d.ip_address ELSE $4::text END,
    hourly_rate = v.hourly_rate, target_version = NULL, target_inputs = NULL, failure_reason = '',
    lease_expires_at = NULL, updated_at = now()
FROM application_versions v
WHERE d.id = $1 AND d.attempts = $2 AND d.status = 'upgrading'
  AND v.application_id = d.application_id AND v.version = d.target_version`, id, attempt, p.ChartVersion, p.IPAddress)
		if err != nil {
			return fmt.Errorf("complete upgrade of deployment %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("complete upgrade of deployment %d attempt %d: %w", id, attempt, marketplace.ErrClaimLost)
		}
		// The bill splits only where the rate changes: a record per rate, never slivers of one.
		var rateChanged bool
		if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT r.hourly_rate <> d.hourly_rate FROM usage_records r
  WHERE r.deployment_id = d.id AND r.ended_at IS NULL), true) FROM deployments d WHERE d.id = $1`, id).Scan(&rateChanged); err != nil {
			return fmt.Errorf("complete upgrade of deployment %d: %w", id, err)
		}
		if rateChanged {
			if err := closeUsage(ctx, tx, id, now); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO usage_records (deployment_id, user_id, application_id, hourly_rate, started_at, metered_at, opened_event_id)
SELECT id, consumer_id, application_id, hourly_rate, $2, $2, `+lastEventOf+` FROM deployments WHERE id = $1`, id, now); err != nil {
				return fmt.Errorf("open the usage of deployment %d at its new rate: %w", id, err)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO deployment_revisions (deployment_id, revision, version, inputs, chart_version)
SELECT id, CASE WHEN $2::int = 0 THEN (SELECT coalesce(max(revision), 0) + 1 FROM deployment_revisions WHERE deployment_id = $1) ELSE $2 END,
  version, inputs, chart_version FROM deployments WHERE id = $1
ON CONFLICT (deployment_id, revision) DO UPDATE SET version = EXCLUDED.version, inputs = EXCLUDED.inputs,
  chart_version = EXCLUDED.chart_version`, id, revision)
		if err != nil {
			return fmt.Errorf("record revision %d of deployment %d: %w", revision, id, err)
		}
		return nil
	})
}
