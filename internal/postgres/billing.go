package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// FindUsageRecords lists a user's usage records, of one deployment when deploymentID is not 0. Open
// records show the amount accrued up to now, by the same formula the metering job stores.
func (db *DB) FindUsageRecords(ctx context.Context, userID, deploymentID int64) ([]*marketplace.UsageRecord, error) {
	if _, err := db.FindUserByID(ctx, userID); err != nil {
		return nil, err
	}
	if deploymentID != 0 {
		d, err := db.FindDeploymentByID(ctx, deploymentID)
		if err != nil {
			return nil, err
		}
		if d.ConsumerID != userID {
			return nil, notFound("deployment", deploymentID)
		}
	}
	rows, _ := db.pool.Query(ctx, `SELECT id, deployment_id, user_id, application_id, hourly_rate, started_at, ended_at,
  CASE WHEN ended_at IS NULL THEN usage_amount(hourly_rate, started_at, now()) ELSE amount END
FROM usage_records WHERE user_id = $1 AND ($2 = 0 OR deployment_id = $2) ORDER BY id`, userID, deploymentID)
	records, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*marketplace.UsageRecord, error) {
		var r marketplace.UsageRecord
		return &r, row.Scan(&r.ID, &r.DeploymentID, &r.UserID, &r.ApplicationID, &r.HourlyRate, &r.StartedAt,
			&r.EndedAt, &r.Amount)
	})
	if err != nil {
		return nil, fmt.Errorf("find usage records of user %d: %w", userID, err)
	}
	return records, nil
}

// usageAmountNow is a record's amount up to now: the stored one once closed, the live accrual while open.
const usageAmountNow = `CASE WHEN ended_at IS NULL THEN usage_amount(hourly_rate, started_at, now()) ELSE amount END`

// FindUsageRecordsPage lists a page of a user's usage records by id, with how many there are and the sum
// of all their amounts up to now, in one round trip.
func (db *DB) FindUsageRecordsPage(ctx context.Context, userID int64, p marketplace.Page) ([]*marketplace.UsageRecord, int, marketplace.Money, error) {
	var total int
	var sum marketplace.Money
	if _, err := db.FindUserByID(ctx, userID); err != nil {
		return nil, 0, sum, err
	}
	records, err := findPage(ctx, db.pool,
		`SELECT count(*), coalesce(sum(`+usageAmountNow+`), 0) FROM usage_records WHERE user_id = $1`,
		`SELECT id, deployment_id, user_id, application_id, hourly_rate, started_at, ended_at, `+usageAmountNow+`
FROM usage_records WHERE user_id = $1 ORDER BY id`, []any{userID}, p, scanUsageRecord, &total, &sum)
	if err != nil {
		return nil, 0, sum, fmt.Errorf("find usage records of user %d: %w", userID, err)
	}
	return records, total, sum, nil
}

func scanUsageRecord(row pgx.Row) (*marketplace.UsageRecord, error) {
	var r marketplace.UsageRecord
	return &r, row.Scan(&r.ID, &r.DeploymentID, &r.UserID, &r.ApplicationID, &r.HourlyRate, &r.StartedAt,
		&r.EndedAt, &r.Amount)
}

// MeterOpenUsage stores the accrued amount of every open usage record in one set-based statement. It is
// idempotent and safe to run from several replicas at once: each run writes the value of its moment.
func (db *DB) MeterOpenUsage(ctx context.Context) (int64, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE usage_records
SET amount = usage_amount(hourly_rate, started_at, now()), metered_at = now() WHERE ended_at IS NULL`)
	if err != nil {
		return 0, fmt.Errorf("meter open usage: %w", err)
	}
	return tag.RowsAffected(), nil
}
