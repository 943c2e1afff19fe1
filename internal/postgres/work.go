package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// The methods below are the guarded status transitions that make at-least-once delivery safe: each
// UPDATE names the state it leaves (and the attempt that holds the claim), so a duplicate, late or
// replayed task matches no row and changes nothing. They act for the operator: a task has no caller.

// ClaimInstall takes a pending deployment whose attempt is due, or an installing one whose worker lost
// its lease (a crash), and holds it for lease. It returns nil when there is nothing to do.
func (db *DB) ClaimInstall(ctx context.Context, id int64, lease time.Duration, maxAttempts int) (*marketplace.Deployment, error) {
	return db.claim(ctx, id, `UPDATE deployments
SET status = 'installing', attempts = attempts + 1, lease_expires_at = now() + $2::interval, updated_at = now()
WHERE id = $1 AND attempts < $3 AND ((status = 'pending' AND next_attempt_at <= now())
                                  OR (status = 'installing' AND lease_expires_at < now()))
RETURNING `+deploymentColumns, lease, maxAttempts)
}

// ClaimUninstall takes an uninstalling deployment whose attempt is due and not held by a live lease.
func (db *DB) ClaimUninstall(ctx context.Context, id int64, lease time.Duration, maxAttempts int) (*marketplace.Deployment, error) {
	return db.claim(ctx, id, `UPDATE deployments
SET attempts = attempts + 1, lease_expires_at = now() + $2::interval, updated_at = now()
WHERE id = $1 AND status = 'uninstalling' AND attempts < $3
  AND ((lease_expires_at IS NULL AND next_attempt_at <= now()) OR lease_expires_at < now())
RETURNING `+deploymentColumns, lease, maxAttempts)
}

func (db *DB) claim(ctx context.Context, id int64, q string, lease time.Duration, maxAttempts int) (*marketplace.Deployment, error) {
	d, err := scanDeployment(db.work.QueryRow(ctx, q, id, lease, maxAttempts))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("claim deployment %d: %w", id, err)
	}
	return d, nil
}

// ClaimUpgrade takes an upgrading deployment whose attempt is due and not held by a live lease.
func (db *DB) ClaimUpgrade(ctx context.Context, id int64, lease time.Duration, maxAttempts int) (*marketplace.Deployment, error) {
	return db.claim(ctx, id, `UPDATE deployments
SET attempts = attempts + 1, lease_expires_at = now() + $2::interval, updated_at = now()
WHERE id = $1 AND status = 'upgrading' AND attempts < $3
  AND ((lease_expires_at IS NULL AND next_attempt_at <= now()) OR lease_expires_at < now())
RETURNING `+deploymentColumns, lease, maxAttempts)
}

// ExtendLease keeps attempt's claim alive for another lease; false means the claim is lost.
func (db *DB) ExtendLease(ctx context.Context, id int64, op marketplace.Operation, attempt int, lease time.Duration) (bool, error) {
	tag, err := db.work.Exec(ctx, `UPDATE deployments SET lease_expires_at = now() + $3::interval
WHERE id = $1 AND attempts = $2 AND status = $4 AND lease_expires_at IS NOT NULL`,
		id, attempt, lease, inFlight(op))
	if err != nil {
		return false, fmt.Errorf("extend lease of deployment %d: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// CompleteInstall marks the deployment installed with its placement and opens its usage record with the
// rate the deployment was accepted at, in one transaction. The record is unique per deployment, so a
// replay cannot open a second one.
func (db *DB) CompleteInstall(ctx context.Context, id int64, attempt int, p marketplace.Placement) error {
	return pgx.BeginFunc(ctx, db.work, func(tx pgx.Tx) error {
		now := db.clock()
		if err := atInstant(ctx, tx, now); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE deployments
SET status = 'installed', namespace = $3, release_name = $4, chart_version = $5, vm_name = $6, ip_address = $7,
    failure_reason = '', lease_expires_at = NULL, updated_at = now()
WHERE id = $1 AND attempts = $2 AND status = 'installing'`,
			id, attempt, p.Namespace, p.ReleaseName, p.ChartVersion, p.VMName, p.IPAddress)
		if err != nil {
			return fmt.Errorf("complete install of deployment %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("complete install of deployment %d attempt %d: %w", id, attempt, marketplace.ErrClaimLost)
		}
		_, err = tx.Exec(ctx, `INSERT INTO usage_records (deployment_id, user_id, application_id, hourly_rate, started_at, metered_at, opened_event_id)
SELECT id, consumer_id, application_id, hourly_rate, $2, $2, `+lastEventOf+` FROM deployments WHERE id = $1
ON CONFLICT (deployment_id) WHERE ended_at IS NULL DO NOTHING`, id, now)
		if err != nil {
			return fmt.Errorf("open usage of deployment %d: %w", id, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO deployment_revisions (deployment_id, revision, version, inputs, chart_version)
SELECT id, 1, version, inputs, chart_version FROM deployments WHERE id = $1 ON CONFLICT DO NOTHING`, id)
		if err != nil {
			return fmt.Errorf("record the first revision of deployment %d: %w", id, err)
		}
		return nil
	})
}

// CompleteUninstall marks the deployment uninstalled.
func (db *DB) CompleteUninstall(ctx context.Context, id int64, attempt int) error {
	tag, err := db.work.Exec(ctx, `UPDATE deployments
SET status = 'uninstalled', failure_reason = '', lease_expires_at = NULL, updated_at = now()
WHERE id = $1 AND attempts = $2 AND status = 'uninstalling'`, id, attempt)
	if err != nil {
		return fmt.Errorf("complete uninstall of deployment %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("complete uninstall of deployment %d attempt %d: %w", id, attempt, marketplace.ErrClaimLost)
	}
	return nil
}

// FailAttempt releases attempt's claim with the reason it failed. The operation is due again after
// f.RetryAfter, or, when f.Final, the deployment ends failed (and records whether its resources were
// removed). The reason is stored with every URL's credentials redacted, so no copy of it (the audit
// trail's, a page's, an answer's) can show them.
func (db *DB) FailAttempt(ctx context.Context, id int64, op marketplace.Operation, attempt int, f marketplace.AttemptFailure) error {
	tag, err := db.work.Exec(ctx, `UPDATE deployments
SET status = CASE WHEN $5 AND status = 'upgrading' THEN 'installed' WHEN $5 THEN 'failed'
                  WHEN status = 'installing' THEN 'pending' ELSE status END,
    target_version = CASE WHEN $5 THEN NULL ELSE target_version END,
    target_inputs = CASE WHEN $5 THEN NULL ELSE target_inputs END,
    failure_reason = $3, lease_expires_at = NULL, next_attempt_at = now() + $4::interval, updated_at = now(),
    cleaned_up_at = CASE WHEN $7 THEN now() END
WHERE id = $1 AND attempts = $2 AND status = $6`, id, attempt, marketplace.RedactURLs(f.Reason), f.RetryAfter, f.Final, inFlight(op), f.Final && f.CleanedUp)
	if err != nil {
		return fmt.Errorf("record failed attempt %d of deployment %d: %w", attempt, id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("record failed attempt %d of deployment %d: %w", attempt, id, marketplace.ErrClaimLost)
	}
	return nil
}

// HandBack releases attempt's claim without counting the attempt: a worker that stops mid-attempt must
// not use up the deployment's attempts. The operation is due again at once.
func (db *DB) HandBack(ctx context.Context, id int64, op marketplace.Operation, attempt int) error {
	tag, err := db.work.Exec(ctx, `UPDATE deployments
SET status = CASE WHEN status = 'installing' THEN 'pending' ELSE status END, attempts = attempts - 1,
    lease_expires_at = NULL, next_attempt_at = now(), updated_at = now()
WHERE id = $1 AND attempts = $2 AND status = $3`, id, attempt, inFlight(op))
	if err != nil {
		return fmt.Errorf("hand back attempt %d of deployment %d: %w", attempt, id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("hand back attempt %d of deployment %d: %w", attempt, id, marketplace.ErrClaimLost)
	}
	return nil
}

// FindUncleanedFailures lists failed deployments whose resources are not known to be removed: a final
// failure whose removal failed, or one ended by FailAbandoned.
func (db *DB) FindUncleanedFailures(ctx context.Context, limit int) ([]*marketplace.Deployment, error) {
	rows, _ := db.work.Query(ctx, `SELECT `+deploymentColumns+` FROM deployments
WHERE status = 'failed' AND cleaned_up_at IS NULL AND (lease_expires_at IS NULL OR lease_expires_at < now())
ORDER BY id LIMIT $1`, limit)
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*marketplace.Deployment, error) { return scanDeployment(row) })
	if err != nil {
		return nil, fmt.Errorf("find failed deployments to clean up: %w", err)
	}
	return ds, nil
}

// ClaimCleanup holds a failed deployment whose resources are still owed a removal for lease, unless
// another removal holds it. It reports whether the caller now holds it.
func (db *DB) ClaimCleanup(ctx context.Context, id int64, lease time.Duration) (bool, error) {
	tag, err := db.work.Exec(ctx, `UPDATE deployments SET lease_expires_at = now() + $2::interval
WHERE id = $1 AND status = 'failed' AND cleaned_up_at IS NULL AND (lease_expires_at IS NULL OR lease_expires_at < now())`, id, lease)
	if err != nil {
		return false, fmt.Errorf("claim the clean-up of deployment %d: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// MarkCleanedUp records that a failed deployment's resources are removed and releases its clean-up
// claim. A deployment no longer failed (its consumer deleted it meanwhile) is left as it is: its
// uninstall goes ahead once the claim's lease has lapsed.
func (db *DB) MarkCleanedUp(ctx context.Context, id int64) error {
	if _, err := db.work.Exec(ctx, `UPDATE deployments SET cleaned_up_at = now(), lease_expires_at = NULL
WHERE id = $1 AND status = 'failed' AND cleaned_up_at IS NULL`, id); err != nil {
		return fmt.Errorf("mark deployment %d cleaned up: %w", id, err)
	}
	return nil
}

// FailAbandoned ends failed every deployment whose last allowed attempt lost its lease without
// reporting back.
func (db *DB) FailAbandoned(ctx context.Context, maxAttempts int) (int64, error) {
	tag, err := db.work.Exec(ctx, `UPDATE deployments
SET status = CASE WHEN status = 'upgrading' THEN 'installed' ELSE 'failed' END, -- a failed upgrade leaves the old revision
    target_version = NULL, target_inputs = NULL, lease_expires_at = NULL, updated_at = now(),
    failure_reason = replace(replace(status, 'ing', ''), 'upgrad', 'upgrade') || ' attempt ' || attempts || ' of ' || $1::int ||
                     ': the worker stopped reporting (killed, or stuck past its lease) and no attempts are left'
WHERE status IN ('installing', 'uninstalling', 'upgrading') AND lease_expires_at < now() AND attempts >= $1::int`, maxAttempts)
	if err != nil {
		return 0, fmt.Errorf("fail abandoned deployments: %w", err)
	}
	return tag.RowsAffected(), nil
}

// inFlight is the status a deployment has while an attempt of op holds it.
func inFlight(op marketplace.Operation) marketplace.Status {
	switch op {
	case marketplace.OpUninstall:
		return marketplace.StatusUninstalling
	case marketplace.OpUpgrade:
		return marketplace.StatusUpgrading
	}
	return marketplace.StatusInstalling
}

// FindOwedWork lists the tasks the queue must hold: every deployment whose operation is due and not held
// by a live lease. The reconciler enqueues them; their ids make the enqueue a no-op when already queued.
func (db *DB) FindOwedWork(ctx context.Context, limit int) ([]marketplace.Task, error) {
	rows, _ := db.work.Query(ctx, `SELECT id, status, attempts FROM deployments
WHERE status IN ('pending', 'installing', 'uninstalling', 'upgrading')
  AND ((lease_expires_at IS NULL AND next_attempt_at <= now()) OR lease_expires_at < now())
ORDER BY next_attempt_at LIMIT $1`, limit)
	tasks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (marketplace.Task, error) {
		var t marketplace.Task
		var status marketplace.Status
		err := row.Scan(&t.DeploymentID, &status, &t.Attempt)
		switch status {
		case marketplace.StatusUninstalling:
			t.Op = marketplace.OpUninstall
		case marketplace.StatusUpgrading:
			t.Op = marketplace.OpUpgrade
		default:
			t.Op = marketplace.OpInstall
		}
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("find owed work: %w", err)
	}
	return tasks, nil
}

// FindAutoUpgrades lists installed deployments with policy auto behind their application's latest
// version not deprecated, whose last change did not fail (a failed automatic upgrade is not tried again
// and again: its consumer sees the reason and decides), and whose accepted rate (max_hourly_rate, or the
// rate they run at) that version does not exceed: a dearer one waits for the consumer. Each comes with
// the version found, so a dearer one published meanwhile is not what the upgrade installs.
func (db *DB) FindAutoUpgrades(ctx context.Context, limit int) ([]marketplace.AutoUpgrade, error) {
	rows, _ := db.work.Query(ctx, `SELECT id, `+latestVersion+` FROM deployments
WHERE upgrade_policy = 'auto' AND status = 'installed' AND failure_reason = '' AND version < `+latestVersion+`
  AND `+latestRate+` <= coalesce(max_hourly_rate, hourly_rate)
ORDER BY id LIMIT $1`, limit)
	ids, err := pgx.CollectRows(rows, pgx.RowToStructByPos[marketplace.AutoUpgrade])
	if err != nil {
		return nil, fmt.Errorf("find deployments to upgrade automatically: %w", err)
	}
	return ids, nil
}

// FindDeletedProjects lists deleted projects whose provider resources are still owed a removal.
func (db *DB) FindDeletedProjects(ctx context.Context, limit int) ([]int64, error) {
	rows, _ := db.pool.Query(ctx, `SELECT id FROM projects
WHERE deleted_at IS NOT NULL AND resources_removed_at IS NULL ORDER BY id LIMIT $1`, limit)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("find deleted projects: %w", err)
	}
	return ids, nil
}

// MarkProjectRemoved records that a deleted project's provider resources are gone.
func (db *DB) MarkProjectRemoved(ctx context.Context, id int64) error {
	if _, err := db.pool.Exec(ctx, `UPDATE projects SET resources_removed_at = now()
WHERE id = $1 AND deleted_at IS NOT NULL AND resources_removed_at IS NULL`, id); err != nil {
		return fmt.Errorf("mark project %d removed: %w", id, err)
	}
	return nil
}
