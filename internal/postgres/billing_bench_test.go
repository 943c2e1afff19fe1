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
func seedOpenUsage(b *testing.B, n int, startedBefore time.Time) string {
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
	benchMeter(b, func(ctx context.Context, db *postgres.DB, _ *pgx.Conn, asOf time.Time) (int64, error) {
		return db.MeterOpenUsage(ctx, asOf)
	})
}

// BenchmarkMeterSeedRound is the yardstick for the pass above on a busy machine: the seed's statement,
// plain round() (half away from zero, so not the billing rule), over the same records. Run both in one
// command and compare their ratio:
//
//	go test ./internal/postgres -run '^$' -bench 'Meter(OpenUsage|SeedRound)' -benchtime 3x
func BenchmarkMeterSeedRound(b *testing.B) {
	benchMeter(b, func(ctx context.Context, _ *postgres.DB, conn *pgx.Conn, asOf time.Time) (int64, error) {
		tag, err := conn.Exec(ctx, `UPDATE usage_records
SET amount = round(hourly_rate * greatest(floor(extract(epoch FROM $1 - started_at)), 0) / 3600, 6), metered_at = $1
WHERE ended_at IS NULL AND metered_at < $1 AND started_at <= $1`, asOf)
		return tag.RowsAffected(), err
	})
}

// benchMeter times meter over 10k, 100k and 1M open records, each size on a database of its own.
func benchMeter(b *testing.B, meter func(ctx context.Context, db *postgres.DB, conn *pgx.Conn, asOf time.Time) (int64, error)) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := marketplace.OperatorContext(context.Background())
			asOf := time.Now().UTC().Truncate(time.Second)
			url := seedOpenUsage(b, n, asOf)
			db, err := postgres.Open(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(ctx)
			b.ResetTimer()
			for range b.N {
				// Each pass a second later, as successive runs of the job are: every record is rewritten.
				asOf = asOf.Add(time.Second)
				metered, err := meter(ctx, db, conn, asOf)
				if err != nil || metered != int64(n) {
					b.Fatalf("metered %d, %v; want %d", metered, err, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
		})
	}
}

// BenchmarkMeterRowByRow is the prototype's way, for the ratio: one UPDATE per record, one round trip
// each, over the same 10,000 records.
//
//	go test ./internal/postgres -run '^$' -bench MeterRowByRow -benchtime 1x
func BenchmarkMeterRowByRow(b *testing.B) {
	const n = 10_000
	ctx := context.Background()
	asOf := time.Now().UTC().Truncate(time.Second)
	conn, err := pgx.Connect(ctx, seedOpenUsage(b, n, asOf))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	b.ResetTimer()
	for range b.N {
		asOf = asOf.Add(time.Second)
		rows, _ := conn.Query(ctx, `SELECT id FROM usage_records WHERE ended_at IS NULL`)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			if _, err := conn.Exec(ctx, `UPDATE usage_records SET amount = usage_amount(hourly_rate, started_at, $2), metered_at = $2
WHERE id = $1`, id, asOf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
}

// BenchmarkClosePeriod times the close of one month over 100,000 deployments running across it
// (TARGETS.md: ≤ 10 s): 100,000 invoice lines on 100 consumers' invoices.
//
//	go test ./internal/postgres -run '^$' -bench ClosePeriod -benchtime 1x
func BenchmarkClosePeriod(b *testing.B) {
	const n = 100_000
	ctx := marketplace.OperatorContext(context.Background())
	march := marketplace.Period{Start: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
	url := seedOpenUsage(b, n, march.Start.Add(5*24*time.Hour)) // all started in March
	for range b.N {
		b.StopTimer()
		db, err := postgres.Open(ctx, url, postgres.WithClock(func() time.Time { return march.End().Add(time.Hour) }))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		closed, err := db.ClosePeriod(ctx, march, "bench")
		if err != nil || closed.Invoices != 100 {
			b.Fatalf("closed %+v, %v; want 100 invoices", closed, err)
		}
		b.StopTimer()
		db.Close()
		if b.N > 1 {
			b.Fatal("run with -benchtime 1x: a period closes once")
		}
	}
}
