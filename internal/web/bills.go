package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
)

type billsView struct {
	Records   []*marketplace.UsageRecord
	Total     marketplace.Money
	Count     int
	Pager     pager
	Invoices  []*marketplace.Invoice
	Statement *marketplace.Statement
}

// billsPage shows the caller's running accrual (a page of its usage records, open ones accruing to now,
// and the total of all), this month's statement and the latest invoices of closed months.
func (s *server) billsPage(w http.ResponseWriter, r *http.Request) {
	c := marketplace.CallerFrom(r.Context())
	if c.Operator {
		s.fail(w, r, http.StatusNotFound, "The operator has no bills: sign in as a consumer.")
		return
	}
	ctx := r.Context()
	v := billsView{Pager: pagerOf(r, "page", 100, "usage records", "Previous", "Next")}
	var totals marketplace.UsageTotals
	var err error
	if v.Records, totals, err = s.Store.FindUsageRecords(ctx, marketplace.UsageFilter{UserID: c.UserID, Page: v.Pager.page()}); err != nil {
		s.domainError(w, r, err)
		return
	}
	v.Total, v.Count, v.Pager = totals.Amount, totals.Records, v.Pager.of(r, "page", totals.Records, len(v.Records))
	var invoices int
	if v.Invoices, invoices, err = s.Store.FindInvoices(ctx, c.UserID, marketplace.Page{Number: 1, Limit: 12}); err != nil {
		s.domainError(w, r, err)
		return
	}
	if invoices > len(v.Invoices) { // the list is oldest first: its last page holds the latest ones
		if v.Invoices, _, err = s.Store.FindInvoices(ctx, c.UserID, marketplace.Page{Number: (invoices + 11) / 12, Limit: 12}); err != nil {
			s.domainError(w, r, err)
			return
		}
	}
	now := time.Now().UTC()
	month := marketplace.PeriodOf(now)
	// The statement's totals; its lines are the CSV's.
	if v.Statement, err = s.Store.FindStatement(ctx, c.UserID, month.Start, now, marketplace.Page{Number: 1, Limit: 1}); err != nil {
		s.domainError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "bills", "Bills", v)
}

// statementCSV is this month's statement (or ?from=&to=, RFC 3339) as CSV, one line per usage record.
func (s *server) statementCSV(w http.ResponseWriter, r *http.Request) {
	c := marketplace.CallerFrom(r.Context())
	now := time.Now().UTC()
	from, to := marketplace.PeriodOf(now).Start, now
	for _, p := range []struct {
		name string
		into *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := r.URL.Query().Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.fail(w, r, http.StatusBadRequest, p.name+" must be a time such as 2026-03-01T00:00:00Z.")
				return
			}
			*p.into = t.UTC()
		}
	}
	// The lines are read a page at a time; the first page's totals are the statement's.
	const linesPerRead = 500
	st, err := s.Store.FindStatement(r.Context(), c.UserID, from, to, marketplace.Page{Number: 1, Limit: linesPerRead})
	if err != nil {
		s.domainError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // a user's bill, as every page is
	w.Header().Set("Content-Disposition", `attachment; filename="statement-`+from.Format("2006-01-02")+`.csv"`)
	rows := [][]string{{"usage_record_id", "deployment_id", "application_id", "hourly_rate", "started_at", "ended_at", "seconds", "amount", "currency"}}
	for page := 1; ; page++ {
		if page > 1 {
			next, err := s.Store.FindStatement(r.Context(), c.UserID, st.From, st.To, marketplace.Page{Number: page, Limit: linesPerRead})
			if err != nil {
				s.Logger.WarnContext(r.Context(), "read statement lines", "err", err)
				return
			}
			st.Lines = next.Lines
		}
		for _, l := range st.Lines {
			ended := ""
			if l.EndedAt != nil {
				ended = l.EndedAt.UTC().Format(time.RFC3339)
			}
			rows = append(rows, []string{strconv.FormatInt(l.UsageRecordID, 10), strconv.FormatInt(l.DeploymentID, 10),
				strconv.FormatInt(l.ApplicationID, 10), l.HourlyRate.String(), l.StartedAt.UTC().Format(time.RFC3339), ended,
				strconv.FormatInt(l.Seconds, 10), l.Amount.String(), st.Currency})
		}
		if page*linesPerRead >= st.LineCount {
			break
		}
		if err := marketplace.WriteCSV(w, rows); err != nil {
			s.Logger.WarnContext(r.Context(), "write statement CSV", "err", err)
			return
		}
		rows = rows[:0]
	}
	rows = append(rows, []string{"total", "", "", "", "", "", strconv.FormatInt(st.Seconds, 10), st.Total.String(), st.Currency})
	if err := marketplace.WriteCSV(w, rows); err != nil {
		s.Logger.WarnContext(r.Context(), "write statement CSV", "err", err)
	}
}
