package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// fixture is a fresh database with one user who publishes one application and owns one project.
type fixture struct {
	db                 *postgres.DB
	ctx                context.Context // the operator's
	url                string
	user, app, project int64
}

func newFixture(t *testing.T, q marketplace.Quotas) *fixture {
	t.Helper()
	f := &fixture{ctx: marketplace.OperatorContext(context.Background()), url: tenv.Database(t)}
	var err error
	if f.db, err = postgres.Open(f.ctx, f.url, postgres.WithQuotas(q)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.db.Close)
	u := &marketplace.User{Name: "u"}
	if err := f.db.CreateUser(f.ctx, u, []byte("first token")); err != nil {
		t.Fatal(err)
	}
	a := newApp(u.ID)
	if err := f.db.CreateApp(f.ctx, a); err != nil {
		t.Fatal(err)
	}
	p := &marketplace.Project{Name: "p", UserID: u.ID}
	if err := f.db.CreateProject(f.ctx, p); err != nil {
		t.Fatal(err)
	}
	f.user, f.app, f.project = u.ID, a.ID, p.ID
	return f
}

func newApp(publisher int64) *marketplace.Application {
	return &marketplace.Application{Name: "a", PublisherID: publisher, HourlyRate: marketplace.MustMoney("1.5"),
		Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}, Inputs: []marketplace.Input{}}
}

func (f *fixture) deploy(ctx context.Context) (*marketplace.Deployment, error) {
	d := &marketplace.Deployment{ConsumerID: f.user, ApplicationID: f.app, ProjectID: f.project}
	return d, f.db.CreateDeployment(ctx, d)
}

// exec runs SQL on the fixture's database, and scans one row into dest when given.
func (f *fixture) exec(t *testing.T, sql string, dest ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), f.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if len(dest) == 0 {
		_, err = conn.Exec(context.Background(), sql)
	} else {
		err = conn.QueryRow(context.Background(), sql).Scan(dest...)
	}
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestQuotasHoldUnderConcurrentRequests sends 12 creations at once for a user whose quota is 4 (one
// already used) and checks exactly 3 succeed, the others are refused naming the setting, and the
// database holds exactly 4. The operator acts, so it is not exempt either.
func TestQuotasHoldUnderConcurrentRequests(t *testing.T) {
	for _, tc := range []struct {
		name, setting, countSQL string
		create                  func(f *fixture) error
	}{
		{"projects", "QUOTA_PROJECTS_PER_USER", `SELECT count(*) FROM projects WHERE deleted_at IS NULL`,
			func(f *fixture) error {
				return f.db.CreateProject(f.ctx, &marketplace.Project{Name: "p", UserID: f.user})
			}},
		{"applications", "QUOTA_APPS_PER_USER", `SELECT count(*) FROM applications WHERE deleted_at IS NULL`,
			func(f *fixture) error { return f.db.CreateApp(f.ctx, newApp(f.user)) }},
		{"deployments", "QUOTA_DEPLOYMENTS_PER_USER", `SELECT count(*) FROM deployments WHERE status <> 'uninstalled'`,
			func(f *fixture) error { _, err := f.deploy(f.ctx); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, marketplace.Quotas{Projects: 4, Apps: 4, Deployments: 4})
			if tc.name == "deployments" { // the fixture has none: use one of the four
				if err := tc.create(f); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, 12)
			for range 12 {
				wg.Go(func() { errs <- tc.create(f) })
			}
			wg.Wait()
			close(errs)
			created := 0
			for err := range errs {
				switch {
				case err == nil:
					created++
				case marketplace.ErrorCode(err) != marketplace.ECONFLICT || !strings.Contains(marketplace.ErrorMessage(err), tc.setting+"=4"):
					t.Errorf("refusal %v, want a conflict naming %s=4", err, tc.setting)
				}
			}
			if created != 3 {
				t.Errorf("%d created, want 3", created)
			}
			var n int
			if f.exec(t, tc.countSQL, &n); n != 4 {
				t.Errorf("%d %s in the database, want 4", n, tc.name)
			}
		})
	}
}

// TestDeploymentQuotaCountsLiveOnes checks an uninstalled deployment frees its place and a failed one
// does not.
func TestDeploymentQuotaCountsLiveOnes(t *testing.T) {
	f := newFixture(t, marketplace.Quotas{Deployments: 2})
	for range 2 {
		if _, err := f.deploy(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.exec(t, `UPDATE deployments SET status = 'failed' WHERE id = 1`)
	if _, err := f.deploy(f.ctx); marketplace.ErrorCode(err) != marketplace.ECONFLICT {
		t.Fatalf("a third deployment beside a failed one: %v, want a conflict", err)
	}
	f.exec(t, `UPDATE deployments SET status = 'uninstalled' WHERE id = 1`)
	if _, err := f.deploy(f.ctx); err != nil {
		t.Fatalf("a deployment in the place of an uninstalled one: %v", err)
	}
}

// TestPages pages through every paginated list and checks each page's ids and the exact totals, for the
// operator and for a user who sees only its own.
func TestPages(t *testing.T) {
	f := newFixture(t, marketplace.Quotas{})
	for i := 2; i <= 7; i++ {
		if err := f.db.CreateUser(f.ctx, &marketplace.User{Name: "u"}, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if err := f.db.CreateProject(f.ctx, &marketplace.Project{Name: "p", UserID: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.deploy(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Seven users, seven projects of user 1, six deployments of user 1 in project 1; usage for three.
	f.exec(t, `INSERT INTO usage_records (deployment_id, user_id, application_id, hourly_rate, started_at, ended_at, amount)
SELECT id, 1, 1, 1, now() - interval '2 hours', now() - interval '1 hour', 1.25 FROM deployments WHERE id <= 3`)
	user1 := marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: 1})
	for _, tc := range []struct {
		name  string
		find  func(marketplace.Page) (string, int, error)
		page  marketplace.Page
		ids   string
		total int
	}{
		{"users, second page", func(p marketplace.Page) (string, int, error) {
			us, n, err := f.db.FindUsers(f.ctx, p)
			return ids(len(us), func(i int) int64 { return us[i].ID }), n, err
		}, marketplace.Page{Number: 2, Limit: 3}, "4,5,6", 7},
		{"users, last page", func(p marketplace.Page) (string, int, error) {
			us, n, err := f.db.FindUsers(f.ctx, p)
			return ids(len(us), func(i int) int64 { return us[i].ID }), n, err
		}, marketplace.Page{Number: 3, Limit: 3}, "7", 7},
		{"users, past the end", func(p marketplace.Page) (string, int, error) {
			us, n, err := f.db.FindUsers(f.ctx, p)
			return ids(len(us), func(i int) int64 { return us[i].ID }), n, err
		}, marketplace.Page{Number: 9, Limit: 3}, "", 7},
		{"users a user sees", func(p marketplace.Page) (string, int, error) {
			us, n, err := f.db.FindUsers(user1, p)
			return ids(len(us), func(i int) int64 { return us[i].ID }), n, err
		}, marketplace.Page{Number: 1, Limit: 3}, "1", 1},
		{"projects", func(p marketplace.Page) (string, int, error) {
			ps, n, err := f.db.FindProjectsByUser(user1, 1, p)
			return ids(len(ps), func(i int) int64 { return ps[i].ID }), n, err
		}, marketplace.Page{Number: 2, Limit: 5}, "6,7", 7},
		{"deployments, newest first", func(p marketplace.Page) (string, int, error) {
			ds, n, err := f.db.FindDeployments(user1, marketplace.DeploymentFilter{Page: p})
			return ids(len(ds), func(i int) int64 { return ds[i].ID }), n, err
		}, marketplace.Page{Number: 2, Limit: 4}, "2,1", 6},
		{"deployments of a project", func(p marketplace.Page) (string, int, error) {
			ds, n, err := f.db.FindDeployments(user1, marketplace.DeploymentFilter{ProjectID: 1, Page: p})
			return ids(len(ds), func(i int) int64 { return ds[i].ID }), n, err
		}, marketplace.Page{Number: 1, Limit: 2}, "6,5", 6},
		{"deployments of another project", func(p marketplace.Page) (string, int, error) {
			ds, n, err := f.db.FindDeployments(user1, marketplace.DeploymentFilter{ProjectID: 2, Page: p})
			return ids(len(ds), func(i int) int64 { return ds[i].ID }), n, err
		}, marketplace.Page{Number: 1, Limit: 2}, "", 0},
		{"usage records", func(p marketplace.Page) (string, int, error) {
			rs, totals, err := f.db.FindUsageRecords(user1, marketplace.UsageFilter{UserID: 1, Page: p})
			n, sum := totals.Records, totals.Amount
			if err == nil && !sum.Equal(marketplace.MustMoney("3.75").Decimal) {
				err = fmt.Errorf("the total amount is %s, want 3.75 (all records, not the page's)", sum)
			}
			return ids(len(rs), func(i int) int64 { return rs[i].DeploymentID }), n, err
		}, marketplace.Page{Number: 2, Limit: 2}, "3", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := tc.find(tc.page)
			if err != nil || got != tc.ids || total != tc.total {
				t.Fatalf("ids %q, total %d, %v; want %q, %d", got, total, err, tc.ids, tc.total)
			}
		})
	}
	if _, _, err := f.db.FindProjectsByUser(user1, 2, marketplace.Page{Number: 1, Limit: 1}); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Fatalf("another user's projects: %v, want not found", err)
	}
}

// TestTokens rotates and revokes tokens and checks a revoked token authenticates nothing at once.
func TestTokens(t *testing.T) {
	f := newFixture(t, marketplace.Quotas{})
	user1 := marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: 1})
	if err := f.db.CreateUser(f.ctx, &marketplace.User{Name: "other"}, []byte("other's")); err != nil {
		t.Fatal(err)
	}
	user2 := marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: 2})

	second, err := f.db.CreateToken(user1, 1, []byte("second"))
	if err != nil || second.UserID != 1 {
		t.Fatalf("create token: %+v, %v", second, err)
	}
	for _, hash := range []string{"first token", "second"} {
		if u, err := f.db.FindUserByTokenHash(context.Background(), []byte(hash)); err != nil || u.ID != 1 {
			t.Fatalf("token %q: %+v, %v; want user 1", hash, u, err)
		}
	}
	tokens, err := f.db.FindTokens(user1, 1)
	if err != nil || len(tokens) != 2 || tokens[0].LastUsedAt == nil {
		t.Fatalf("tokens: %+v, %v; want two, the first used", tokens, err)
	}
	first := tokens[0].ID

	if _, err := f.db.CreateToken(user2, 1, []byte("planted")); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Errorf("another user creates a token of user 1: %v, want not found", err)
	}
	if _, err := f.db.FindTokens(user2, 1); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Errorf("another user lists user 1's tokens: %v, want not found", err)
	}
	if err := f.db.DeleteToken(user2, 1, first); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Errorf("another user revokes user 1's token: %v, want not found", err)
	}
	if err := f.db.DeleteToken(user2, 2, first); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Errorf("user 2 revokes user 1's token as its own: %v, want not found", err)
	}

	if err := f.db.DeleteToken(user1, 1, first); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.FindUserByTokenHash(context.Background(), []byte("first token")); marketplace.ErrorCode(err) != marketplace.EUNAUTHORIZED {
		t.Fatalf("the revoked token: %v, want unauthorized", err)
	}
	if u, err := f.db.FindUserByTokenHash(context.Background(), []byte("second")); err != nil || u.ID != 1 {
		t.Fatalf("the token kept: %+v, %v", u, err)
	}
	if err := f.db.DeleteToken(user1, 1, first); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Fatalf("revoking twice: %v, want not found", err)
	}

	for i := 2; i < marketplace.MaxTokensPerUser+1; i++ {
		if _, err := f.db.CreateToken(user1, 1, []byte(fmt.Sprint("more ", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.db.CreateToken(user1, 1, []byte("one too many")); marketplace.ErrorCode(err) != marketplace.ECONFLICT {
		t.Fatalf("token %d: %v, want a conflict", marketplace.MaxTokensPerUser+1, err)
	}
}

// TestRetireAppWhileDeploymentsAreLive checks an application with a live deployment cannot be deleted
// but can be retired (out of the catalog, still found, no new install), and is deleted once only a
// failed deployment is left.
func TestRetireAppWhileDeploymentsAreLive(t *testing.T) {
	f := newFixture(t, marketplace.Quotas{})
	live, err := f.deploy(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.DeleteApp(f.ctx, f.app); marketplace.ErrorCode(err) != marketplace.ECONFLICT {
		t.Fatalf("delete with a live deployment: %v, want a conflict", err)
	}
	if err := f.db.RetireApp(f.ctx, f.app); err != nil {
		t.Fatalf("retire with a live deployment: %v", err)
	}
	if _, total, _ := f.db.FindApps(f.ctx, marketplace.AppFilter{Page: 1, Limit: 10}); total != 0 {
		t.Fatalf("the catalog counts %d applications, want 0", total)
	}
	a, err := f.db.FindAppByID(f.ctx, f.app)
	if err != nil || a.RetiredAt == nil {
		t.Fatalf("the retired application: %+v, %v; want it found, retired", a, err)
	}
	if _, err := f.deploy(f.ctx); marketplace.ErrorCode(err) != marketplace.ECONFLICT || !strings.Contains(marketplace.ErrorMessage(err), "retired") {
		t.Fatalf("install of a retired application: %v, want a conflict saying it is retired", err)
	}
	if err := f.db.UpdateApp(f.ctx, a); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Fatalf("update of a retired application: %v, want not found", err)
	}

	f.exec(t, fmt.Sprintf(`UPDATE deployments SET status = 'failed' WHERE id = %d`, live.ID))
	if err := f.db.DeleteApp(f.ctx, f.app); err != nil {
		t.Fatalf("delete again with only a failed deployment: %v", err)
	}
	if _, err := f.db.FindAppByID(f.ctx, f.app); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Fatalf("the deleted application: %v, want not found", err)
	}
	var counted int
	if f.exec(t, `SELECT coalesce(sum(n), 0) FROM catalog_counts WHERE publisher_id = 0 AND deployment_type = '' AND shift = 20`, &counted); counted != 0 {
		t.Fatalf("catalog_counts says %d, want 0", counted)
	}
}

// ids lists the ids of n rows, comma-separated, in their order.
func ids(n int, id func(int) int64) string {
	s := make([]string, n)
	for i := range n {
		s[i] = fmt.Sprint(id(i))
	}
	return strings.Join(s, ",")
}
