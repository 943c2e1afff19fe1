package postgres_test

import (
	"context"
	"fmt"
	"testing"

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
