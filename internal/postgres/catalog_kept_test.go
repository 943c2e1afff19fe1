package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// catalogTruth is what a catalog page must be, computed the plain way: the ids of the live
// applications of f (words matched with ILIKE on word starts), in order, and their number.
func catalogTruth(t *testing.T, ctx context.Context, conn *pgx.Conn, f marketplace.AppFilter) ([]int64, int) {
	t.Helper()
	cond := []string{"deleted_at IS NULL"}
	if f.PublisherID != 0 {
		cond = append(cond, fmt.Sprint("publisher_id = ", f.PublisherID))
	}
	if f.DeploymentType != "" {
		cond = append(cond, fmt.Sprintf("deployment_type = '%s'", f.DeploymentType))
	}
	for _, w := range strings.Fields(f.Query) {
		cond = append(cond, fmt.Sprintf("(' ' || lower(name) || ' ' || lower(description)) LIKE '%% %s%%'", strings.ToLower(w)))
	}
	rows, _ := conn.Query(ctx, "SELECT id FROM applications WHERE "+strings.Join(cond, " AND ")+" ORDER BY id")
	all, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	off := (f.Page - 1) * f.Limit
	return all[min(off, len(all)):min(off+f.Limit, len(all))], len(all)
}

// checkCards compares a page of FindAppsInSession (session "session") with catalogTruth, and returns
// its generation, after which the same page is answered unchanged. known is the generation of the last
// page read: the catalog has changed since (or it is 0), so the page is read anew.
func checkCards(t *testing.T, ctx context.Context, db *postgres.DB, conn *pgx.Conn, f marketplace.AppFilter, known int64) int64 {
	t.Helper()
	want, wantTotal := catalogTruth(t, ctx, conn, f)
	c, err := db.FindAppsInSession(ctx, []byte("session"), f, known)
	if err != nil || c.Unchanged || c.Generation <= known || c.Total != wantTotal || c.Session.CSRFToken != "csrf" {
		t.Fatalf("%+v as cards, generation %d known: %+v, %v; want total %d", f, known, c, err, wantTotal)
	}
	var got []int64
	for _, a := range c.Apps {
		got = append(got, a.ID)
		var rate marketplace.Money
		if err := conn.QueryRow(ctx, `SELECT hourly_rate FROM applications WHERE id = $1`, a.ID).Scan(&rate); err != nil || !rate.Equal(a.HourlyRate.Decimal) {
			t.Fatalf("%+v as cards: application %d at %s, want %s (%v)", f, a.ID, a.HourlyRate, rate, err)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%+v as cards: ids %v, want %v", f, got, want)
	}
	again, err := db.FindAppsInSession(ctx, []byte("session"), f, c.Generation)
	if err != nil || !again.Unchanged || again.Apps != nil || again.Generation != c.Generation || again.Session.CSRFToken != "csrf" {
		t.Fatalf("%+v as cards at generation %d known: %+v, %v; want it unchanged", f, c.Generation, again, err)
	}
	return c.Generation
}

// checkPage compares a page of FindApps and of AppendAppsJSON with catalogTruth.
func checkPage(t *testing.T, ctx context.Context, db *postgres.DB, conn *pgx.Conn, f marketplace.AppFilter) {
	t.Helper()
	want, wantTotal := catalogTruth(t, ctx, conn, f)
	apps, total, err := db.FindApps(ctx, f)
	if err != nil {
		t.Fatalf("%+v: %v", f, err)
	}
	var got []int64
	for _, a := range apps {
		got = append(got, a.ID)
	}
	if total != wantTotal || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%+v: ids %v total %d, want %v total %d", f, got, total, want, wantTotal)
	}
	page, total, err := db.AppendAppsJSON(ctx, nil, f)
	if err != nil || total != wantTotal {
		t.Fatalf("%+v as JSON: total %d, %v; want %d", f, total, err, wantTotal)
	}
	// The JSON page is each application's listing as it is now (a kept page holds them too).
	var wantJSON string
	if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(listing, ',' ORDER BY id), '') FROM applications WHERE id = ANY ($1)`,
		want).Scan(&wantJSON); err != nil {
		t.Fatal(err)
	}
	if string(page) != wantJSON {
		t.Fatalf("%+v as JSON:\n%s\nwant\n%s", f, page, wantJSON)
	}
}

// TestCatalogKeptAnswersFollowTheCatalog reads the same searches and deep pages again and again (so
// that they come from catalog_searches) while the catalog changes under them in every way a search or a
// count can see: publishes, deletes, renames, a new description, a move to another publisher or type;
// and in what only a page's listings show: a new price or version.
// Every answer must be the catalog's as it is now, never the one kept from before.
func TestCatalogKeptAnswersFollowTheCatalog(t *testing.T) {
	ctx := marketplace.OperatorContext(context.Background())
	url := tenv.Database(t)
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
FROM generate_series(1, 700) g;`); err != nil {
		t.Fatal(err)
	}
	filters := []marketplace.AppFilter{
		{Query: "grafana", Page: 1, Limit: 20},
		{Query: "kube", Page: 2, Limit: 20, PublisherID: 2},
		{Query: "graf dash", Page: 1, Limit: 5, DeploymentType: "vm"},
		{Query: "operator", Page: 24, Limit: 20}, // the last page of the search, then past it
		{Query: "renamed", Page: 1, Limit: 20},
		{Page: 20, Limit: 20},
		{Page: 35, Limit: 20}, // the end of the catalog
		{Page: 9, Limit: 20, PublisherID: 1, DeploymentType: "k8s"},
	}
	// The storefront's pages in a session, each kept at the generation it was read at.
	if _, err := conn.Exec(ctx, `INSERT INTO tokens (user_id, hash) VALUES (1, 'token');
INSERT INTO web_sessions (id_hash, user_id, token_id, csrf_token, expires_at) VALUES ('session', 1, 1, 'csrf', now() + interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	generations := map[int]int64{}
	check := func() {
		t.Helper()
		for i, f := range filters {
			checkPage(t, ctx, db, conn, f)
			checkPage(t, ctx, db, conn, f) // now kept
			checkCards(t, ctx, db, conn, f, generations[i])
			generations[i] = checkCards(t, ctx, db, conn, f, 0)
		}
	}
	check()
	for _, change := range []string{
		`INSERT INTO applications (publisher_id, name, description, hourly_rate, deployment_type, deployment)
		 VALUES (1, 'Grafana Kube', 'operator', 1, 'vm', '{"type": "vm"}')`,
		`UPDATE applications SET deleted_at = now() WHERE id IN (3, 6, 450)`,
		`UPDATE applications SET name = 'Renamed one' WHERE id = 9`,
		`UPDATE applications SET description = 'grafana dashboards' WHERE id = 10`,
		`UPDATE applications SET publisher_id = 2 WHERE id BETWEEN 100 AND 110`,
		`UPDATE applications SET deployment_type = 'vm' WHERE id BETWEEN 600 AND 640`,
		`DELETE FROM applications WHERE id = 12`,
		// Not seen by a search or a count, but in the listing a kept page holds.
		`UPDATE applications SET hourly_rate = 2.5 WHERE id IN (395, 399, 460)`,
		`UPDATE applications SET version = version + 1 WHERE id = 396`,
	} {
		if _, err := conn.Exec(ctx, change); err != nil {
			t.Fatalf("%s: %v", change, err)
		}
		check()
	}
	var kept int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM catalog_searches`).Scan(&kept); err != nil || kept == 0 {
		t.Fatalf("catalog_searches holds %d answers, %v: want the answers kept", kept, err)
	}
}

// TestCatalogExactUnderConcurrentWrites publishes and deletes from several connections at once while
// others read searches and deep pages; once the writers stop, every answer (kept or not) is exact, and
// the counts are those of the rows.
func TestCatalogExactUnderConcurrentWrites(t *testing.T) {
	ctx := marketplace.OperatorContext(context.Background())
	url := tenv.Database(t)
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for i := 1; i <= 3; i++ {
		if err := db.CreateUser(ctx, &marketplace.User{Name: "p"}, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	filters := []marketplace.AppFilter{
		{Query: "alpha", Page: 1, Limit: 20},
		{Query: "beta", Page: 2, Limit: 10, PublisherID: 2},
		{Query: "alpha beta", Page: 1, Limit: 20, DeploymentType: "vm"},
		{Page: 14, Limit: 20},
		{Page: 5, Limit: 20, PublisherID: 3},
	}
	const writers, each = 4, 60
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				spec := marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}
				if i%2 == 0 {
					spec = marketplace.DeploymentSpec{Type: "vm", Image: "i", CPU: "1", Memory: "1Gi"}
				}
				desc := []string{"alpha", "beta", "alpha beta", "gamma"}[(w+i)%4]
				a := &marketplace.Application{Name: fmt.Sprint("App ", w, " ", i), Description: desc, PublisherID: int64(1 + (w+i)%3),
					HourlyRate: marketplace.MustMoney("1"), Deployment: spec, Inputs: []marketplace.Input{}}
				if err := db.CreateApp(ctx, a); err != nil {
					errs <- err
					return
				}
				if i%3 == 0 {
					if err := db.DeleteApp(ctx, a.ID); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, f := range filters {
					if _, _, err := db.FindApps(ctx, f); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, f := range filters {
		checkPage(t, ctx, db, conn, f)
		checkPage(t, ctx, db, conn, f)
	}
	var wrong int
	if err := conn.QueryRow(ctx, `
WITH want AS (
  SELECT f.publisher_id, f.deployment_type, s.shift, a.id >> s.shift AS span, count(*) AS n
  FROM applications a
  CROSS JOIN LATERAL (VALUES (0::bigint, ''), (0, a.deployment_type), (a.publisher_id, ''), (a.publisher_id, a.deployment_type)) AS f (publisher_id, deployment_type)
  CROSS JOIN (VALUES (8::smallint), (14), (20)) AS s (shift)
  WHERE a.deleted_at IS NULL GROUP BY 1, 2, 3, 4
)
SELECT count(*) FROM want FULL JOIN (SELECT * FROM catalog_counts WHERE n <> 0) c USING (publisher_id, deployment_type, shift, span)
WHERE want.n IS DISTINCT FROM c.n`).Scan(&wrong); err != nil || wrong != 0 {
		t.Fatalf("%d rows of catalog_counts differ from the applications, %v", wrong, err)
	}
}

// TestCatalogDeepPagesAcrossSpans pages through a catalog whose ids are spread over several spans of
// every size catalog_counts keeps (256, 16,384 and 1,048,576 ids), to its end and past it, with each
// filter.
func TestCatalogDeepPagesAcrossSpans(t *testing.T) {
	ctx := marketplace.OperatorContext(context.Background())
	url := tenv.Database(t)
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
INSERT INTO users (name) VALUES ('a'), ('b');
INSERT INTO applications (id, publisher_id, name, hourly_rate, deployment_type, deployment) OVERRIDING SYSTEM VALUE
SELECT id, 1 + id % 2, 'app', 1, CASE WHEN id % 3 = 0 THEN 'vm' ELSE 'k8s' END, '{"type": "k8s"}'
FROM (SELECT g * 97 AS id FROM generate_series(1, 400) g
      UNION SELECT 16384 * 5 + g FROM generate_series(0, 299) g
      UNION SELECT 1048576 * 3 + g * 7 FROM generate_series(0, 299) g) ids;
UPDATE applications SET deleted_at = now() WHERE id % 5 = 0;`); err != nil {
		t.Fatal(err)
	}
	for _, f := range []marketplace.AppFilter{{}, {PublisherID: 2}, {DeploymentType: "vm"}, {PublisherID: 1, DeploymentType: "k8s"}} {
		_, total := catalogTruth(t, ctx, conn, marketplace.AppFilter{PublisherID: f.PublisherID, DeploymentType: f.DeploymentType, Page: 1, Limit: 1})
		for _, limit := range []int{13, 50} {
			for page := 1; page <= total/limit+2; page++ {
				f.Page, f.Limit = page, limit
				checkPage(t, ctx, db, conn, f)
			}
		}
	}
}

// TestCatalogInSession reads the catalog with a storefront session checked in the same statement: the
// session comes back with the page, and a session that has ended (expired, signed out, its token
// revoked) gets no page, even at the generation it knew. At the generation the storefront knows, no page
// is read; a new price is a new generation. A revoked bearer token is refused by the very next read, even
// one whose answer was kept.
func TestCatalogInSession(t *testing.T) {
	op := marketplace.OperatorContext(context.Background())
	url := tenv.Database(t)
	db, err := postgres.Open(op, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := pgx.Connect(op, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(op)
	u := &marketplace.User{Name: "u"}
	if err := db.CreateUser(op, u, []byte("token-1")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		if err := db.CreateApp(op, &marketplace.Application{Name: fmt.Sprint("Search me ", i), PublisherID: u.ID, HourlyRate: marketplace.MustMoney("1"),
			Deployment: marketplace.DeploymentSpec{Type: "vm", Image: "i", CPU: "1", Memory: "1Gi"}, Inputs: []marketplace.Input{}}); err != nil {
			t.Fatal(err)
		}
	}
	open := func(id string, ttl time.Duration) {
		s := &marketplace.Session{CSRFToken: "csrf-" + id, ExpiresAt: time.Now().UTC().Add(ttl)}
		if err := db.CreateSession(op, []byte(id), []byte("token-1"), s); err != nil {
			t.Fatal(err)
		}
	}
	open("live", time.Hour)
	open("expired", -time.Minute)
	open("signed-out", time.Hour)
	if err := db.DeleteSession(op, []byte("signed-out")); err != nil {
		t.Fatal(err)
	}
	pages := []marketplace.AppFilter{{Page: 1, Limit: 20}, {Page: 14, Limit: 20}, {Page: 1, Limit: 20, Query: "search"}, {Page: 99, Limit: 20}}
	anon := context.Background()
	generations := map[int]int64{}
	for _, f := range pages {
		c, err := db.FindAppsInSession(anon, []byte("live"), f, 0)
		if err != nil || c.Session.UserID != u.ID || c.Session.CSRFToken != "csrf-live" || c.Total != 300 || c.Unchanged ||
			len(c.Apps) != min(20, max(0, 300-(f.Page-1)*20)) || c.Generation < 1 {
			t.Fatalf("%+v in a live session: %+v, %v", f, c, err)
		}
		generations[f.Page] = c.Generation
		// The page at the generation the storefront has: the session, and no page read.
		c, err = db.FindAppsInSession(anon, []byte("live"), f, c.Generation)
		if err != nil || c.Session.UserID != u.ID || c.Session.CSRFToken != "csrf-live" || !c.Unchanged || c.Apps != nil ||
			c.Generation != generations[f.Page] {
			t.Fatalf("%+v in a live session, page known: %+v, %v", f, c, err)
		}
		for _, id := range []string{"expired", "signed-out", "unknown"} {
			for _, known := range []int64{0, generations[f.Page]} {
				if c, err := db.FindAppsInSession(anon, []byte(id), f, known); marketplace.ErrorCode(err) != marketplace.EUNAUTHORIZED || c != nil {
					t.Fatalf("%+v in session %s (generation %d known): %+v, %v; want EUNAUTHORIZED", f, id, known, c, err)
				}
			}
		}
	}
	// A new price is a new generation: the page is read again, with it.
	if _, err := conn.Exec(op, `UPDATE applications SET hourly_rate = 2 WHERE id = (SELECT min(id) FROM applications)`); err != nil {
		t.Fatal(err)
	}
	for _, f := range pages {
		c, err := db.FindAppsInSession(anon, []byte("live"), f, generations[f.Page])
		if err != nil || c.Unchanged || c.Generation <= generations[f.Page] || c.Total != 300 || len(c.Apps) != min(20, max(0, 300-(f.Page-1)*20)) {
			t.Fatalf("%+v after a new price, generation %d known: %+v, %v", f, generations[f.Page], c, err)
		}
		if f.Page == 1 && f.Query == "" && !c.Apps[0].HourlyRate.Equal(marketplace.MustMoney("2").Decimal) {
			t.Fatalf("page 1 after a new price: %s", c.Apps[0].HourlyRate)
		}
	}
	bearer := marketplace.WithCaller(anon, marketplace.Caller{TokenHash: []byte("token-1")})
	for _, f := range pages {
		if _, _, err := db.AppendAppsJSON(bearer, nil, f); err != nil {
			t.Fatalf("%+v with the token: %v", f, err)
		}
	}
	tokens, err := db.FindTokens(op, u.ID)
	if err != nil || len(tokens) != 1 {
		t.Fatalf("tokens %+v, %v", tokens, err)
	}
	if err := db.DeleteToken(op, u.ID, tokens[0].ID); err != nil {
		t.Fatal(err)
	}
	for _, f := range pages {
		if _, _, err := db.AppendAppsJSON(bearer, nil, f); marketplace.ErrorCode(err) != marketplace.EUNAUTHORIZED {
			t.Fatalf("%+v with the revoked token: %v, want EUNAUTHORIZED", f, err)
		}
		if _, err := db.FindAppsInSession(anon, []byte("live"), f, generations[f.Page]); marketplace.ErrorCode(err) != marketplace.EUNAUTHORIZED {
			t.Fatalf("%+v in the session of the revoked token: %v, want EUNAUTHORIZED", f, err)
		}
	}
}
