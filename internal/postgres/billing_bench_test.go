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

// BenchmarkMeterOpenUsage times one metering pass over n open usage records inserted by SQL (TARGETS.md:
// 1,000,000 in ≤ 5 s, cost per record flat from 10k to 1M). Run it with
//
//	go test ./internal/postgres -run '^$' -bench MeterOpenUsage -benchtime 3x
func BenchmarkMeterOpenUsage(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := marketplace.OperatorContext(context.Background())
			url := tenv.Database(b)
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			for _, stmt := range []string{
				`INSERT INTO users (name) VALUES ('u')`,
				`INSERT INTO applications (publisher_id, name, hourly_rate, deployment_type, deployment) VALUES (1, 'a', 1.234567, 'k8s', '{}')`,
				`INSERT INTO projects (user_id, name) VALUES (1, 'p')`,
				fmt.Sprintf(`INSERT INTO deployments (application_id, project_id, consumer_id, type, status)
  SELECT 1, 1, 1, 'k8s', 'installed' FROM generate_series(1, %d)`, n),
				`INSERT INTO usage_records (deployment_id, user_id, application_id, hourly_rate, started_at)
  SELECT id, 1, 1, 1.234567, now() - (id % 5000) * interval '1 minute' FROM deployments`,
				`VACUUM ANALYZE usage_records`,
			} {
				if _, err = conn.Exec(ctx, stmt); err != nil {
					break
				}
			}
			conn.Close(ctx)
			if err != nil {
				b.Fatal(err)
			}
			db, err := postgres.Open(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			asOf := time.Now()
			b.ResetTimer()
			for range b.N {
				// Each pass a second later, as successive runs of the job are: every record is rewritten.
				asOf = asOf.Add(time.Second)
				metered, err := db.MeterOpenUsage(ctx, asOf)
				if err != nil || metered != int64(n) {
					b.Fatalf("metered %d, %v; want %d", metered, err, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
		})
	}
}
