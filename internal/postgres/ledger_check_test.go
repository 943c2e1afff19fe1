package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// checkLedger compares everything the store shows at now with the model: records, what the last job
// run stored, every invoice of the closed periods, statements and publishers' revenue and payouts.
func checkLedger(t *testing.T, db *postgres.DB, now time.Time, interval time.Duration, models map[int64]*modelRecord,
	failed map[int64]bool, consumers, publishers []int64) {
	t.Helper()
	ctx := marketplace.OperatorContext(context.Background())
	asOf := now.Truncate(interval)
	periods := []marketplace.Period{}
	for m := time.January; m <= time.April; m++ {
		periods = append(periods, marketplace.Period{Start: time.Date(2023, m, 1, 0, 0, 0, 0, time.UTC)})
	}
	lastEdge := periods[len(periods)-1].End()
	byConsumer := map[int64][]*modelRecord{}
	for id, m := range models {
		if failed[id] || m.start.IsZero() {
			continue
		}
		byConsumer[m.consumer] = append(byConsumer[m.consumer], m)
	}

	billed := 0
	for _, c := range consumers {
		records, _, err := db.FindUsageRecords(ctx, marketplace.UsageFilter{UserID: c})
		if err != nil {
			t.Fatal(err)
		}
		if len(records) != len(byConsumer[c]) {
			t.Fatalf("consumer %d has %d usage records, want %d (a failed install is never billed)", c, len(records), len(byConsumer[c]))
		}
		for _, r := range records {
			m := models[r.DeploymentID]
			if failed[r.DeploymentID] {
				t.Fatalf("failed deployment %d has a usage record", r.DeploymentID)
			}
			if !r.HourlyRate.Equal(m.rate) || !r.StartedAt.Equal(m.start) || (r.EndedAt == nil) != (m.end == nil) ||
				(m.end != nil && !r.EndedAt.Equal(*m.end)) {
				t.Fatalf("record of deployment %d: rate %s, %v–%v; want %s, %v–%v", r.DeploymentID, r.HourlyRate, r.StartedAt, r.EndedAt, m.rate, m.start, m.end)
			}
			if r.BilledSeconds != m.secondsAt(now) || !r.AccruedAmount.Equal(m.amountAt(now)) || !r.Amount.Equal(m.amountAt(now)) {
				t.Fatalf("deployment %d: %d s, accrued %s, amount %s; want %d s and %s", r.DeploymentID, r.BilledSeconds,
					r.AccruedAmount, r.Amount, m.secondsAt(now), m.amountAt(now))
			}
			wantMetered := m.amountAt(asOf)
			if m.end != nil {
				wantMetered = m.amountAt(*m.end)
			} else if m.start.After(asOf) {
				wantMetered = decimal.Zero
			}
			if !r.MeteredAmount.Equal(wantMetered) {
				t.Fatalf("deployment %d: the job stored %s as of %v, want %s", r.DeploymentID, r.MeteredAmount, r.MeteredAt, wantMetered)
			}
		}

		// Invoices: one per closed period with charges; lines tile the record's amount exactly.
		invoices, _, err := db.FindInvoices(ctx, c, marketplace.Page{})
		if err != nil {
			t.Fatal(err)
		}
		billed += len(records)
		invoiced := map[int64]decimal.Decimal{}
		for _, summary := range invoices {
			inv, err := db.FindInvoice(ctx, c, summary.Number)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := marketplace.ParsePeriod(inv.Period)
			total := decimal.Zero
			for _, l := range inv.Lines {
				m := models[l.DeploymentID]
				want := m.amountAt(p.End()).Sub(m.amountAt(p.Start))
				if l.Kind != "usage" || !l.Amount.Equal(want) || l.Seconds != m.secondsAt(p.End())-m.secondsAt(p.Start) {
					t.Fatalf("invoice %s line %+v; want a usage line of %s", inv.Number, l, want)
				}
				if !l.Charge.Equal(l.Amount.RoundBank(2)) {
					t.Fatalf("invoice %s: charge %s of amount %s, want it rounded half to even to cents", inv.Number, l.Charge, l.Amount)
				}
				total = total.Add(l.Charge)
				invoiced[l.DeploymentID] = invoiced[l.DeploymentID].Add(l.Amount)
			}
			if !inv.Total.Equal(total) || inv.Currency != "EUR" {
				t.Fatalf("invoice %s total %s %s, want the sum of its lines %s EUR", inv.Number, inv.Total, inv.Currency, total)
			}
		}
		for _, m := range byConsumer[c] {
			if want := m.amountAt(lastEdge); !invoiced[m.deployment].Equal(want) {
				t.Fatalf("deployment %d: invoices of consecutive periods add up to %s, want %s", m.deployment, invoiced[m.deployment], want)
			}
		}

		// A statement over the whole window is the amount up to now.
		st, err := db.FindStatement(ctx, c, periods[0].Start, now.Add(time.Hour), marketplace.Page{})
		if err != nil {
			t.Fatal(err)
		}
		want := decimal.Zero
		for _, m := range byConsumer[c] {
			want = want.Add(m.amountAt(now))
		}
		if !st.Total.Equal(want) || !st.To.Equal(now) {
			t.Fatalf("statement of consumer %d: %s to %v, want %s to now", c, st.Total, st.To, want)
		}
	}

	t.Logf("%d deployments (%d failed installs), %d billed records", len(models), len(failed), billed)

	// Publishers: revenue by the rule, payouts from the invoices, the fee at 12.5 %.
	for _, pub := range publishers {
		rev, err := db.FindRevenue(ctx, pub, periods[0].Start, now)
		if err != nil {
			t.Fatal(err)
		}
		gross := decimal.Zero
		for _, m := range models {
			if m.publisher == pub && !m.start.IsZero() && !failed[m.deployment] {
				gross = gross.Add(m.amountAt(now))
			}
		}
		if !rev.Gross.Equal(gross) || !rev.Net.Add(rev.Fee).Equal(rev.Gross) {
			t.Fatalf("revenue of publisher %d: %+v, want gross %s", pub, rev, gross)
		}
		for _, p := range periods {
			payout, err := db.FindPayout(ctx, pub, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range payout.Applications {
				if !a.Fee.Equal(a.Gross.Mul(decimal.RequireFromString("0.125")).RoundBank(2)) || !a.Net.Equal(a.Gross.Sub(a.Fee)) {
					t.Fatalf("payout %s of publisher %d: %+v", p, pub, a)
				}
			}
		}
	}
}
