package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// BenchmarkCatalogPrivate reads catalog pages of 10,000 applications (JSON, as GET /api/apps) as a
// caller who sees only the public catalog (shared, kept) and as one who also sees three private
// applications (its page computed for it: catalog_private_page).
//
//	go test -run '^$' -bench CatalogPrivate -benchtime 2000x ./internal/postgres/
func BenchmarkCatalogPrivate(b *testing.B) {
	ctx := context.Background()
	url := tenv.Database(b)
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
	if _, err := conn.Exec(ctx, `
INSERT INTO users (name) VALUES ('a'), ('b');
INSERT INTO applications (publisher_id, name, description, hourly_rate, deployment_type, deployment)
SELECT 1 + g % 2, 'App ' || g, CASE WHEN g % 3 = 0 THEN 'grafana dashboards' ELSE 'kubernetes operator' END,
       1, CASE WHEN g % 4 = 0 THEN 'vm' ELSE 'k8s' END, '{"type": "k8s"}'
FROM generate_series(1, 10000) g;
UPDATE applications SET private = true WHERE id IN (5, 5003, 9001);
ANALYZE;`); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		user int64
	}{{"public", 1}, {"private", 2}} {
		ctx := marketplace.WithCaller(ctx, marketplace.Caller{UserID: c.user})
		for _, f := range []struct {
			name string
			f    marketplace.AppFilter
		}{{"page1", marketplace.AppFilter{Page: 1, Limit: 20}}, {"page400", marketplace.AppFilter{Page: 400, Limit: 20}},
			{"search", marketplace.AppFilter{Page: 1, Limit: 20, Query: "grafana"}}, {"vm", marketplace.AppFilter{Page: 1, Limit: 20, DeploymentType: "vm"}}} {
			b.Run(c.name+"/"+f.name, func(b *testing.B) {
				var buf []byte
				for b.Loop() {
					var err error
					if buf, _, err = db.AppendAppsJSON(ctx, buf[:0], f.f); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
