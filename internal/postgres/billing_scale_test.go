package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// TestBillingAtScaleSmall runs the load of BenchmarkBillingAtScale at 1,000 deployments and 10,000
// records and checks what the benchmark times against a recomputation in Go from the raw records: every
// page of the big consumer's statement (in order, none missing, the totals of all its lines), then the
// month's invoices (one per consumer, each the sum over its deployments of what they ran in March,
// rounded half to even to cents once per deployment), a second close that issues nothing more, and the
// publishers' payouts adding up to the invoices.
func TestBillingAtScaleSmall(t *testing.T) {
	s := billingScale{deployments: 1_000, recordsPer: 10, consumers: 20, bigDeployments: 100}
	l := loadBillingScale(t, s)
	ctx := marketplace.OperatorContext(context.Background())

	conn, err := pgx.Connect(ctx, l.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT r.id, r.deployment_id, r.user_id, a.publisher_id, r.hourly_rate, r.started_at, r.ended_at
FROM usage_records r JOIN applications a ON a.id = r.application_id ORDER BY r.id`)
	type raw struct {
		id int64
		modelRecord
	}
	records, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (raw, error) {
		var r raw
		err := row.Scan(&r.id, &r.deployment, &r.consumer, &r.publisher, &r.rate, &r.start, &r.end)
		return r, err
	})
	if err != nil || len(records) != s.deployments*s.recordsPer {
		t.Fatalf("%d records, %v; want %d", len(records), err, s.deployments*s.recordsPer)
	}
	inMonth := func(r raw) decimal.Decimal {
		return r.amountAt(scaleMonth.End()).Sub(r.amountAt(scaleMonth.Start))
	}

	// The statement, page by page, against the records of the big consumer in id order.
	var bigRecords []raw
	bigTotal := decimal.Zero
	for _, r := range records {
		if r.consumer == l.big {
			bigRecords = append(bigRecords, r)
			bigTotal = bigTotal.Add(r.amountAt(scaleMonth.End()))
		}
	}
	if len(bigRecords) != s.bigDeployments*s.recordsPer {
		t.Fatalf("the big consumer has %d records, want %d", len(bigRecords), s.bigDeployments*s.recordsPer)
	}
	for page := 1; page <= (len(bigRecords)+99)/100; page++ {
		st, err := l.db.FindStatement(ctx, l.big, scaleMonth.Start, scaleMonth.End(), marketplace.Page{Number: page, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if st.LineCount != len(bigRecords) || !st.Total.Equal(bigTotal) {
			t.Fatalf("page %d: %d lines totalling %s, want %d totalling %s", page, st.LineCount, st.Total, len(bigRecords), bigTotal)
		}
		want := bigRecords[(page-1)*100 : min(page*100, len(bigRecords))]
		if len(st.Lines) != len(want) {
			t.Fatalf("page %d has %d lines, want %d", page, len(st.Lines), len(want))
		}
		for i, line := range st.Lines {
			if line.UsageRecordID != want[i].id || !line.Amount.Equal(inMonth(want[i])) || line.Seconds != want[i].secondsAt(scaleMonth.End()) {
				t.Fatalf("page %d line %d: %+v, want record %d of %s", page, i, line, want[i].id, inMonth(want[i]))
			}
		}
	}
	// A page of a statement read through the API, as the benchmark reads them.
	readStatementPages(t, l, 3, len(bigRecords), func() {}, func() {})

	// Invoices: what each deployment ran in March, rounded once, summed per consumer.
	byDeployment := map[int64]decimal.Decimal{}
	consumerOf := map[int64]int64{}
	for _, r := range records {
		byDeployment[r.deployment] = byDeployment[r.deployment].Add(inMonth(r))
		consumerOf[r.deployment] = r.consumer
	}
	wantInvoice := map[int64]decimal.Decimal{}
	for d, amount := range byDeployment {
		wantInvoice[consumerOf[d]] = wantInvoice[consumerOf[d]].Add(amount.RoundBank(2))
	}
	closed, err := l.db.ClosePeriod(ctx, scaleMonth, "test")
	if err != nil || closed.Invoices != s.consumers {
		t.Fatalf("closed %+v, %v; want %d invoices", closed, err, s.consumers)
	}
	sum := decimal.Zero
	for _, c := range l.consumers {
		invoices, _, err := l.db.FindInvoices(ctx, c, marketplace.Page{})
		if err != nil || len(invoices) != 1 {
			t.Fatalf("consumer %d: %d invoices, %v; want 1", c, len(invoices), err)
		}
		inv, err := l.db.FindInvoice(ctx, c, invoices[0].Number)
		if err != nil {
			t.Fatal(err)
		}
		if !inv.Total.Equal(wantInvoice[c]) {
			t.Fatalf("invoice %s of consumer %d: %s, want %s", inv.Number, c, inv.Total, wantInvoice[c])
		}
		lines := 0
		for _, line := range inv.Lines {
			if line.Kind == "usage" {
				lines++
			}
		}
		if want := len(records) / s.consumers; c == l.big && lines != len(bigRecords) {
			t.Fatalf("invoice of the big consumer has %d usage lines, want %d", lines, len(bigRecords))
		} else if c != l.big && lines == 0 {
			t.Fatalf("invoice %s has no usage lines (about %d expected)", inv.Number, want)
		}
		sum = sum.Add(inv.Total)
	}
	if !closed.Total.Equal(sum) {
		t.Fatalf("the period's total %s, want the sum of its invoices %s", closed.Total, sum)
	}
	again, err := l.db.ClosePeriod(ctx, scaleMonth, "test again")
	if err != nil || again.ClosedBy != "test" || again.Invoices != closed.Invoices || !again.Total.Equal(closed.Total) {
		t.Fatalf("second close %+v, %v; want the first one's %+v", again, err, closed)
	}

	// Payouts: every publisher's gross adds up to the invoices' total.
	var pubs []int64
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT DISTINCT publisher_id FROM applications ORDER BY 1`)
		pubs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	gross := decimal.Zero
	for _, p := range pubs {
		payout, err := l.db.FindPayout(ctx, p, scaleMonth)
		if err != nil {
			t.Fatal(err)
		}
		gross = gross.Add(payout.Gross)
	}
	if !gross.Equal(sum) {
		t.Fatalf("payouts' gross %s, want the invoices' %s", gross, sum)
	}
}
