package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// rowQuerier is a pool or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// closeLock is the advisory lock that makes period closes take turns across replicas.
const closeLock = 7_220_010

// ClosePeriod issues the invoices of period p in one transaction: for every usage record that started
// before p ends, a "usage" line with its seconds and amount inside p (the cumulative amount at p's end
// less the one at its start, so a running deployment splits exactly at the edge and periods add up), and
// an "adjustment" line when what earlier invoices charged differs from the rule's amount at p's start
// (an uninstall whose instant fell before an edge that was closed first, for instance). A deployment's
// lines are charged together: their charges add up to the sum of their amounts rounded half to even to
// cents, once; an invoice's total is the sum of its charges.
//
// A closed period is returned as it was: closing twice, late, or from two replicas at once issues one
// set of invoices. Only the operator closes.
func (db *DB) ClosePeriod(ctx context.Context, p marketplace.Period, by string) (*marketplace.ClosedPeriod, error) {
	closed, _, err := db.closePeriod(ctx, p, by)
	return closed, err
}

// closePeriod is ClosePeriod, and says whether this call issued the invoices (false: p was closed
// already, by another call or another replica).
func (db *DB) closePeriod(ctx context.Context, p marketplace.Period, by string) (*marketplace.ClosedPeriod, bool, error) {
	if !marketplace.CallerFrom(ctx).Operator {
		return nil, false, marketplace.Errorf(marketplace.ENOTFOUND, "closing a period is the operator's")
	}
	now := db.clock()
	var closed *marketplace.ClosedPeriod
	issued := false
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, closeLock); err != nil {
			return err
		}
		var err error
		if closed, err = findClosedPeriod(ctx, tx, p); closed != nil || err != nil {
			return err
		}
		if p.End().After(now) {
			return marketplace.Errorf(marketplace.ECONFLICT, "period %s has not ended yet: it ends at %s", p, p.End().Format(time.RFC3339))
		}
		if next, err := nextPeriodToClose(ctx, tx); err != nil {
			return err
		} else if next != nil && next.Start.Before(p.Start) {
			return marketplace.Errorf(marketplace.ECONFLICT, "period %s is still open: close it before %s (periods close in order)", next, p)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO billing_periods (starts_at, ends_at, closed_at, closed_by, currency, fee_percent)
VALUES ($1, $2, $3, $4, $5, $6)`, p.Start, p.End(), now, by, db.terms.Currency, db.terms.FeePercent); err != nil {
			return err
		}
		start, end := p.Start, p.End()
		for _, stmt := range []struct {
			sql  string
			args []any
		}{
			// A month of a large marketplace is a million lines: sorting them (the charges' running sums)
			// and grouping them by record fit in memory instead of spilling to disk. Only this transaction.
			{`SET LOCAL work_mem = '256MB'`, nil},
			// S(t) and A(t): a record's whole seconds and amount up to t (clamped to its life), computed
			// once per record (a lateral VALUES of the two lines would compile its expressions anew for
			// every record, three times slower).
			{`CREATE TEMP TABLE closing ON COMMIT DROP AS
SELECT r.id AS usage_record_id, r.deployment_id, r.user_id, r.organization_id, r.application_id, r.hourly_rate,
       usage_seconds(r.started_at, least(coalesce(r.ended_at, $2), $2)) - usage_seconds(r.started_at, least(coalesce(r.ended_at, $1), $1)) AS period_seconds,
       usage_amount(r.hourly_rate, r.started_at, least(coalesce(r.ended_at, $2), $2)) - usage_amount(r.hourly_rate, r.started_at, least(coalesce(r.ended_at, $1), $1)) AS period_amount,
       usage_seconds(r.started_at, least(coalesce(r.ended_at, $1), $1)) - r.invoiced_seconds AS adjust_seconds,
       usage_amount(r.hourly_rate, r.started_at, least(coalesce(r.ended_at, $1), $1)) - r.invoiced_amount AS adjust_amount
FROM usage_records r
WHERE r.started_at < $2`, []any{start, end}},
			// A deployment is charged once: the sum of its lines' amounts rounded once. Each line's charge is
			// the rounded running sum at it less the rounded running sum before it, so the lines add up to
			// exactly that, and cutting usage into many records never rounds each piece down.
			{`CREATE TEMP TABLE closing_lines ON COMMIT DROP AS
WITH lines AS (
SELECT 'usage' AS kind, usage_record_id, deployment_id, user_id, organization_id, application_id, hourly_rate,
       period_seconds AS seconds, period_amount AS amount
FROM closing WHERE period_seconds <> 0 OR period_amount <> 0
UNION ALL
SELECT 'adjustment', usage_record_id, deployment_id, user_id, organization_id, application_id, hourly_rate, adjust_seconds, adjust_amount
FROM closing WHERE adjust_seconds <> 0 OR adjust_amount <> 0)
SELECT *, round_half_even(sum(amount) OVER running, 2) - round_half_even(sum(amount) OVER running - amount, 2) AS charge
FROM lines
WINDOW running AS (PARTITION BY user_id, deployment_id ORDER BY usage_record_id, kind DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)`, nil},
			// A temporary table has no statistics until it is analyzed: without them the joins below guess
			// 200 rows and look a million records up one by one.
			{`ANALYZE closing_lines`, nil},
			// An invoice per account: a user's own deployments, or an organization's (its members' lines together).
			{`INSERT INTO invoices (number, user_id, organization_id, period_start, period_end, issued_at, currency, total)
SELECT to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM') || '-' || lpad((row_number() OVER (ORDER BY organization_id NULLS FIRST, user_id))::text, 6, '0'),
       user_id, organization_id, $1, $2, $3, $4, total
FROM (SELECT CASE WHEN organization_id IS NULL THEN user_id END AS user_id, organization_id, sum(charge) AS total
      FROM closing_lines GROUP BY 1, 2) t`, []any{start, end, now, db.terms.Currency}},
			// coalesce(organization, -user) is one key for both kinds of account (ids are positive).
			{`INSERT INTO invoice_lines (invoice_id, kind, usage_record_id, deployment_id, application_id, application_name, publisher_id,
                           hourly_rate, seconds, amount, charge, requested_by)
SELECT i.id, l.kind, l.usage_record_id, l.deployment_id, l.application_id, a.name, a.publisher_id, l.hourly_rate, l.seconds, l.amount, l.charge, l.user_id
FROM closing_lines l JOIN invoices i ON coalesce(i.organization_id, -i.user_id) = coalesce(l.organization_id, -l.user_id) AND i.period_start = $1
JOIN applications a ON a.id = l.application_id
ORDER BY i.id, l.deployment_id, l.kind DESC, l.usage_record_id`, []any{start}},
			// What was invoiced moves by what these lines charged, so the next close bills the rest.
			{`UPDATE usage_records r SET invoiced_seconds = r.invoiced_seconds + l.seconds, invoiced_amount = r.invoiced_amount + l.amount
FROM (SELECT usage_record_id, sum(seconds) AS seconds, sum(amount) AS amount FROM closing_lines GROUP BY 1) l
WHERE r.id = l.usage_record_id`, nil},
			{`UPDATE billing_periods SET invoices = (SELECT count(*) FROM invoices WHERE period_start = $1),
       total = (SELECT coalesce(sum(total), 0) FROM invoices WHERE period_start = $1)
WHERE starts_at = $1`, []any{start}},
		} {
			if _, err := tx.Exec(ctx, stmt.sql, stmt.args...); err != nil {
				return err
			}
		}
		closed, err = findClosedPeriod(ctx, tx, p)
		issued = err == nil
		return err
	})
	if err != nil {
		if marketplace.ErrorCode(err) != marketplace.EINTERNAL {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("close period %s: %w", p, err)
	}
	return closed, issued, nil
}

// nextPeriodToClose is the period after the last closed one, or, before any close, the month of the
// earliest usage; nil when there is nothing to close.
func nextPeriodToClose(ctx context.Context, q rowQuerier) (*marketplace.Period, error) {
	var next *time.Time
	err := q.QueryRow(ctx, `SELECT coalesce((SELECT max(ends_at) FROM billing_periods),
  (SELECT date_trunc('month', min(started_at) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM usage_records))`).Scan(&next)
	if err != nil || next == nil {
		return nil, err
	}
	p := marketplace.PeriodOf(*next)
	return &p, nil
}

// CloseDuePeriods closes, in order, every period that has ended and is not closed yet; the billing job
// calls it on every run. It returns how many it closed: not those another replica's job closed
// meanwhile, so the runs of all replicas count each close once.
func (db *DB) CloseDuePeriods(ctx context.Context) (int, error) {
	closed := 0
	for {
		next, err := nextPeriodToClose(ctx, db.pool)
		if err != nil {
			return closed, fmt.Errorf("find the next period to close: %w", err)
		}
		if next == nil || next.End().After(db.clock()) {
			return closed, nil
		}
		_, issued, err := db.closePeriod(ctx, *next, "job")
		if err != nil {
			return closed, err
		}
		if issued {
			closed++
		}
	}
}

func findClosedPeriod(ctx context.Context, q rowQuerier, p marketplace.Period) (*marketplace.ClosedPeriod, error) {
	c := marketplace.ClosedPeriod{Period: p.String()}
	err := q.QueryRow(ctx, `SELECT starts_at, ends_at, closed_at, closed_by, currency, fee_percent, invoices, total
FROM billing_periods WHERE starts_at = $1`, p.Start).Scan(&c.StartsAt, &c.EndsAt, &c.ClosedAt, &c.ClosedBy,
		&c.Currency, &c.FeePercent, &c.Invoices, &c.Total)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return &c, err
}

const invoiceColumns = `number, user_id, period_start, period_end, issued_at, currency, total`

func scanInvoice(row pgx.Row) (*marketplace.Invoice, error) {
	var i marketplace.Invoice
	err := row.Scan(&i.Number, &i.UserID, &i.PeriodStart, &i.PeriodEnd, &i.IssuedAt, &i.Currency, &i.Total)
	i.Period = marketplace.PeriodOf(i.PeriodStart).String()
	return &i, err
}

// FindInvoices lists a page of a consumer's invoices, oldest first, without their lines, and how many
// it has.
func (db *DB) FindInvoices(ctx context.Context, userID int64, p marketplace.Page) ([]*marketplace.Invoice, int, error) {
	if _, err := db.FindUserByID(ctx, userID); err != nil {
		return nil, 0, err
	}
	var total int
	invoices, err := findPage(ctx, db.pool, `SELECT count(*) FROM invoices WHERE user_id = $1`,
		`SELECT `+invoiceColumns+` FROM invoices WHERE user_id = $1 ORDER BY period_start`, []any{userID}, p, scanInvoice, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find invoices of user %d: %w", userID, err)
	}
	return invoices, total, nil
}

// FindInvoice returns one of a consumer's invoices with its lines.
func (db *DB) FindInvoice(ctx context.Context, userID int64, number string) (*marketplace.Invoice, error) {
	if _, err := db.FindUserByID(ctx, userID); err != nil {
		return nil, err
	}
	inv, err := scanInvoice(db.pool.QueryRow(ctx, `SELECT `+invoiceColumns+` FROM invoices WHERE user_id = $1 AND number = $2`,
		userID, number))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, marketplace.Errorf(marketplace.ENOTFOUND, "invoice %q of user %d not found", number, userID)
	} else if err != nil {
		return nil, fmt.Errorf("find invoice %s of user %d: %w", number, userID, err)
	}
	rows, _ := db.pool.Query(ctx, `SELECT l.kind, l.usage_record_id, l.deployment_id, l.application_id, l.application_name, l.hourly_rate, l.seconds, l.amount, l.charge
FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE i.number = $1 ORDER BY l.id`, number)
	inv.Lines, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (marketplace.InvoiceLine, error) {
		var l marketplace.InvoiceLine
		err := row.Scan(&l.Kind, &l.UsageRecordID, &l.DeploymentID, &l.ApplicationID, &l.ApplicationName, &l.HourlyRate, &l.Seconds, &l.Amount, &l.Charge)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("find lines of invoice %s: %w", number, err)
	}
	return inv, nil
}
