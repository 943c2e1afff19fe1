package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// usageColumns are a usage record as of the instant $asOf: billed_seconds and accrued_amount by the
// billing rule up to its end (or $asOf while open), amount as the seed shows it (the accrual while open,
// the stored final amount once closed), and what the last metering run stored.
func usageColumns(asOf string) string {
	upTo := `coalesce(ended_at, ` + asOf + `::timestamptz)`
	return `id, deployment_id, user_id, application_id, hourly_rate, started_at, ended_at,
  CASE WHEN ended_at IS NULL THEN usage_amount(hourly_rate, started_at, ` + asOf + `) ELSE amount END,
  usage_seconds(started_at, ` + upTo + `), usage_amount(hourly_rate, started_at, ` + upTo + `), amount, metered_at,
  opened_event_id, closed_event_id`
}

func scanUsageRecord(row pgx.Row) (*marketplace.UsageRecord, error) {
	var r marketplace.UsageRecord
	return &r, row.Scan(&r.ID, &r.DeploymentID, &r.UserID, &r.ApplicationID, &r.HourlyRate, &r.StartedAt,
		&r.EndedAt, &r.Amount, &r.BilledSeconds, &r.AccruedAmount, &r.MeteredAmount, &r.MeteredAt,
		&r.OpenedEventID, &r.ClosedEventID)
}

// FindUsageRecords lists a page of a user's usage records (of one deployment when f.DeploymentID is not
// 0) by id, with how many there are and the sums of all their amounts up to now, in one round trip: a
// deployment with thousands of records is read a page at a time. Open records show the amount accrued
// up to now, by the same formula the metering job stores.
func (db *DB) FindUsageRecords(ctx context.Context, f marketplace.UsageFilter) ([]*marketplace.UsageRecord, marketplace.UsageTotals, error) {
	var t marketplace.UsageTotals
	// One deployment's records are for whoever may read the deployment (its organization's readers
	// too); a user's whole list is the user's.
	if f.DeploymentID == 0 {
		if _, err := db.FindUserByID(ctx, f.UserID); err != nil {
			return nil, t, err
		}
	} else {
		d, err := db.FindDeploymentByID(ctx, f.DeploymentID)
		if err != nil {
			return nil, t, err
		}
		if d.ConsumerID != f.UserID {
			return nil, t, notFound("deployment", f.DeploymentID)
		}
	}
	// A user's own bill: the records of its deployments in organizations' projects are the organizations'
	// (FindOrganizationStatement), though its deployment's own records stay readable to it.
	where := ` FROM usage_records WHERE user_id = $1 AND ($3 = 0 OR deployment_id = $3) AND ($3 <> 0 OR organization_id IS NULL)`
	order := ` ORDER BY id`
	if f.NewestFirst {
		order += ` DESC`
	}
	records, err := findPage(ctx, db.pool,
		`SELECT count(*), coalesce(sum(CASE WHEN ended_at IS NULL THEN usage_amount(hourly_rate, started_at, $2) ELSE amount END), 0),
  coalesce(sum(usage_amount(hourly_rate, started_at, coalesce(ended_at, $2::timestamptz))), 0)`+where,
		`SELECT `+usageColumns("$2")+where+order,
		[]any{f.UserID, db.clock(), f.DeploymentID}, f.Page, scanUsageRecord, &t.Records, &t.Amount, &t.Accrued)
	if err != nil {
		return nil, t, fmt.Errorf("find usage records of user %d: %w", f.UserID, err)
	}
	return records, t, nil
}

// MeterOpenUsage stores the amount of every open usage record as of asOf, in one set-based statement.
// Runs for the same asOf store the same numbers, whoever runs them and however often; a run for an
// older asOf than one already stored (a late replica) changes nothing, so no amount goes backwards.
func (db *DB) MeterOpenUsage(ctx context.Context, asOf time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE usage_records
SET amount = usage_amount(hourly_rate, started_at, $1), metered_at = $1
WHERE ended_at IS NULL AND metered_at < $1 AND started_at <= $1`, asOf.UTC())
	if err != nil {
		return 0, fmt.Errorf("meter open usage as of %s: %w", asOf.Format(time.RFC3339), err)
	}
	return tag.RowsAffected(), nil
}

// Now is the billing clock: the instant the store treats as now.
func (db *DB) Now() time.Time { return db.clock() }

// RecordBillingRun appends one run of the billing job.
func (db *DB) RecordBillingRun(ctx context.Context, r *marketplace.BillingRun) error {
	err := db.pool.QueryRow(ctx, `INSERT INTO billing_runs (as_of, started_at, finished_at, records, periods_closed, error)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, r.AsOf, r.StartedAt, r.FinishedAt, r.Records, r.PeriodsClosed, r.Error).Scan(&r.ID)
	if err != nil {
		return fmt.Errorf("record billing run as of %s: %w", r.AsOf.Format(time.RFC3339), err)
	}
	return nil
}

// FindBillingRuns lists the job's runs, latest first; only the operator sees them.
func (db *DB) FindBillingRuns(ctx context.Context, p marketplace.Page) ([]*marketplace.BillingRun, int, error) {
	if !marketplace.CallerFrom(ctx).Operator {
		return nil, 0, marketplace.Errorf(marketplace.ENOTFOUND, "billing runs are the operator's")
	}
	var total int
	runs, err := findPage(ctx, db.pool, `SELECT count(*) FROM billing_runs`,
		`SELECT id, as_of, started_at, finished_at, records, periods_closed, error FROM billing_runs ORDER BY id DESC`,
		nil, p, func(row pgx.Row) (*marketplace.BillingRun, error) {
			var r marketplace.BillingRun
			return &r, row.Scan(&r.ID, &r.AsOf, &r.StartedAt, &r.FinishedAt, &r.Records, &r.PeriodsClosed, &r.Error)
		}, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find billing runs: %w", err)
	}
	return runs, total, nil
}
