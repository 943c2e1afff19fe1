package marketplace

import (
	"context"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// The ledger: what billing has made final. A calendar month (UTC) is a period; closing it issues one
// numbered invoice per consumer with charges, and nothing of a closed period ever changes. Amounts in
// these types are decimal.Decimal, which JSON carries as a string ("12.34"), next to a currency.

// Period is a calendar month in UTC.
type Period struct{ Start time.Time }

// ParsePeriod reads "2026-03".
func ParsePeriod(s string) (Period, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return Period{}, Errorf(EINVALID, "period %q is not a month written yyyy-mm", s)
	}
	return Period{t.UTC()}, nil
}

// PeriodOf is the month that holds t.
func PeriodOf(t time.Time) Period {
	t = t.UTC()
	return Period{time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)}
}

// End is the first instant after the period: the start of the next one.
func (p Period) End() time.Time { return p.Start.AddDate(0, 1, 0) }

// Next is the period that starts where p ends.
func (p Period) Next() Period { return Period{p.End()} }

func (p Period) String() string { return p.Start.Format("2006-01") }

// BillingTerms are the operator's: the currency of every amount and the marketplace's fee on a
// publisher's gross, in percent.
type BillingTerms struct {
	Currency   string
	FeePercent decimal.Decimal
}

// BillingRun is one run of the billing job: it metered Records open usage records as of AsOf and closed
// PeriodsClosed periods that had ended.
type BillingRun struct {
	ID            int64     `json:"id"`
	AsOf          time.Time `json:"as_of"`
	StartedAt     time.Time `json:"started_at"`
	FinishedAt    time.Time `json:"finished_at"`
	Records       int64     `json:"records"`
	PeriodsClosed int       `json:"periods_closed"`
	Error         string    `json:"error,omitempty"`
}

// ClosedPeriod is a period whose invoices are issued.
type ClosedPeriod struct {
	Period     string          `json:"period"`
	StartsAt   time.Time       `json:"starts_at"`
	EndsAt     time.Time       `json:"ends_at"`
	ClosedAt   time.Time       `json:"closed_at"`
	ClosedBy   string          `json:"closed_by"`
	Currency   string          `json:"currency"`
	FeePercent decimal.Decimal `json:"fee_percent" format:"decimal"`
	Invoices   int             `json:"invoices"`
	Total      decimal.Decimal `json:"total" format:"decimal"`
}

// Invoice is a consumer's bill for one closed period: Total is the sum of the lines' charges.
type Invoice struct {
	Number      string          `json:"number"`
	UserID      int64           `json:"user_id"`
	Period      string          `json:"period"`
	PeriodStart time.Time       `json:"period_start"`
	PeriodEnd   time.Time       `json:"period_end"`
	IssuedAt    time.Time       `json:"issued_at"`
	Currency    string          `json:"currency"`
	Total       decimal.Decimal `json:"total" format:"decimal"`
	Lines       []InvoiceLine   `json:"lines,omitempty"`

	// OrganizationID is set on an organization's invoice (whose UserID is 0).
	OrganizationID int64 `json:"organization_id,omitempty"`
}

// InvoiceLine is one usage record's usage in the period (kind "usage"), or a correction of what earlier
// invoices charged it (kind "adjustment"). Amount is exact to 6 places. A deployment is charged once per
// period: the Charges of its lines add up to the sum of their Amounts rounded half to even to cents (each
// Charge is the rounded running sum at its line less the one before it), so cutting a deployment's usage
// into more records never changes what it costs.
type InvoiceLine struct {
	Kind          string `json:"kind"`
	UsageRecordID int64  `json:"usage_record_id"`
	DeploymentID  int64  `json:"deployment_id"`
	ApplicationID int64  `json:"application_id"`
	// ApplicationName is the application's name when the period closed: a later rename changes no bill.
	ApplicationName string          `json:"application_name"`
	HourlyRate      decimal.Decimal `json:"hourly_rate" format:"decimal"`
	Seconds         int64           `json:"seconds"`
	Amount          decimal.Decimal `json:"amount" format:"decimal"`
	Charge          decimal.Decimal `json:"charge" format:"decimal"`

	// RequestedBy is the member who asked for the deployment, on an organization's invoice.
	RequestedBy int64 `json:"requested_by,omitempty"`
}

// Rows are the invoice as a CSV document's rows: a header, one row per line, then the total. The API and
// the storefront write the same document.
func (inv *Invoice) Rows() [][]string {
	itoa := func(i int64) string { return strconv.FormatInt(i, 10) }
	rows := [][]string{{"invoice", "period", "kind", "deployment_id", "application_id", "application", "hourly_rate", "seconds", "amount", "charge", "currency"}}
	for _, l := range inv.Lines {
		rows = append(rows, []string{inv.Number, inv.Period, l.Kind, itoa(l.DeploymentID), itoa(l.ApplicationID), l.ApplicationName,
			l.HourlyRate.String(), itoa(l.Seconds), l.Amount.StringFixed(6), l.Charge.StringFixed(2), inv.Currency})
	}
	rows = append(rows, []string{inv.Number, inv.Period, "total", "", "", "", "", "", "", inv.Total.StringFixed(2), inv.Currency})
	if inv.OrganizationID != 0 { // an organization's invoice names the member behind each line
		rows[0] = append(rows[0], "requested_by")
		for i, l := range inv.Lines {
			rows[i+1] = append(rows[i+1], strconv.FormatInt(l.RequestedBy, 10))
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], "")
	}
	return rows
}

// Statement is what a consumer's deployments used in [From, To): per record, the whole seconds and the
// amount by the billing rule (the cumulative amount at To less the one at From).
type Statement struct {
	UserID   int64           `json:"user_id"`
	From     time.Time       `json:"from"`
	To       time.Time       `json:"to"`
	Currency string          `json:"currency"`
	Seconds  int64           `json:"seconds" doc:"of the whole statement, every page's lines"`
	Total    decimal.Decimal `json:"total" format:"decimal" doc:"of the whole statement, every page's lines"`
	// LineCount is how many lines the whole statement has; Lines is one page of them.
	LineCount int             `json:"line_count" doc:"how many lines the whole statement has; lines is one page of them (page, limit)"`
	Lines     []StatementLine `json:"lines"`

	// OrganizationID is set on an organization's statement (whose UserID is 0).
	OrganizationID int64 `json:"organization_id,omitempty"`
}

// StatementLine is one usage record's share of a statement.
type StatementLine struct {
	UsageRecordID int64           `json:"usage_record_id"`
	DeploymentID  int64           `json:"deployment_id"`
	ApplicationID int64           `json:"application_id"`
	HourlyRate    decimal.Decimal `json:"hourly_rate" format:"decimal"`
	StartedAt     time.Time       `json:"started_at"`
	EndedAt       *time.Time      `json:"ended_at"`
	Seconds       int64           `json:"seconds"`
	Amount        decimal.Decimal `json:"amount" format:"decimal"`

	// RequestedBy is the member who asked for the deployment, on an organization's statement.
	RequestedBy int64 `json:"requested_by,omitempty"`
}

// Revenue is what a publisher's applications earned: over [From, To) by the billing rule, or, for a
// payout (Period set), what the invoices of a closed period charged. Net = Gross − Fee.
type Revenue struct {
	PublisherID  int64           `json:"publisher_id"`
	Period       string          `json:"period,omitempty"`
	From         time.Time       `json:"from"`
	To           time.Time       `json:"to"`
	Currency     string          `json:"currency"`
	FeePercent   decimal.Decimal `json:"fee_percent" format:"decimal"`
	Gross        decimal.Decimal `json:"gross" format:"decimal"`
	Fee          decimal.Decimal `json:"fee" format:"decimal"`
	Net          decimal.Decimal `json:"net" format:"decimal"`
	Applications []AppRevenue    `json:"applications"`

	// OrganizationID is set on an organization's revenue and payouts (whose PublisherID is 0).
	OrganizationID int64 `json:"organization_id,omitempty"`
}

// AppRevenue is one application's part of a Revenue.
type AppRevenue struct {
	ApplicationID int64           `json:"application_id"`
	Name          string          `json:"name"`
	Deployments   int64           `json:"deployments"`
	Seconds       int64           `json:"seconds"`
	Hours         decimal.Decimal `json:"hours" format:"decimal"`
	Gross         decimal.Decimal `json:"gross" format:"decimal"`
	Fee           decimal.Decimal `json:"fee" format:"decimal"`
	Net           decimal.Decimal `json:"net" format:"decimal"`
}

// LedgerService closes periods and reads what billing made final. Reads are scoped by the caller: a
// consumer reads its own invoices and statements, a publisher its own revenue, the operator everything.
type LedgerService interface {
	// ClosePeriod issues the invoices of p. Closing a closed period returns it unchanged; p must have
	// ended and follow the last closed period (or hold the earliest usage).
	ClosePeriod(ctx context.Context, p Period, by string) (*ClosedPeriod, error)
	FindBillingRuns(ctx context.Context, page Page) ([]*BillingRun, int, error)
	// FindInvoices lists a page of a consumer's invoices, oldest first, and how many it has.
	FindInvoices(ctx context.Context, userID int64, p Page) ([]*Invoice, int, error)
	FindInvoice(ctx context.Context, userID int64, number string) (*Invoice, error)
	// FindStatement is a consumer's statement over [from, to) with one page of its lines (by usage record)
	// and the totals of all of them.
	FindStatement(ctx context.Context, userID int64, from, to time.Time, p Page) (*Statement, error)
	FindRevenue(ctx context.Context, publisherID int64, from, to time.Time) (*Revenue, error)
	FindPayout(ctx context.Context, publisherID int64, p Period) (*Revenue, error)
}
