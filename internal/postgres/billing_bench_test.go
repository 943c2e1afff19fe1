package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// seedOpenUsage fills a fresh database with n installed deployments and their open usage records,
// started up to 5,000 minutes before startedBefore, by SQL.
func seedOpenUsage(b testing.TB, n int, startedBefore time.Time) string {
	b.Helper()
	ctx := context.Background()
	url := tenv.Database(b)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{
		`INSERT INTO users (name) SELECT 'u' || i FROM generate_series(1, 100) i`,
		`INSERT INTO applications (publisher_id, name, hourly_rate, deployment_type, deployment) VALUES (1, 'a', 1.234567, 'k8s', '{}')`,
		`INSERT INTO projects (user_id, name) SELECT id, 'p' FROM users`,
		fmt.Sprintf(`INSERT INTO deployments (application_id, project_id, consumer_id, type, status, hourly_rate)
  SELECT 1, 1 + i %% 100, 1 + i %% 100, 'k8s', 'installed', 1.234567 FROM generate_series(1, %d) i`, n),
		`INSERT INTO usage_records (deployment_id, user_id, application_id, hourly_rate, started_at, metered_at)
  SELECT id, consumer_id, 1, 1.234567, $1::timestamptz - (id % 5000) * interval '1 minute' - (id % 997) * interval '1 millisecond',
         $1::timestamptz - interval '1 year' FROM deployments`,
		`VACUUM ANALYZE usage_records`,
	} {
		var args []any
		if len(stmt) > 20 && stmt[:25] == "INSERT INTO usage_records" {
			args = []any{startedBefore}
		}
		if _, err := conn.Exec(ctx, stmt, args...); err != nil {
			b.Fatal(err)
		}
	}
	return url
}

// BenchmarkMeterOpenUsage times one metering pass over n open usage records inserted by SQL (TARGETS.md:
// 1,000,000 in ≤ 5 s, cost per record flat from 10k to 1M). Run it with
//
//	go test ./internal/postgres -run '^$' -bench MeterOpenUsage -benchtime 3x
func BenchmarkMeterOpenUsage(b *testing.B) {
	benchMeter(b, []int{10_000, 100_000, 1_000_000}, meterJob)
}

// BenchmarkMeterSeedRound is the yardstick for the pass above on a busy machine: the seed's statement,
// plain round() (half away from zero, so not the billing rule), over the same records. Run both in one
// command and compare their ratio:
//
//	go test ./internal/postgres -run '^$' -bench 'Meter(OpenUsage|SeedRound)' -benchtime 3x
func BenchmarkMeterSeedRound(b *testing.B) {
	benchMeter(b, []int{10_000, 100_000, 1_000_000}, meterSeedRound)
}

// BenchmarkMeterRowByRow is the prototype's way, for the ratio: one UPDATE per record, one round trip
// each, over the same 10,000 records.
//
//	go test ./internal/postgres -run '^$' -bench MeterRowByRow -benchtime 1x
func BenchmarkMeterRowByRow(b *testing.B) {
	benchMeter(b, []int{10_000}, meterRowByRow)
}

// BenchmarkClosePeriod times the close of one month over 100,000 deployments running across it
// (TARGETS.md: ≤ 10 s): 100,000 invoice lines on 100 consumers' invoices.
//
//	go test ./internal/postgres -run '^$' -bench ClosePeriod -benchtime 1x
func BenchmarkClosePeriod(b *testing.B) {
	if b.N > 1 {
		b.Fatal("run with -benchtime 1x: a period closes once")
	}
	closeMarch(b, 100_000, b.StartTimer, b.StopTimer)
}

// TestBenchmarksRunSmall runs the code of every benchmark above once at 100 records, so that a schema
// change that breaks one fails `make test` instead of leaving the benchmark to rot until someone runs it.
func TestBenchmarksRunSmall(t *testing.T) {
	for name, meter := range map[string]meterFunc{"MeterOpenUsage": meterJob, "MeterSeedRound": meterSeedRound, "MeterRowByRow": meterRowByRow} {
		t.Run(name, func(t *testing.T) {
			m := newOpenUsage(t, 100)
			m.pass(t, meter)
			m.pass(t, meter) // a second pass rewrites every record again
		})
	}
	t.Run("ClosePeriod", func(t *testing.T) { closeMarch(t, 100, func() {}, func() {}) })
}

// meterFunc is one metering pass as of asOf; it returns how many records it updated.
type meterFunc func(ctx context.Context, db *postgres.DB, conn *pgx.Conn, asOf time.Time) (int64, error)

// meterJob is the billing job's own pass.
func meterJob(ctx context.Context, db *postgres.DB, _ *pgx.Conn, asOf time.Time) (int64, error) {
	return db.MeterOpenUsage(ctx, asOf)
}

// meterSeedRound is the seed's statement.
func meterSeedRound(ctx context.Context, _ *postgres.DB, conn *pgx.Conn, asOf time.Time) (int64, error) {
	tag, err := conn.Exec(ctx, `UPDATE usage_records
SET amount = round(hourly_rate * greatest(floor(extract(epoch FROM $1 - started_at)), 0) / 3600, 6), metered_at = $1
WHERE ended_at IS NULL AND metered_at < $1 AND started_at <= $1`, asOf)
	return tag.RowsAffected(), err
}

// meterRowByRow is the prototype's pass: the open records' ids, then one UPDATE each.
func meterRowByRow(ctx context.Context, _ *postgres.DB, conn *pgx.Conn, asOf time.Time) (int64, error) {
	rows, _ := conn.Query(ctx, `SELECT id FROM usage_records WHERE ended_at IS NULL`)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		if _, err := conn.Exec(ctx, `UPDATE usage_records SET amount = usage_amount(hourly_rate, started_at, $2), metered_at = $2
WHERE id = $1`, id, asOf); err != nil {
			return 0, err
		}
	}
	return int64(len(ids)), nil
}

// benchMeter times meter over each number of open records, each on a database of its own.
func benchMeter(b *testing.B, sizes []int, meter meterFunc) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			m := newOpenUsage(b, n)
			b.ResetTimer()
			for range b.N {
				m.pass(b, meter)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
		})
	}
}

// openUsage is a database of n open usage records and what a metering pass needs.
type openUsage struct {
	ctx  context.Context
	n    int
	asOf time.Time
	db   *postgres.DB
	conn *pgx.Conn
}

func newOpenUsage(tb testing.TB, n int) *openUsage {
	tb.Helper()
	m := &openUsage{ctx: marketplace.OperatorContext(context.Background()), n: n, asOf: time.Now().UTC().Truncate(time.Second)}
	url := seedOpenUsage(tb, n, m.asOf)
	var err error
	if m.db, err = postgres.Open(m.ctx, url); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.db.Close)
	if m.conn, err = pgx.Connect(m.ctx, url); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.conn.Close(m.ctx) })
	return m
}

// pass meters every open record a second after the last pass, as successive runs of the job are, so
// every record is rewritten.
func (m *openUsage) pass(tb testing.TB, meter meterFunc) {
	m.asOf = m.asOf.Add(time.Second)
	metered, err := meter(m.ctx, m.db, m.conn, m.asOf)
	if err != nil || metered != int64(m.n) {
		tb.Fatalf("metered %d, %v; want %d", metered, err, m.n)
	}
}

// closeMarch closes March 2025 over n deployments that ran across it, 100 consumers, timing only the
// close itself (between start and stop).
func closeMarch(tb testing.TB, n int, start, stop func()) {
	tb.Helper()
	stop()
	ctx := marketplace.OperatorContext(context.Background())
	march := marketplace.Period{Start: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
	url := seedOpenUsage(tb, n, march.Start.Add(5*24*time.Hour)) // all started in March
	db, err := postgres.Open(ctx, url, postgres.WithClock(func() time.Time { return march.End().Add(time.Hour) }))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	start()
	closed, err := db.ClosePeriod(ctx, march, "bench")
	stop()
	if err != nil || closed.Invoices != 100 {
		tb.Fatalf("closed %+v, %v; want 100 invoices", closed, err)
	}
}
