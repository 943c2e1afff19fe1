package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// An organization's bill: the usage records of deployments in its projects carry its id (a trigger
// copies it from the deployment), and period closes issue it one invoice with every member's lines, each
// naming the member who asked for the deployment. Its admins, deployers and viewers read it (viewers
// included: they read the projects and deployments the bill is about, and a team's viewer is typically
// who checks the spending); publishers do not, unless they also hold one of those roles. Its
// applications' revenue and payouts are its admins' and publishers'.

const orgInvoiceColumns = `number, organization_id, period_start, period_end, issued_at, currency, total`

func scanOrgInvoice(row pgx.Row) (*marketplace.Invoice, error) {
	var i marketplace.Invoice
	err := row.Scan(&i.Number, &i.OrganizationID, &i.PeriodStart, &i.PeriodEnd, &i.IssuedAt, &i.Currency, &i.Total)
	i.Period = marketplace.PeriodOf(i.PeriodStart).String()
	return &i, err
}

// FindOrganizationInvoices lists a page of an organization's invoices, oldest first, without lines.
func (db *DB) FindOrganizationInvoices(ctx context.Context, orgID int64, p marketplace.Page) ([]*marketplace.Invoice, int, error) {
	if err := memberMay(ctx, db.pool, scopeUser(ctx), orgID, mayRead, "read the bills of"); err != nil {
		return nil, 0, err
	}
	var total int
	invoices, err := findPage(ctx, db.pool, `SELECT count(*) FROM invoices WHERE organization_id = $1`,
		`SELECT `+orgInvoiceColumns+` FROM invoices WHERE organization_id = $1 ORDER BY period_start`, []any{orgID}, p, scanOrgInvoice, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find invoices of organization %d: %w", orgID, err)
	}
	return invoices, total, nil
}

// FindOrganizationInvoice returns one of an organization's invoices with its lines, each with the
// member who asked for its deployment.
func (db *DB) FindOrganizationInvoice(ctx context.Context, orgID int64, number string) (*marketplace.Invoice, error) {
	if err := memberMay(ctx, db.pool, scopeUser(ctx), orgID, mayRead, "read the bills of"); err != nil {
		return nil, err
	}
	inv, err := scanOrgInvoice(db.pool.QueryRow(ctx, `SELECT `+orgInvoiceColumns+` FROM invoices WHERE organization_id = $1 AND number = $2`,
		orgID, number))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, marketplace.Errorf(marketplace.ENOTFOUND, "invoice %q of organization %d not found", number, orgID)
	} else if err != nil {
		return nil, fmt.Errorf("find invoice %s of organization %d: %w", number, orgID, err)
	}
	rows, _ := db.pool.Query(ctx, `SELECT l.kind, l.usage_record_id, l.deployment_id, l.application_id, l.application_name, l.hourly_rate,
  l.seconds, l.amount, l.charge, coalesce(l.requested_by, 0)
FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE i.number = $1 ORDER BY l.id`, number)
	inv.Lines, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (marketplace.InvoiceLine, error) {
		var l marketplace.InvoiceLine
		err := row.Scan(&l.Kind, &l.UsageRecordID, &l.DeploymentID, &l.ApplicationID, &l.ApplicationName, &l.HourlyRate,
			&l.Seconds, &l.Amount, &l.Charge, &l.RequestedBy)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("find lines of invoice %s: %w", number, err)
	}
	return inv, nil
}

// FindOrganizationStatement is what an organization's deployments were billed over [from, to), to
// capped at now: one page of its lines, by usage record, with the member who asked for each deployment,
// and the totals of all of them.
func (db *DB) FindOrganizationStatement(ctx context.Context, orgID int64, from, to time.Time, p marketplace.Page) (*marketplace.Statement, error) {
	if err := memberMay(ctx, db.pool, scopeUser(ctx), orgID, mayRead, "read the bills of"); err != nil {
		return nil, err
	}
	from, to, err := db.clampRange(from, to)
	if err != nil {
		return nil, err
	}
	s := &marketplace.Statement{OrganizationID: orgID, From: from, To: to, Currency: db.terms.Currency}
	where := ` FROM usage_records r WHERE r.organization_id = $1 AND ` + rangeOverlap
	s.Lines, err = findPage(ctx, db.pool,
		`SELECT count(*), coalesce(sum(`+rangeSeconds+`), 0)::bigint, coalesce(sum(`+rangeAmount+`), 0)`+where,
		`SELECT r.id, r.deployment_id, r.application_id, r.hourly_rate, r.started_at, r.ended_at, `+rangeSeconds+`, `+rangeAmount+`, r.user_id`+where+` ORDER BY r.id`,
		[]any{orgID, from, to}, p, func(row pgx.Row) (marketplace.StatementLine, error) {
			var l marketplace.StatementLine
			err := row.Scan(&l.UsageRecordID, &l.DeploymentID, &l.ApplicationID, &l.HourlyRate, &l.StartedAt, &l.EndedAt,
				&l.Seconds, &l.Amount, &l.RequestedBy)
			return l, err
		}, &s.LineCount, &s.Seconds, &s.Total)
	if err != nil {
		return nil, fmt.Errorf("statement of organization %d: %w", orgID, err)
	}
	return s, nil
}

// FindOrganizationRevenue sums, per application published in the organization's name, what its
// deployments were billed over [from, to), with the marketplace's fee at the current terms.
func (db *DB) FindOrganizationRevenue(ctx context.Context, orgID int64, from, to time.Time) (*marketplace.Revenue, error) {
	if err := memberMay(ctx, db.pool, scopeUser(ctx), orgID, mayPublish, "read the revenue of"); err != nil {
		return nil, err
	}
	from, to, err := db.clampRange(from, to)
	if err != nil {
		return nil, err
	}
	r, err := db.revenue(ctx, `a.organization_id = $1`, orgID, from, to)
	if err != nil {
		return nil, fmt.Errorf("revenue of organization %d: %w", orgID, err)
	}
	r.OrganizationID, r.From, r.To, r.Currency = orgID, from, to, db.terms.Currency
	return r, nil
}

// FindOrganizationPayout is what the invoices of closed period p charged for the applications published
// in the organization's name, less the fee at the terms the period was closed with.
func (db *DB) FindOrganizationPayout(ctx context.Context, orgID int64, p marketplace.Period) (*marketplace.Revenue, error) {
	if err := memberMay(ctx, db.pool, scopeUser(ctx), orgID, mayPublish, "read the payouts of"); err != nil {
		return nil, err
	}
	currency, fee, err := db.closedTerms(ctx, p)
	if err != nil {
		return nil, err
	}
	rows, _ := db.pool.Query(ctx, `SELECT l.application_id, max(l.application_name), count(DISTINCT l.deployment_id), sum(l.seconds)::bigint, sum(l.charge)
FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id JOIN applications a ON a.id = l.application_id
WHERE a.organization_id = $1 AND i.period_start = $2
GROUP BY l.application_id ORDER BY l.application_id`, orgID, p.Start)
	r, err := collectRevenue(rows, fee, 2)
	if err != nil {
		return nil, fmt.Errorf("payout of organization %d for %s: %w", orgID, p, err)
	}
	r.OrganizationID, r.Period, r.From, r.To, r.Currency = orgID, p.String(), p.Start, p.End(), currency
	return r, nil
}
