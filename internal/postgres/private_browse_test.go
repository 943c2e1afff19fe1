package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// TestPrivateApplicationsBrowsed: a private application is in its owner's browsed pages (a category, a
// publisher's name, an order, with words) and in nobody else's, whose pages, totals and category counts
// are those of the public catalog; pages browsed by a stranger are kept and never served to the owner.
func TestPrivateApplicationsBrowsed(t *testing.T) {
	op := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(op, tenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, name := range []string{"Owner Co", "Stranger"} {
		if err := db.CreateUser(op, &marketplace.User{Name: name}, []byte{byte(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	owner := marketplace.WithCaller(op, marketplace.Caller{UserID: 1})
	stranger := marketplace.WithCaller(op, marketplace.Caller{UserID: 2})
	publish := func(name, rate string, private bool) int64 {
		a := &marketplace.Application{PublisherID: 1, Name: name, Description: "a database", HourlyRate: marketplace.MustMoney(rate),
			Deployment: marketplace.DeploymentSpec{Type: marketplace.TypeK8s, RepoURL: "http://charts.example.com", ChartName: "c"},
			Inputs:     []marketplace.Input{}, Private: private}
		if err := db.CreateApp(owner, a); err != nil {
			t.Fatal(err)
		}
		if err := db.SaveAbout(owner, a.ID, 1, &marketplace.About{Keywords: []string{"db"}, ReadAt: time.Now().UTC()}, []byte(name), ""); err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	cheap, secret, dear := publish("cheap", "1", false), publish("secret", "2", true), publish("dear", "3", false)

	browse := func(ctx context.Context, b marketplace.Browse, q string) ([]int64, int) {
		t.Helper()
		apps, total, err := db.FindApps(ctx, marketplace.AppFilter{Browse: b, Query: q, Page: 1, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, a := range apps {
			ids = append(ids, a.ID)
		}
		return ids, total
	}
	for _, c := range []struct {
		b marketplace.Browse
		q string
	}{
		{marketplace.Browse{Category: "db"}, ""},
		{marketplace.Browse{PublisherName: "owner co", Sort: marketplace.SortPriceDesc}, ""},
		{marketplace.Browse{Sort: marketplace.SortPrice}, "database"},
		{marketplace.Browse{Sort: marketplace.SortName}, "secr"},
	} {
		name := fmt.Sprintf("%+v %q", c.b, c.q)
		// The stranger first: its page is kept, and must not be the owner's.
		ids, total := browse(stranger, c.b, c.q)
		if slices.Contains(ids, secret) || total != len(ids) {
			t.Errorf("%s: the stranger browses %v (total %d), with the private application %d", name, ids, total, secret)
		}
		ids, total = browse(owner, c.b, c.q)
		if !slices.Contains(ids, secret) || total != len(ids) {
			t.Errorf("%s: the owner browses %v (total %d), without its private application %d", name, ids, total, secret)
		}
	}
	if ids, _ := browse(owner, marketplace.Browse{Sort: marketplace.SortPriceDesc}, ""); !slices.Equal(ids, []int64{dear, secret, cheap}) {
		t.Errorf("the owner's catalog by price, highest first: %v, want %v", ids, []int64{dear, secret, cheap})
	}
	cats, err := db.FindCategories(op, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cats) != 1 || cats[0].Name != "db" || cats[0].Count != 2 {
		t.Errorf("categories %+v: want db counted for the 2 public applications", cats)
	}
}
