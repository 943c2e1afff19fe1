package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// TestFindApps pages through a catalog of 25 applications (publishers 1 and 2, types k8s and vm, one
// deleted) with every filter, checking the page's ids and the exact total.
func TestFindApps(t *testing.T) {
	ctx := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(ctx, tenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 1; i <= 2; i++ {
		if err := db.CreateUser(ctx, &marketplace.User{Name: "u"}, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 25; i++ {
		spec := marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}
		if i%3 == 0 {
			spec = marketplace.DeploymentSpec{Type: "vm", Image: "i", CPU: "1", Memory: "1Gi"}
		}
		a := &marketplace.Application{Name: fmt.Sprint("app ", i), PublisherID: int64(1 + i%2), HourlyRate: marketplace.MustMoney("1"),
			Deployment: spec, Inputs: []marketplace.Input{}}
		if err := db.CreateApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeleteApp(ctx, 4); err != nil {
		t.Fatal(err)
	}
	// Live ids: 1..25 without 4. vm: multiples of 3. Publisher 1: even ids; publisher 2: odd ids.
	for _, tc := range []struct {
		name  string
		f     marketplace.AppFilter
		ids   []int64
		total int
	}{
		{"first page", marketplace.AppFilter{Page: 1, Limit: 5}, []int64{1, 2, 3, 5, 6}, 24},
		{"second page skips the deleted one", marketplace.AppFilter{Page: 2, Limit: 5}, []int64{7, 8, 9, 10, 11}, 24},
		{"last, short page", marketplace.AppFilter{Page: 5, Limit: 5}, []int64{22, 23, 24, 25}, 24},
		{"beyond the end", marketplace.AppFilter{Page: 6, Limit: 5}, nil, 24},
		{"vm only", marketplace.AppFilter{Page: 2, Limit: 3, DeploymentType: "vm"}, []int64{12, 15, 18}, 8},
		{"publisher 1", marketplace.AppFilter{Page: 1, Limit: 4, PublisherID: 1}, []int64{2, 6, 8, 10}, 11},
		{"publisher 2 and k8s", marketplace.AppFilter{Page: 2, Limit: 4, PublisherID: 2, DeploymentType: "k8s"}, []int64{13, 17, 19, 23}, 9},
		{"a publisher with none", marketplace.AppFilter{Page: 1, Limit: 4, PublisherID: 9}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apps, total, err := db.FindApps(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, a := range apps {
				ids = append(ids, a.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.ids) || total != tc.total {
				t.Fatalf("ids %v total %d, want %v total %d", ids, total, tc.ids, tc.total)
			}
		})
	}
}

// TestFindAppsDeepPages compares every page of a 1,500-application catalog (three publishers, both
// types, some deleted, some moved to another publisher) with a plain OFFSET query: the block counts
// that start deep pages must agree with the rows themselves.
func TestFindAppsDeepPages(t *testing.T) {
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
	_, err = conn.Exec(ctx, `
INSERT INTO users (name) VALUES ('a'), ('b'), ('c');
INSERT INTO applications (publisher_id, name, hourly_rate, deployment_type, deployment)
SELECT 1 + g % 3, 'app', 1, CASE WHEN g % 4 = 0 THEN 'vm' ELSE 'k8s' END, '{"type": "k8s"}'
FROM generate_series(1, 1500) g;
UPDATE applications SET deleted_at = now() WHERE id % 7 = 0 OR id BETWEEN 300 AND 560;
UPDATE applications SET publisher_id = 3 WHERE id % 11 = 0;`)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []marketplace.AppFilter{{}, {PublisherID: 2}, {DeploymentType: "vm"}, {PublisherID: 3, DeploymentType: "k8s"}} {
		var cond []string
		if f.PublisherID != 0 {
			cond = append(cond, fmt.Sprint("publisher_id = ", f.PublisherID))
		}
		if f.DeploymentType != "" {
			cond = append(cond, fmt.Sprintf("deployment_type = '%s'", f.DeploymentType))
		}
		rows, _ := conn.Query(ctx, "SELECT id FROM applications WHERE "+strings.Join(append(cond, "deleted_at IS NULL"), " AND ")+" ORDER BY id")
		all, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			t.Fatal(err)
		}
		for _, limit := range []int{7, 20, 100} {
			for page := 1; page <= len(all)/limit+2; page++ {
				f.Page, f.Limit = page, limit
				apps, total, err := db.FindApps(ctx, f)
				if err != nil {
					t.Fatalf("%+v: %v", f, err)
				}
				want := all[min((page-1)*limit, len(all)):min(page*limit, len(all))]
				var got []int64
				for _, a := range apps {
					got = append(got, a.ID)
				}
				if total != len(all) || fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%+v: ids %v total %d, want %v total %d", f, got, total, want, len(all))
				}
			}
		}
	}
}
