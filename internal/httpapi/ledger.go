package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// The ledger's endpoints answer JSON, or CSV for finance tools when asked with Accept: text/csv or
// ?format=csv. Amounts are decimal strings next to a currency.

// FormatQuery chooses JSON or CSV. It and RangeQuery are exported because huma reads only exported
// embedded fields.
type FormatQuery struct {
	Format string `query:"format" enum:"json,csv" doc:"csv for a CSV document (as Accept: text/csv does)"`
	Accept string `header:"Accept"`
}

func (f FormatQuery) csv() bool {
	return f.Format == "csv" || (f.Format == "" && strings.Contains(f.Accept, "text/csv"))
}

// document is a JSON or CSV answer.
type document struct {
	ContentType string `header:"Content-Type"`
	Body        []byte
}

// pagedDocument is a document that is one page of a list, with paged's headers.
type pagedDocument struct {
	ContentType string   `header:"Content-Type"`
	TotalCount  int      `header:"X-Total-Count" doc:"how many items the whole list has"`
	Link        []string `header:"Link" doc:"RFC 8288 links to the neighbouring pages: rel=\"next\" while there are more, rel=\"prev\""`
	Body        []byte
}

// pageOf is d as the page in of a list of total items; nil when d is (an error was answered).
func pageOf(in *PageQuery, total int, d *document) *pagedDocument {
	if d == nil {
		return nil
	}
	return &pagedDocument{ContentType: d.ContentType, TotalCount: total, Link: newPaged(in, total, d.Body).Link, Body: d.Body}
}

// withDocumentSchema documents T as the JSON body of o's success answer and CSV as its other form, for
// handlers that answer a document: its Body is bytes, which huma would otherwise describe as base64.
func withDocumentSchema[T any](api huma.API, o huma.Operation) huma.Operation {
	o = withBodySchema[T](api, o)
	o.Responses[strconv.Itoa(o.DefaultStatus)].Content["text/csv"] = &huma.MediaType{Schema: &huma.Schema{
		Type: "string", Description: "CSV with a header row, when asked with Accept: text/csv or ?format=csv"}}
	return o
}

// invoiceList is the JSON of a consumer's invoices.
type invoiceList struct {
	UserID   int64                  `json:"user_id"`
	Invoices []*marketplace.Invoice `json:"invoices"`
}

// answer writes v as JSON, or as the CSV rows of table when asked for CSV.
func answer(ctx context.Context, log *slog.Logger, f FormatQuery, v any, table func() [][]string) (*document, error) {
	if f.csv() {
		var buf bytes.Buffer
		if err := marketplace.WriteCSV(&buf, table()); err != nil {
			return nil, problem(ctx, log, err)
		}
		return &document{ContentType: "text/csv; charset=utf-8", Body: buf.Bytes()}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, problem(ctx, log, err)
	}
	return &document{ContentType: "application/json", Body: b}, nil
}

// RangeQuery is a [from, to) range: RFC 3339 instants or dates (midnight UTC).
type RangeQuery struct {
	From string `query:"from" doc:"start, RFC 3339 or yyyy-mm-dd (UTC); default the start of the current month"`
	To   string `query:"to" doc:"end (excluded), RFC 3339 or yyyy-mm-dd; default and at most now"`
}

func (r RangeQuery) times() (from, to time.Time, err error) {
	parse := func(name, s string) (time.Time, error) {
		if s == "" {
			return time.Time{}, nil
		}
		for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, marketplace.Errorf(marketplace.EINVALID, "%s=%q is neither an RFC 3339 instant nor a yyyy-mm-dd date", name, s)
	}
	if from, err = parse("from", r.From); err != nil {
		return
	}
	to, err = parse("to", r.To)
	return
}

func rfc3339(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

type billingRuns struct {
	Runs []*marketplace.BillingRun `json:"runs"`
}

// listBillingRuns answers the billing job's runs, latest first (the operator's only).
func listBillingRuns(ledger marketplace.LedgerService, log *slog.Logger) func(context.Context, *struct{ PageQuery }) (*paged[billingRuns], error) {
	return func(ctx context.Context, in *struct{ PageQuery }) (*paged[billingRuns], error) {
		runs, total, err := ledger.FindBillingRuns(ctx, in.page())
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, total, billingRuns{Runs: runs}), nil
	}
}

type periodInput struct {
	Period string `path:"period" pattern:"^[0-9]{4}-[0-9]{2}$" doc:"the month, yyyy-mm (UTC)"`
}

// closePeriod issues a month's invoices; closing a closed month answers it as it was closed.
func closePeriod(ledger marketplace.LedgerService, log *slog.Logger) func(context.Context, *periodInput) (*body[*marketplace.ClosedPeriod], error) {
	return func(ctx context.Context, in *periodInput) (*body[*marketplace.ClosedPeriod], error) {
		p, err := marketplace.ParsePeriod(in.Period)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		closed, err := ledger.ClosePeriod(ctx, p, "operator")
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.ClosedPeriod]{closed}, nil
	}
}

type invoicesInput struct {
	ID int64 `path:"id" minimum:"1"`
	FormatQuery
	PageQuery
}

// listInvoices answers a page of a consumer's invoices (the CSV too), oldest first.
func listInvoices(ledger marketplace.LedgerService, log *slog.Logger) func(context.Context, *invoicesInput) (*pagedDocument, error) {
	return func(ctx context.Context, in *invoicesInput) (*pagedDocument, error) {
		invoices, total, err := ledger.FindInvoices(ctx, in.ID, in.page())
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		d, err := answer(ctx, log, in.FormatQuery, invoiceList{UserID: in.ID, Invoices: invoices}, func() [][]string {
			return invoiceListTable(invoices)
		})
		return pageOf(&in.PageQuery, total, d), err
	}
}

// invoiceListTable is a list of invoices as CSV.
func invoiceListTable(invoices []*marketplace.Invoice) [][]string {
	rows := [][]string{{"number", "period", "issued_at", "currency", "total"}}
	for _, i := range invoices {
		rows = append(rows, []string{i.Number, i.Period, rfc3339(&i.IssuedAt), i.Currency, i.Total.StringFixed(2)})
	}
	return rows
}

type invoiceInput struct {
	ID     int64  `path:"id" minimum:"1"`
	Number string `path:"number" maxLength:"40"`
	FormatQuery
}

func getInvoice(ledger marketplace.LedgerService, log *slog.Logger) func(context.Context, *invoiceInput) (*document, error) {
	return func(ctx context.Context, in *invoiceInput) (*document, error) {
		inv, err := ledger.FindInvoice(ctx, in.ID, in.Number)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return answer(ctx, log, in.FormatQuery, inv, inv.Rows)
	}
}

type statementInput struct {
	ID int64 `path:"id" minimum:"1"`
	RangeQuery
	FormatQuery
	PageQuery
}

// getStatement answers a consumer's statement with one page of its lines (the CSV too); its seconds,
// total and line_count are the whole statement's.
func getStatement(ledger marketplace.LedgerService, log *slog.Logger) func(context.Context, *statementInput) (*pagedDocument, error) {
	return func(ctx context.Context, in *statementInput) (*pagedDocument, error) {
		from, to, err := in.times()
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		st, err := ledger.FindStatement(ctx, in.ID, from, to, in.page())
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		d, err := answer(ctx, log, in.FormatQuery, st, func() [][]string { return statementTable(st) })
		return pageOf(&in.PageQuery, st.LineCount, d), err
	}
}

// statementTable is a statement as CSV; an organization's names the member behind each line.
func statementTable(st *marketplace.Statement) [][]string {
	rows := [][]string{{"from", "to", "usage_record_id", "deployment_id", "application_id", "hourly_rate", "started_at", "ended_at", "seconds", "amount", "currency"}}
	for _, l := range st.Lines {
		rows = append(rows, []string{rfc3339(&st.From), rfc3339(&st.To), itoa(l.UsageRecordID), itoa(l.DeploymentID),
			itoa(l.ApplicationID), l.HourlyRate.String(), rfc3339(&l.StartedAt), rfc3339(l.EndedAt), itoa(l.Seconds),
			l.Amount.StringFixed(6), st.Currency})
	}
	rows = append(rows, []string{rfc3339(&st.From), rfc3339(&st.To), "total", "", "", "", "", "", itoa(st.Seconds), st.Total.StringFixed(6), st.Currency})
	if st.OrganizationID != 0 {
		rows[0] = append(rows[0], "requested_by")
		for i, l := range st.Lines {
			rows[i+1] = append(rows[i+1], itoa(l.RequestedBy))
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], "")
	}
	return rows
}

// revenueTable is a Revenue as CSV: one row per application, then the totals.
func revenueTable(r *marketplace.Revenue) [][]string {
	account, owner := "publisher_id", r.PublisherID
	if r.OrganizationID != 0 {
		account, owner = "organization_id", r.OrganizationID
	}
	rows := [][]string{{account, "period", "application_id", "name", "deployments", "seconds", "hours", "gross", "fee", "net", "currency"}}
	for _, a := range r.Applications {
		rows = append(rows, []string{itoa(owner), r.Period, itoa(a.ApplicationID), a.Name, itoa(a.Deployments), itoa(a.Seconds),
			a.Hours.String(), a.Gross.String(), a.Fee.String(), a.Net.String(), r.Currency})
	}
	return append(rows, []string{itoa(owner), r.Period, "total", "", "", "", "", r.Gross.String(), r.Fee.String(), r.Net.String(), r.Currency})
}

type revenueInput struct {
	ID int64 `path:"id" minimum:"1"`
	RangeQuery
	FormatQuery
}

func getRevenue(ledger marketplace.LedgerService, log *slog.Logger) func(context.Context, *revenueInput) (*document, error) {
	return func(ctx context.Context, in *revenueInput) (*document, error) {
		from, to, err := in.times()
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		r, err := ledger.FindRevenue(ctx, in.ID, from, to)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return answer(ctx, log, in.FormatQuery, r, func() [][]string { return revenueTable(r) })
	}
}

type payoutInput struct {
	ID     int64  `path:"id" minimum:"1"`
	Period string `path:"period" pattern:"^[0-9]{4}-[0-9]{2}$"`
	FormatQuery
}

func getPayout(ledger marketplace.LedgerService, log *slog.Logger) func(context.Context, *payoutInput) (*document, error) {
	return func(ctx context.Context, in *payoutInput) (*document, error) {
		p, err := marketplace.ParsePeriod(in.Period)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		r, err := ledger.FindPayout(ctx, in.ID, p)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return answer(ctx, log, in.FormatQuery, r, func() [][]string { return revenueTable(r) })
	}
}
