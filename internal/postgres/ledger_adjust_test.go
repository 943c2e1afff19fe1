package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// TestLedgerAdjustment closes March while a deployment runs, then finds its uninstall was requested
// before the edge (an uninstall that committed after the close, as a race between the two would): March
// stays as issued, and April carries an adjustment line that takes back exactly what was over-charged.
func TestLedgerAdjustment(t *testing.T) {
	clk := &testClock{t: time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)}
	dbs, url := openLedger(t, clk, 1)
	db := dbs[0]
	ctx := marketplace.OperatorContext(context.Background())
	u := &marketplace.User{Name: "u"}
	app := &marketplace.Application{Name: "a", HourlyRate: marketplace.MustMoney("0.000001"),
		Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}, Inputs: []marketplace.Input{}}
	p := &marketplace.Project{Name: "p"}
	if err := db.CreateUser(ctx, u, []byte("h")); err != nil {
		t.Fatal(err)
	}
	app.PublisherID, p.UserID = u.ID, u.ID
	if err := db.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	d := &marketplace.Deployment{ApplicationID: app.ID, ProjectID: p.ID, ConsumerID: u.ID}
	if err := db.CreateDeployment(ctx, d); err != nil {
		t.Fatal(err)
	}
	c, _ := db.ClaimInstall(ctx, d.ID, time.Minute, 5)
	if err := db.CompleteInstall(ctx, d.ID, c.Attempts, marketplace.Placement{}); err != nil {
		t.Fatal(err)
	}
	// 30 minutes at 0.000001/h is 0.0000005: a tie, which half to even makes 0.
	clk.Set(clk.Now().Add(30 * time.Minute))
	if recs, _, _ := db.FindUsageRecords(ctx, marketplace.UsageFilter{UserID: u.ID}); !recs[0].AccruedAmount.IsZero() || recs[0].BilledSeconds != 1800 {
		t.Fatalf("a tie: %+v, want 1800 s and 0", recs[0])
	}
	app.HourlyRate = marketplace.MustMoney("3.6") // only new installs see it
	db.UpdateApp(ctx, app)

	march := marketplace.Period{Start: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := db.ClosePeriod(ctx, march, "test"); marketplace.ErrorCode(err) != marketplace.ECONFLICT {
		t.Fatalf("closing March before it ends: %v, want ECONFLICT", err)
	}
	clk.Set(time.Date(2025, 4, 1, 0, 5, 0, 0, time.UTC))
	user := marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: u.ID})
	if _, err := db.ClosePeriod(user, march, "test"); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Fatalf("a user closes March: %v, want ENOTFOUND", err)
	}
	if _, err := db.ClosePeriod(ctx, march.Next(), "test"); marketplace.ErrorCode(err) != marketplace.ECONFLICT {
		t.Fatalf("closing April before March: %v, want ECONFLICT", err)
	}
	if _, err := db.ClosePeriod(ctx, march, "test"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE invoice_lines SET amount = 0`); err == nil {
		t.Fatal("an invoice line of a closed period changed")
	}
	// The uninstall's instant was 2025-03-20 12:00, before the edge March was billed to.
	end := time.Date(2025, 3, 20, 12, 0, 0, 0, time.UTC)
	if _, err := conn.Exec(ctx, `UPDATE usage_records SET ended_at = $1, amount = usage_amount(hourly_rate, started_at, $1)`, end); err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC))
	if _, err := db.ClosePeriod(ctx, march.Next(), "test"); err != nil {
		t.Fatal(err)
	}
	invoices, _, _ := db.FindInvoices(ctx, u.ID, marketplace.Page{})
	if len(invoices) != 2 {
		t.Fatalf("invoices %+v, want March and April", invoices)
	}
	marchInv, _ := db.FindInvoice(ctx, u.ID, invoices[0].Number)
	aprilInv, _ := db.FindInvoice(ctx, u.ID, invoices[1].Number)
	start := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	rule := func(to time.Time) decimal.Decimal {
		return decimal.RequireFromString("0.000001").Mul(decimal.NewFromInt(int64(to.Sub(start) / time.Second))).Div(decimal.NewFromInt(3600)).RoundBank(6)
	}
	if len(marchInv.Lines) != 1 || !marchInv.Lines[0].Amount.Equal(rule(march.End())) {
		t.Fatalf("March: %+v, want %s", marchInv.Lines, rule(march.End()))
	}
	want := rule(end).Sub(rule(march.End()))
	if len(aprilInv.Lines) != 1 || aprilInv.Lines[0].Kind != "adjustment" || !aprilInv.Lines[0].Amount.Equal(want) ||
		aprilInv.Lines[0].Seconds != int64(end.Sub(march.End())/time.Second) {
		t.Fatalf("April: %+v, want one adjustment of %s", aprilInv.Lines, want)
	}
}
