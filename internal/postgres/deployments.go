package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// lastEventOf is the audit event a deployment's status change just wrote (a trigger writes one per
// status, in the same transaction): what opened or closed a usage record. $1 is the deployment.
const lastEventOf = `(SELECT max(e.id) FROM audit_events e WHERE e.resource = 'deployment:' || $1::bigint)`

// latestVersion is the newest version of a deployment's application open to installs, and latestRate its
// hourly rate: none while the deployment's consumer does not see the application (a private one no longer
// shared with it, app_visible), so no new version, rate or changelog of it is shown to, nor installed
// automatically for, a consumer who lost sight of it; what runs keeps running.
const (
	latestVersion = `(SELECT max(v.version) FROM application_versions v
 WHERE v.application_id = deployments.application_id AND v.deprecated_at IS NULL AND ` + consumerSees + `)`
	latestRate = `(SELECT v.hourly_rate FROM application_versions v
 WHERE v.application_id = deployments.application_id AND v.deprecated_at IS NULL AND ` + consumerSees + ` ORDER BY v.version DESC LIMIT 1)`
	consumerSees = `EXISTS (SELECT FROM applications a WHERE a.id = deployments.application_id
   AND app_visible(deployments.consumer_id, a.id, a.private, a.publisher_id, a.organization_id))`
)

const deploymentColumns = `id, application_id, project_id, consumer_id, type, status, inputs, hourly_rate, version,
` + latestVersion + ` AS latest_version, ` + latestRate + ` AS latest_rate,
namespace, release_name, chart_version, vm_name, ip_address, failure_reason, attempts, cleaned_up_at, created_at, updated_at,
target_version, target_inputs, upgrade_policy, max_hourly_rate, coalesce(organization_id, 0), target_id`

func scanDeployment(row pgx.Row) (*marketplace.Deployment, error) { return scanDeploymentAnd(row) }

// scanDeploymentAnd reads deploymentColumns, then extra.
func scanDeploymentAnd(row pgx.Row, extra ...any) (*marketplace.Deployment, error) {
	var d marketplace.Deployment
	var latest, target *int
	var latestRate *marketplace.Money
	err := row.Scan(append([]any{&d.ID, &d.ApplicationID, &d.ProjectID, &d.ConsumerID, &d.Type, &d.Status, &d.Inputs,
		&d.HourlyRate, &d.Version, &latest, &latestRate, &d.Placement.Namespace, &d.Placement.ReleaseName, &d.Placement.ChartVersion, &d.Placement.VMName,
		&d.Placement.IPAddress, &d.FailureReason, &d.Attempts, &d.CleanedUpAt, &d.CreatedAt, &d.UpdatedAt,
		&target, &d.TargetInputs, &d.UpgradePolicy, &d.MaxHourlyRate, &d.OrganizationID, &d.TargetID}, extra...)...)
	if target != nil {
		d.TargetVersion = *target
	}
	if latest != nil && *latest > d.Version && latestRate != nil {
		d.UpdateAvailable = &marketplace.VersionUpdate{Version: *latest, HourlyRate: *latestRate}
		if accepted := d.AcceptedRate(); d.UpgradePolicy == "auto" && latestRate.GreaterThan(accepted.Decimal) {
			d.UpdateAvailable.Waiting = fmt.Sprintf("version %d costs %s an hour, above the %s this deployment accepts automatically (max_hourly_rate): it waits for you to upgrade it",
				*latest, latestRate, accepted)
		}
	}
	return &d, err
}

// CreateDeployment stores a pending deployment of an application into one of the caller's projects, with
// the application's hourly rate of this moment, which its usage record will bill. The pending status is
// itself the record that an install is owed: nothing accepted is lost if the queue is down. A retired
// application, a consumer at its deployment quota and a virtual machine the VM host has no room for are
// refused (ECONFLICT); the consumer's row lock makes the quota's count and the insert one step, the VM
// host's row lock (admitVM) the sum of the host's guests and the insert.
func (db *DB) CreateDeployment(ctx context.Context, d *marketplace.Deployment) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, d.ConsumerID); err != nil {
			return err
		}
		// The share lock orders this against DeleteApp and CreateVersion, which lock the application for
		// update.
		var appType string
		var retired bool
		err := tx.QueryRow(ctx, `SELECT deployment_type, retired_at IS NOT NULL FROM applications a
WHERE id = $1 AND (deleted_at IS NULL OR retired_at IS NOT NULL) AND `+visibleTo("$2")+` FOR SHARE OF a`,
			d.ApplicationID, scopeUser(ctx)).Scan(&appType, &retired)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("application", d.ApplicationID)
		} else if err != nil {
			return fmt.Errorf("create deployment: %w", err)
		}
		// The version it pins (the latest one open to installs unless one is named) and that version's rate.
		var rate marketplace.Money
		var deprecated bool
		var spec marketplace.DeploymentSpec
		err = tx.QueryRow(ctx, `SELECT version, hourly_rate, deprecated_at IS NOT NULL, deployment FROM application_versions
WHERE application_id = $1 AND (version = $2 OR ($2 = 0 AND deprecated_at IS NULL)) ORDER BY version DESC LIMIT 1`,
			d.ApplicationID, d.Version).Scan(&d.Version, &rate, &deprecated, &spec)
		switch {
		case errors.Is(err, pgx.ErrNoRows) && d.Version == 0:
			return marketplace.Errorf(marketplace.ECONFLICT, "every version of application %d is deprecated: it takes no new installs", d.ApplicationID)
		case errors.Is(err, pgx.ErrNoRows):
			return marketplace.Errorf(marketplace.EINVALID, "application %d has no version %d", d.ApplicationID, d.Version)
		case err != nil:
			return fmt.Errorf("create deployment: %w", err)
		case deprecated:
			return marketplace.Errorf(marketplace.ECONFLICT, "version %d of application %d is deprecated: it takes no new installs", d.Version, d.ApplicationID)
		}
		if retired {
			return marketplace.Errorf(marketplace.ECONFLICT,
				"application %d is retired: its publisher withdrew it, so it takes no new installs (its deployments keep running)", d.ApplicationID)
		}
		// The consumer deploys into its own project, or one of an organization where it may deploy.
		var org *int64
		var role *string
		if err := tx.QueryRow(ctx, `SELECT organization_id, account_role($2, user_id, organization_id) FROM projects
WHERE id = $1 AND deleted_at IS NULL FOR SHARE`, d.ProjectID, d.ConsumerID).Scan(&org, &role); errors.Is(err, pgx.ErrNoRows) {
			return notFound("project", d.ProjectID)
		} else if err != nil {
			return fmt.Errorf("create deployment: %w", err)
		}
		if err := allowed(ctx, role, org, mayDeploy, "project", d.ProjectID); err != nil {
			return err
		}
		if err := checkQuota(ctx, tx, d.ConsumerID, db.quotas.Deployments, "live deployments", "QUOTA_DEPLOYMENTS_PER_USER",
			`SELECT count(*) FROM deployments WHERE consumer_id = $1 AND status <> 'uninstalled'`); err != nil {
			return err
		}
		if appType == marketplace.TypeVM {
			size, err := spec.Size()
			if err != nil {
				return err
			}
			if err := admitVM(ctx, tx, size, 0); err != nil {
				return err
			}
		}
		if d.Inputs == nil {
			d.Inputs = map[string]any{}
		}
		policy := d.UpgradePolicy
		if policy == "" {
			policy = "manual"
		}
		created, err := scanDeployment(tx.QueryRow(ctx, `INSERT INTO deployments
  (application_id, project_id, consumer_id, type, inputs, hourly_rate, version, upgrade_policy, max_hourly_rate, organization_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING `+deploymentColumns, d.ApplicationID, d.ProjectID, d.ConsumerID, appType, d.Inputs, rate, d.Version, policy, d.MaxHourlyRate, org))
		if err != nil {
			return fmt.Errorf("create deployment: %w", err)
		}
		*d = *created
		return nil
	})
}

// FindDeploymentByID returns a deployment the caller may read: its own, or one of an organization
// where it reads deployments.
func (db *DB) FindDeploymentByID(ctx context.Context, id int64) (*marketplace.Deployment, error) {
	var org *int64
	var role *string
	d, err := scanDeploymentAnd(db.pool.QueryRow(ctx, `SELECT `+deploymentColumns+`, organization_id, account_role($2, consumer_id, organization_id)
FROM deployments WHERE id = $1`, id, scopeUser(ctx)), &org, &role)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("deployment", id)
	} else if err != nil {
		return nil, fmt.Errorf("find deployment %d: %w", id, err)
	}
	if err := allowed(ctx, role, org, mayRead, "deployment", id); err != nil {
		return nil, err
	}
	return d, nil
}

// FindDeployments lists a page of the caller's deployments that match f, newest first, and how many
// match in all.
func (db *DB) FindDeployments(ctx context.Context, f marketplace.DeploymentFilter) ([]*marketplace.Deployment, int, error) {
	var c conditions
	scopeOwned(ctx, &c, "consumer_id", mayRead)
	if f.ConsumerID != 0 {
		c.add("consumer_id =", f.ConsumerID)
	}
	if f.ProjectID != 0 {
		c.add("project_id =", f.ProjectID)
	}
	if f.OrganizationID != 0 {
		c.add("organization_id =", f.OrganizationID)
	}
	if f.Status != "" {
		c.add("status =", string(f.Status))
	}
	if f.UpdateAvailable {
		c.sql += " AND version < " + latestVersion
	}
	var total int
	ds, err := findPage(ctx, db.pool, `SELECT count(*) FROM deployments`+c.where(),
		`SELECT `+deploymentColumns+` FROM deployments`+c.where()+` ORDER BY id DESC`, c.args, f.Page, scanDeployment, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find deployments: %w", err)
	}
	return ds, total, nil
}

// RequestUninstall moves one of the caller's deployments to uninstalling and closes its usage record at
// this moment, in one transaction. A deployment already uninstalling or uninstalled is returned
// unchanged; one whose install is running is ECONFLICT.
func (db *DB) RequestUninstall(ctx context.Context, id int64) (*marketplace.Deployment, error) {
	var d *marketplace.Deployment
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		if d, err = lockDeployment(ctx, tx, id); err != nil {
			return err
		}
		switch d.Status {
		case marketplace.StatusUninstalling, marketplace.StatusUninstalled:
			return nil
		case marketplace.StatusInstalling, marketplace.StatusUpgrading:
			return marketplace.Errorf(marketplace.ECONFLICT,
				"deployment %d is %s; delete it once that is over (installed or failed)", id, d.Status)
		}
		at := db.clock()
		if err := atInstant(ctx, tx, at); err != nil {
			return err
		}
		d, err = scanDeployment(tx.QueryRow(ctx, `UPDATE deployments
SET status = 'uninstalling', attempts = 0, next_attempt_at = now(), failure_reason = '',
    -- A failed deployment's clean-up may hold a lease: the uninstall waits for it, one removal at a time.
    lease_expires_at = CASE WHEN status = 'failed' THEN lease_expires_at END,
    updated_at = now()
WHERE id = $1 RETURNING `+deploymentColumns, id))
		if err != nil {
			return fmt.Errorf("uninstall deployment %d: %w", id, err)
		}
		return closeUsage(ctx, tx, id, at)
	})
	return d, err
}

// lockDeployment reads a deployment the caller may change (its own, or one of an organization where it
// deploys) and locks it for the rest of tx.
func lockDeployment(ctx context.Context, tx pgx.Tx, id int64) (*marketplace.Deployment, error) {
	var org *int64
	var role *string
	d, err := scanDeploymentAnd(tx.QueryRow(ctx, `SELECT `+deploymentColumns+`, organization_id, account_role($2, consumer_id, organization_id)
FROM deployments WHERE id = $1 FOR UPDATE`, id, scopeUser(ctx)), &org, &role)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("deployment", id)
	} else if err != nil {
		return nil, fmt.Errorf("lock deployment %d: %w", id, err)
	}
	if err := allowed(ctx, role, org, mayDeploy, "deployment", id); err != nil {
		return nil, err
	}
	return d, nil
}

// atInstant makes the status changes of tx happen at at, the billing clock's instant: their audit events
// (written by the status trigger) carry it, and so do the usage records they open or close, so a bill
// can be recomputed from the audit trail alone.
func atInstant(ctx context.Context, tx pgx.Tx, at time.Time) error {
	if _, err := tx.Exec(ctx, `SELECT set_config('marketplace.at', $1::timestamptz::text, true)`, at); err != nil {
		return fmt.Errorf("set the instant of a status change: %w", err)
	}
	return nil
}

// closeUsage closes a deployment's open usage record at at, linking the audit event of the status change
// that closed it (written by the status trigger in the same transaction).
func closeUsage(ctx context.Context, tx pgx.Tx, id int64, at time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE usage_records
SET ended_at = greatest($2, started_at), amount = usage_amount(hourly_rate, started_at, $2), metered_at = $2,
    closed_event_id = `+lastEventOf+`
WHERE deployment_id = $1 AND ended_at IS NULL`, id, at); err != nil {
		return fmt.Errorf("close usage of deployment %d: %w", id, err)
	}
	return nil
}
