package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// TestCatalogOneReaderComputesAKeptAnswer has 12 readers on each of two replicas (two DBs on one
// database) ask at once for a deep page and a search that nobody has kept since the last publish, while
// the test holds catalog_searches locked, so that whoever computes an answer waits, with its answer
// computed, until the test lets go: then one reader has computed each answer and every other one has
// waited for it, on its replica or across them (issue #23: every reader computed). Each answer is exact.
func TestCatalogOneReaderComputesAKeptAnswer(t *testing.T) {
	ctx := marketplace.OperatorContext(context.Background())
	url := tenv.Database(t)
	var replicas [2]*postgres.DB
	for i := range replicas {
		db, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		replicas[i] = db
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
INSERT INTO users (name) VALUES ('a'), ('b');
INSERT INTO applications (publisher_id, name, description, hourly_rate, deployment_type, deployment)
SELECT 1 + g % 2, 'App ' || g, CASE WHEN g % 3 = 0 THEN 'grafana dashboards' ELSE 'kubernetes operator' END,
       1, CASE WHEN g % 4 = 0 THEN 'vm' ELSE 'k8s' END, '{"type": "k8s"}'
FROM generate_series(1, 700) g;
-- Every write of a kept answer, counted.
CREATE TABLE kept_writes (search text NOT NULL);
CREATE FUNCTION kept_writes_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO kept_writes VALUES (NEW.search); RETURN NULL; END $$;
CREATE TRIGGER kept_writes AFTER INSERT OR UPDATE ON catalog_searches FOR EACH ROW EXECUTE FUNCTION kept_writes_count();`); err != nil {
		t.Fatal(err)
	}
	filters := []marketplace.AppFilter{{Page: 20, Limit: 20}, {Query: "graf dash", Page: 3, Limit: 20}}
	for _, f := range filters {
		checkPage(t, ctx, replicas[0], conn, f) // kept, then a publish makes it stale
	}
	if _, err := conn.Exec(ctx, `INSERT INTO applications (publisher_id, name, description, hourly_rate, deployment_type, deployment)
VALUES (1, 'Grafana Dashboards Extra', 'x', 1, 'vm', '{"type": "vm"}'); TRUNCATE kept_writes`); err != nil {
		t.Fatal(err)
	}

	lock, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `LOCK TABLE catalog_searches IN EXCLUSIVE MODE`); err != nil { // reads go on, writes wait
		t.Fatal(err)
	}
	const readers = 12
	type answer struct {
		filter int
		ids    []int64
		total  int
	}
	answers := make(chan answer, 2*readers*len(filters))
	var wg sync.WaitGroup
	for _, db := range replicas {
		for r := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f := filters[r%len(filters)]
				apps, total, err := db.FindApps(ctx, f)
				if err != nil {
					t.Errorf("%+v: %v", f, err)
					return
				}
				a := answer{filter: r % len(filters), total: total}
				for _, app := range apps {
					a.ids = append(a.ids, app.ID)
				}
				answers <- a
			}()
		}
	}
	// Wait until readers queue on the lock: every one computing its answer waits there to keep it. Let
	// go once two do (one could be every filter's one, so wait a moment for more), or after 5 s.
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	waiting := func() (n int) {
		t.Helper()
		if err := other.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'relation'
AND relation = 'catalog_searches'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && waiting() <= len(filters); {
		time.Sleep(50 * time.Millisecond)
	}
	computing := waiting()
	if err := lock.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(answers)
	if t.Failed() {
		t.FailNow()
	}
	if computing != len(filters) {
		t.Errorf("%d readers were computing the %d answers at once, want one each", computing, len(filters))
	}
	rows, _ := conn.Query(ctx, `SELECT search, count(*) FROM kept_writes GROUP BY search ORDER BY search`)
	writes, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		t.Fatal(err)
	}
	if len(writes) != len(filters) || writes[0]["count"] != int64(1) || writes[1]["count"] != int64(1) {
		t.Errorf("the answers were computed and kept: %v, want once each", writes)
	}
	for a := range answers {
		want, total := catalogTruth(t, ctx, conn, filters[a.filter])
		if total != a.total || fmt.Sprint(want) != fmt.Sprint(a.ids) {
			t.Errorf("%+v: ids %v total %d, want %v total %d", filters[a.filter], a.ids, a.total, want, total)
		}
	}
	for _, f := range filters {
		checkPage(t, ctx, replicas[1], conn, f)
	}
}
