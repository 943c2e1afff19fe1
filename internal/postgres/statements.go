package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Every amount over a range [from, to) is A(to) − A(from), where A(t) is the billing rule's amount of a
// record up to t (clamped to its life): ranges that tile add up exactly, as invoices' periods do.
const (
	rangeSeconds = `usage_seconds(r.started_at, least(coalesce(r.ended_at, $3), $3)) - usage_seconds(r.started_at, least(coalesce(r.ended_at, $2), $2))`
	rangeAmount  = `usage_amount(r.hourly_rate, r.started_at, least(coalesce(r.ended_at, $3), $3)) - usage_amount(r.hourly_rate, r.started_at, least(coalesce(r.ended_at, $2), $2))`
	rangeOverlap = `r.started_at < $3 AND (r.ended_at IS NULL OR r.ended_at > $2)`
)

// clampRange bounds a requested range by now: nothing is billed ahead of the clock. A zero from is the
// start of the current month, a zero to is now.
func (db *DB) clampRange(from, to time.Time) (time.Time, time.Time, error) {
	now := db.clock()
	if from.IsZero() {
		from = marketplace.PeriodOf(now).Start
	}
	if to.IsZero() {
		to = now
	}
	from, to = from.UTC(), to.UTC()
	if to.After(now) {
		to = now
	}
	if !from.Before(to) {
		return from, to, marketplace.Errorf(marketplace.EINVALID, "from (%s) must be before to (%s) and before now",
			from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}

// FindStatement is what a consumer's usage records were billed over [from, to), to capped at now: one
// page of its lines, by usage record, and the totals of all of them, in one round trip.
func (db *DB) FindStatement(ctx context.Context, userID int64, from, to time.Time, p marketplace.Page) (*marketplace.Statement, error) {
	if _, err := db.FindUserByID(ctx, userID); err != nil {
		return nil, err
	}
	from, to, err := db.clampRange(from, to)
	if err != nil {
		return nil, err
	}
	s := &marketplace.Statement{UserID: userID, From: from, To: to, Currency: db.terms.Currency}
	where := ` FROM usage_records r WHERE r.user_id = $1 AND r.organization_id IS NULL AND ` + rangeOverlap
	s.Lines, err = findPage(ctx, db.pool,
		`SELECT count(*), coalesce(sum(`+rangeSeconds+`), 0)::bigint, coalesce(sum(`+rangeAmount+`), 0)`+where,
		// The page's rows are picked first and only they are billed: OFFSET skips the others unbilled.
		`SELECT r.id, r.deployment_id, r.application_id, r.hourly_rate, r.started_at, r.ended_at, `+rangeSeconds+`, `+rangeAmount+`
FROM (SELECT r.id, r.deployment_id, r.application_id, r.hourly_rate, r.started_at, r.ended_at`+where+` ORDER BY r.id`+pageHere+`) r ORDER BY r.id`,
		[]any{userID, from, to}, p, func(row pgx.Row) (marketplace.StatementLine, error) {
			var l marketplace.StatementLine
			err := row.Scan(&l.UsageRecordID, &l.DeploymentID, &l.ApplicationID, &l.HourlyRate, &l.StartedAt, &l.EndedAt,
				&l.Seconds, &l.Amount)
			return l, err
		}, &s.LineCount, &s.Seconds, &s.Total)
	if err != nil {
		return nil, fmt.Errorf("statement of user %d: %w", userID, err)
	}
	return s, nil
}

// publisherScope refuses a caller who is neither the publisher nor the operator, as not found.
func (db *DB) publisherScope(ctx context.Context, publisherID int64) error {
	if !marketplace.CallerFrom(ctx).Owns(publisherID) {
		return notFound("publisher", publisherID)
	}
	_, err := db.FindUserByID(ctx, publisherID)
	return err
}

// FindRevenue sums, per application of the publisher, what its deployments were billed over [from, to)
// (to capped at now), with the marketplace's fee at the current terms. Amounts are exact to 6 places.
func (db *DB) FindRevenue(ctx context.Context, publisherID int64, from, to time.Time) (*marketplace.Revenue, error) {
	if err := db.publisherScope(ctx, publisherID); err != nil {
		return nil, err
	}
	from, to, err := db.clampRange(from, to)
	if err != nil {
		return nil, err
	}
	r, err := db.revenue(ctx, `a.publisher_id = $1 AND a.organization_id IS NULL`, publisherID, from, to)
	if err != nil {
		return nil, fmt.Errorf("revenue of publisher %d: %w", publisherID, err)
	}
	r.PublisherID, r.From, r.To, r.Currency = publisherID, from, to, db.terms.Currency
	return r, nil
}

// FindPayout is what the invoices of closed period p charged for the publisher's applications, less
// the fee at the terms the period was closed with, in cents.
func (db *DB) FindPayout(ctx context.Context, publisherID int64, p marketplace.Period) (*marketplace.Revenue, error) {
	if err := db.publisherScope(ctx, publisherID); err != nil {
		return nil, err
	}
	currency, fee, err := db.closedTerms(ctx, p)
	if err != nil {
		return nil, err
	}
	rows, _ := db.pool.Query(ctx, `SELECT l.application_id, max(l.application_name), count(DISTINCT l.deployment_id), sum(l.seconds)::bigint, sum(l.charge)
FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
WHERE l.publisher_id = $1 AND i.period_start = $2
  AND NOT EXISTS (SELECT 1 FROM applications oa WHERE oa.id = l.application_id AND oa.organization_id IS NOT NULL)
GROUP BY l.application_id ORDER BY l.application_id`, publisherID, p.Start)
	r, err := collectRevenue(rows, fee, 2)
	if err != nil {
		return nil, fmt.Errorf("payout of publisher %d for %s: %w", publisherID, p, err)
	}
	r.PublisherID, r.Period, r.From, r.To, r.Currency = publisherID, p.String(), p.Start, p.End(), currency
	return r, nil
}

// revenue is what the applications that owner (a condition on applications a, with $1 the owner's
// id) matches earned over [from, to), at the current terms.
func (db *DB) revenue(ctx context.Context, owner string, id int64, from, to time.Time) (*marketplace.Revenue, error) {
	rows, _ := db.pool.Query(ctx, `SELECT a.id, a.name, count(*), sum(`+rangeSeconds+`)::bigint, sum(`+rangeAmount+`)
FROM applications a JOIN usage_records r ON r.application_id = a.id
WHERE `+owner+` AND `+rangeOverlap+`
GROUP BY a.id, a.name ORDER BY a.id`, id, from, to)
	return collectRevenue(rows, db.terms.FeePercent, marketplace.MaxRateDecimals)
}

// closedTerms are the currency and fee percent closed period p was closed with; ENOTFOUND when it is
// not closed.
func (db *DB) closedTerms(ctx context.Context, p marketplace.Period) (string, decimal.Decimal, error) {
	var currency string
	var fee decimal.Decimal
	err := db.pool.QueryRow(ctx, `SELECT currency, fee_percent FROM billing_periods WHERE starts_at = $1`, p.Start).Scan(&currency, &fee)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fee, marketplace.Errorf(marketplace.ENOTFOUND, "period %s is not closed: a payout exists once it is", p)
	} else if err != nil {
		return "", fee, fmt.Errorf("terms of period %s: %w", p, err)
	}
	return currency, fee, nil
}

// collectRevenue reads (application, name, deployments, seconds, gross) rows and works out each
// application's fee, rounded half to even to places, and net; the totals are the sums of the rows.
func collectRevenue(rows pgx.Rows, feePercent decimal.Decimal, places int32) (*marketplace.Revenue, error) {
	apps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (marketplace.AppRevenue, error) {
		var a marketplace.AppRevenue
		err := row.Scan(&a.ApplicationID, &a.Name, &a.Deployments, &a.Seconds, &a.Gross)
		return a, err
	})
	if err != nil {
		return nil, err
	}
	r := &marketplace.Revenue{FeePercent: feePercent, Applications: apps}
	if r.Applications == nil {
		r.Applications = []marketplace.AppRevenue{}
	}
	hundred, hour := decimal.NewFromInt(100), decimal.NewFromInt(3600)
	for i := range r.Applications {
		a := &r.Applications[i]
		a.Hours = decimal.NewFromInt(a.Seconds).DivRound(hour, 6)
		a.Fee = a.Gross.Mul(feePercent).Div(hundred).RoundBank(places)
		a.Net = a.Gross.Sub(a.Fee)
		r.Gross, r.Fee, r.Net = r.Gross.Add(a.Gross), r.Fee.Add(a.Fee), r.Net.Add(a.Net)
	}
	return r, nil
}
