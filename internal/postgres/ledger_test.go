package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/billing"
	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// testClock is the billing clock a test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// openLedger opens n stores on one fresh database, all reading clk: n replicas of the marketplace.
func openLedger(t *testing.T, clk *testClock, n int) ([]*postgres.DB, string) {
	t.Helper()
	url := tenv.Database(t)
	var dbs []*postgres.DB
	for range n {
		db, err := postgres.Open(context.Background(), url, postgres.WithClock(clk.Now),
			postgres.WithBillingTerms(marketplace.BillingTerms{Currency: "EUR", FeePercent: decimal.RequireFromString("12.5")}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		dbs = append(dbs, db)
	}
	return dbs, url
}

// modelRecord is a usage record as the test expects it, from the instants it chose.
type modelRecord struct {
	deployment, consumer, app, publisher int64
	rate                                 decimal.Decimal
	start                                time.Time
	end                                  *time.Time
}

// amountAt is the billing rule recomputed independently: rate × whole seconds up to t (within the
// record's life) / 3600, rounded half to even to 6 places.
func (r modelRecord) amountAt(t time.Time) decimal.Decimal {
	return r.rate.Mul(decimal.NewFromInt(r.secondsAt(t))).Div(decimal.NewFromInt(3600)).RoundBank(6)
}

func (r modelRecord) secondsAt(t time.Time) int64 {
	if r.end != nil && r.end.Before(t) {
		t = *r.end
	}
	if !t.After(r.start) {
		return 0
	}
	return int64(t.Sub(r.start) / time.Second)
}

// TestLedgerProperties plays random lifetimes over January to mid-May 2023 (months of 31, 28, 31, 30
// days) on two replicas sharing a database and a clock: installs (some failing), uninstalls, rate
// changes, instants exactly on month edges, and the billing job run at random instants, twice in a row, on
// both replicas at once, or beside another OS process running it (this test binary run again). Every number the store shows must equal the rule recomputed here.
func TestLedgerProperties(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	clk := &testClock{t: time.Date(2023, 1, 2, 0, 0, 0, 0, time.UTC)}
	dbs, url := openLedger(t, clk, 2)
	ctx := marketplace.OperatorContext(context.Background())
	const interval = 5 * time.Minute
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	jobs := []*billing.Job{billing.New(dbs[0], interval, nil, quiet), billing.New(dbs[1], interval, nil, quiet)}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var publishers, consumers []int64
	for i := range 5 {
		u := &marketplace.User{Name: fmt.Sprint("u", i)}
		must(dbs[0].CreateUser(ctx, u, []byte(fmt.Sprint("hash", i))))
		if i < 2 {
			publishers = append(publishers, u.ID)
		} else {
			consumers = append(consumers, u.ID)
		}
	}
	randomRate := func() marketplace.Money {
		return marketplace.Money{Decimal: decimal.New(rng.Int64N(5_000_000), -6)}
	}
	var apps []*marketplace.Application
	for i := range 3 {
		a := &marketplace.Application{Name: fmt.Sprint("a", i), PublisherID: publishers[i%2], HourlyRate: randomRate(),
			Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}, Inputs: []marketplace.Input{}}
		must(dbs[0].CreateApp(ctx, a))
		apps = append(apps, a)
	}
	projects := map[int64]int64{}
	for _, c := range consumers {
		p := &marketplace.Project{Name: "p", UserID: c}
		must(dbs[0].CreateProject(ctx, p))
		projects[c] = p.ID
	}

	start, stop := time.Date(2023, 1, 3, 0, 0, 0, 0, time.UTC), time.Date(2023, 5, 20, 0, 0, 0, 0, time.UTC)
	edges := []time.Time{}
	for m := time.February; m <= time.May; m++ {
		edges = append(edges, time.Date(2023, m, 1, 0, 0, 0, 0, time.UTC))
	}
	randomInstant := func(from time.Time, span time.Duration) time.Time {
		return from.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Microsecond)
	}
	type event struct {
		at time.Time
		do func()
	}
	var events []event
	models := map[int64]*modelRecord{}
	failed := map[int64]bool{}
	for range 40 {
		consumer, app := consumers[rng.IntN(len(consumers))], apps[rng.IntN(len(apps))]
		requested := randomInstant(start, stop.Sub(start))
		installed := randomInstant(requested, 2*time.Hour)
		if rng.IntN(6) == 0 { // exactly on an edge
			installed = edges[rng.IntN(len(edges)-1)]
			requested = installed.Add(-time.Minute)
		}
		uninstall := randomInstant(installed, 50*24*time.Hour)
		if rng.IntN(6) == 0 {
			for _, e := range edges {
				if e.After(installed) {
					uninstall = e
					break
				}
			}
		}
		fails := rng.IntN(7) == 0
		d := &marketplace.Deployment{ApplicationID: app.ID, ProjectID: projects[consumer], ConsumerID: consumer}
		events = append(events, event{requested, func() {
			must(dbs[rng.IntN(2)].CreateDeployment(ctx, d))
			// The rate is the application's when the install was accepted.
			models[d.ID] = &modelRecord{deployment: d.ID, consumer: consumer, app: app.ID, publisher: app.PublisherID, rate: app.HourlyRate.Decimal}
		}})
		events = append(events, event{installed, func() {
			db := dbs[rng.IntN(2)]
			c, err := db.ClaimInstall(ctx, d.ID, time.Minute, 5)
			if err != nil || c == nil {
				t.Fatalf("claim install of %d: %v, %v", d.ID, c, err)
			}
			if fails {
				failed[d.ID] = true
				must(db.FailAttempt(ctx, d.ID, marketplace.OpInstall, c.Attempts, marketplace.AttemptFailure{Reason: "boom", Final: true}))
				return
			}
			must(db.CompleteInstall(ctx, d.ID, c.Attempts, marketplace.Placement{}))
			models[d.ID].start = clk.Now()
		}})
		if uninstall.Before(stop) {
			events = append(events, event{uninstall, func() {
				if _, err := dbs[rng.IntN(2)].RequestUninstall(ctx, d.ID); err != nil {
					t.Fatalf("uninstall %d: %v", d.ID, err)
				}
				if !failed[d.ID] {
					end := clk.Now()
					models[d.ID].end = &end
				}
			}})
		}
	}
	for range 8 { // the publisher changes a rate: only installs accepted later see it
		app := apps[rng.IntN(len(apps))]
		events = append(events, event{randomInstant(start, stop.Sub(start)), func() {
			app.HourlyRate = randomRate()
			must(dbs[0].UpdateApp(ctx, app))
		}})
	}
	closedDigests := map[string]string{}
	processRuns := 0
	defer func() { t.Logf("%d of the job's runs had another process running it at the same instant", processRuns) }()
	runJobs := func() {
		switch rng.IntN(4) {
		case 0:
			_, err := jobs[0].RunOnce(ctx)
			must(err)
		case 1: // twice
			for range 2 {
				_, err := jobs[1].RunOnce(ctx)
				must(err)
			}
		case 2: // both replicas at once
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range 2 {
				wg.Go(func() { _, errs[i] = jobs[i].RunOnce(ctx) })
			}
			wg.Wait()
			must(errs[0])
			must(errs[1])
		case 3: // this replica and another process at once
			processRuns++
			child := ledgerJobProcess(t, url, clk.Now())
			_, err := jobs[0].RunOnce(ctx)
			must(err)
			if out, err := child(); err != nil {
				t.Fatalf("the billing job in another process: %v\n%s", err, out)
			}
		}
		for p, digest := range ledgerDigests(t, url) {
			if old, ok := closedDigests[p]; ok && old != digest {
				t.Fatalf("closed period %s changed", p)
			}
			closedDigests[p] = digest
		}
	}
	for range 60 {
		events = append(events, event{randomInstant(start, stop.Sub(start)), runJobs})
	}
	for _, e := range edges { // a run a moment after each month ends, and one exactly on the edge
		events = append(events, event{e, runJobs}, event{e.Add(time.Duration(rng.Int64N(int64(time.Hour)))), runJobs})
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].at.Before(events[j].at) })
	for _, e := range events {
		clk.Set(e.at)
		e.do()
	}
	clk.Set(stop)
	runJobs()
	checkLedger(t, dbs[0], clk.Now(), interval, models, failed, consumers, publishers)
	if len(closedDigests) != 4 {
		t.Fatalf("closed periods %v, want January to April 2023", closedDigests)
	}
}

// ledgerDigests is a digest of every closed period's invoices and lines, by period.
func ledgerDigests(t *testing.T, url string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT to_char(i.period_start AT TIME ZONE 'UTC', 'YYYY-MM'),
  md5(string_agg(i.number || i.total::text || l::text, ',' ORDER BY l.id))
FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var p, d string
		if err := rows.Scan(&p, &d); err != nil {
			t.Fatal(err)
		}
		out[p] = d
	}
	return out
}

// ledgerJobEnv, when set to a database URL, makes the test binary a second process that runs the billing
// job once at the instant in ledgerJobAtEnv, then exits.
const (
	ledgerJobEnv   = "MP_TEST_LEDGER_JOB_DB"
	ledgerJobAtEnv = "MP_TEST_LEDGER_JOB_AT"
)

// ledgerJobProcess starts this test binary as another process running the billing job once at at on the
// database of url; the returned function waits for it and returns its output.
func ledgerJobProcess(t *testing.T, url string, at time.Time) func() ([]byte, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), ledgerJobEnv+"="+url, ledgerJobAtEnv+"="+at.Format(time.RFC3339Nano))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the billing job process: %v", err)
	}
	return func() ([]byte, error) { err := cmd.Wait(); return out.Bytes(), err }
}

// runLedgerJobProcess is the other process's side: one billing run as of the instant it was given.
func runLedgerJobProcess() int {
	at, err := time.Parse(time.RFC3339Nano, os.Getenv(ledgerJobAtEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "billing job process:", err)
		return 2
	}
	ctx := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(ctx, os.Getenv(ledgerJobEnv), postgres.WithClock(func() time.Time { return at }),
		postgres.WithBillingTerms(marketplace.BillingTerms{Currency: "EUR", FeePercent: decimal.RequireFromString("12.5")}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "billing job process:", err)
		return 1
	}
	defer db.Close()
	if _, err := billing.New(db, 5*time.Minute, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).RunOnce(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "billing job process:", err)
		return 1
	}
	return 0
}
