package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// TestCatalogListing checks that the JSON the database keeps for the catalog (migration 00050) is what
// encoding/json makes of the application read by id with its credentials redacted, for applications
// whose text needs escaping, with credentials, odd rates and inputs of every shape, also after an
// update and a retirement.
func TestCatalogListing(t *testing.T) {
	ctx := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(ctx, tenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateUser(ctx, &marketplace.User{Name: "p"}, []byte{1}); err != nil {
		t.Fatal(err)
	}
	apps := []*marketplace.Application{
		{PublisherID: 1, Name: `Quotes " and \ backslash <b>&</b>`, Description: "line\nbreak\ttab \u2028 é 日本 \x01",
			HourlyRate: marketplace.MustMoney("0.000001"),
			Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "https://user:p%40ss@charts.example.com/x?y=1", ChartName: "c", ChartVersion: ">=1.0"},
			Inputs: []marketplace.Input{{Name: "a.b", Type: "integer", Default: 3, Required: true, Description: "d"},
				{Name: "s"}, {Name: "f", Type: "number", Default: 1.5}, {Name: "o", Default: map[string]any{"k": []any{"v", false}}},
				{Name: "z", Type: "boolean", Default: false}, {Name: "e", Type: "string", Default: ""}}},
		{PublisherID: 1, Name: "Tiny VM", HourlyRate: marketplace.MustMoney("120000"),
			Deployment: marketplace.DeploymentSpec{Type: "vm", Image: "https://u:image-pw@images.example.com/a.qcow2", CPU: "2", Memory: "1Gi"},
			Inputs:     []marketplace.Input{}},
		{PublisherID: 1, Name: "No inputs", HourlyRate: marketplace.MustMoney("0"), Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "oci://tok@reg.example.com/charts"}, Inputs: []marketplace.Input{}},
	}
	for _, a := range apps {
		if err := db.CreateApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		for _, a := range apps {
			got, _, err := db.AppendAppsJSON(ctx, nil, marketplace.AppFilter{Page: int(a.ID), Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			stored, err := db.FindAppByID(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			stored.Deployment = stored.Deployment.Redacted()
			stored.CreatedAt, stored.UpdatedAt = stored.CreatedAt.UTC(), stored.UpdatedAt.UTC()
			want, _ := json.Marshal(stored)
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("%s: listing of %d is not JSON: %v\n%s", when, a.ID, err, got)
			}
			json.Unmarshal(want, &w)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("%s: listing of application %d\n got %s\nwant %s", when, a.ID, got, want)
			}
		}
	}
	check("created")
	apps[0].Name, apps[0].HourlyRate, apps[0].Inputs = "Renamed", marketplace.MustMoney("2.50"), []marketplace.Input{}
	if err := db.UpdateApp(ctx, apps[0]); err != nil {
		t.Fatal(err)
	}
	check("updated")
	if got, _, _ := db.AppendAppsJSON(ctx, nil, marketplace.AppFilter{Page: 1, Limit: 10}); !json.Valid(append(append([]byte("["), got...), ']')) {
		t.Fatalf("a page is not a JSON array's elements: %s", got)
	}
}

// TestCatalogSearch searches a catalog by name and description, with filters, paging, deleted and
// retired applications, and compares each page and total with the same selection made in Go.
func TestCatalogSearch(t *testing.T) {
	ctx := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(ctx, tenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 1; i <= 2; i++ {
		if err := db.CreateUser(ctx, &marketplace.User{Name: "p"}, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	type app struct {
		id        int64
		publisher int64
		typ       string
		words     []string
	}
	var all []app
	for i := 1; i <= 60; i++ {
		name, desc, words := fmt.Sprint("Service ", i), "A plain application.", []string{"service", "plain"}
		switch {
		case i%5 == 0:
			name, words = fmt.Sprint("Kubernetes Dashboard ", i), []string{"kubernetes", "dashboard", "plain"}
		case i%7 == 0:
			desc, words = "Ships a Grafana-Stack with Loki.", []string{"service", "grafana", "loki"}
		}
		spec := marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}
		if i%2 == 0 {
			spec = marketplace.DeploymentSpec{Type: "vm", Image: "i", CPU: "1", Memory: "1Gi"}
		}
		a := &marketplace.Application{Name: name, Description: desc, PublisherID: int64(1 + i%2), HourlyRate: marketplace.MustMoney("1"), Deployment: spec, Inputs: []marketplace.Input{}}
		if err := db.CreateApp(ctx, a); err != nil {
			t.Fatal(err)
		}
		all = append(all, app{a.ID, a.PublisherID, spec.Type, words})
	}
	// Out of the catalog: 10 deleted, 35 retired (deleting with live deployments is what retires; here
	// RetireApp does it directly).
	if err := db.DeleteApp(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if err := db.RetireApp(ctx, 35); err != nil {
		t.Fatal(err)
	}
	hidden := map[int64]bool{10: true, 35: true}
	has := func(a app, prefixes ...string) bool {
		for _, p := range prefixes {
			found := false
			for _, w := range a.words {
				found = found || len(w) >= len(p) && w[:len(p)] == p
			}
			if !found {
				return false
			}
		}
		return true
	}
	for _, tc := range []struct {
		q     string
		words []string
		f     marketplace.AppFilter
	}{
		{q: "kubernetes", words: []string{"kubernetes"}},
		{q: "KUBE", words: []string{"kube"}},
		{q: "kube dash", words: []string{"kube", "dash"}},
		{q: "grafana", words: []string{"grafana"}},                    // in the description only
		{q: "loki grafana-stack", words: []string{"loki", "grafana"}}, // a hyphenated word is found by its parts too
		{q: "plain", words: []string{"plain"}, f: marketplace.AppFilter{DeploymentType: "vm"}},
		{q: "service", words: []string{"service"}, f: marketplace.AppFilter{PublisherID: 2}},
		{q: "service", words: []string{"service"}, f: marketplace.AppFilter{PublisherID: 1, DeploymentType: "k8s"}},
		{q: "nothing-like-it", words: []string{"nothing-like-it"}},
	} {
		var want []int64
		for _, a := range all {
			if !hidden[a.id] && has(a, tc.words...) && (tc.f.PublisherID == 0 || tc.f.PublisherID == a.publisher) &&
				(tc.f.DeploymentType == "" || tc.f.DeploymentType == a.typ) {
				want = append(want, a.id)
			}
		}
		for _, limit := range []int{4, 100} {
			for page := 1; page <= len(want)/limit+2; page++ {
				f := tc.f
				f.Query, f.Page, f.Limit = tc.q, page, limit
				apps, total, err := db.FindApps(ctx, f)
				if err != nil {
					t.Fatalf("%+v: %v", f, err)
				}
				var got []int64
				for _, a := range apps {
					got = append(got, a.ID)
				}
				wantPage := want[min((page-1)*limit, len(want)):min(page*limit, len(want))]
				if total != len(want) || fmt.Sprint(got) != fmt.Sprint(wantPage) {
					t.Fatalf("%+v: ids %v total %d, want %v total %d", f, got, total, wantPage, len(want))
				}
			}
		}
	}
}

// TestCatalogTokenCheck reads the catalog as a caller whose token nobody has looked up: the statement
// that reads the page refuses a token no user holds, a revoked one at once, and records a use.
func TestCatalogTokenCheck(t *testing.T) {
	op := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(op, tenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u := &marketplace.User{Name: "u"}
	if err := db.CreateUser(op, u, []byte("hash-1")); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateApp(op, &marketplace.Application{Name: "a", PublisherID: u.ID, HourlyRate: marketplace.MustMoney("1"),
		Deployment: marketplace.DeploymentSpec{Type: "vm", Image: "i", CPU: "1", Memory: "1Gi"}, Inputs: []marketplace.Input{}}); err != nil {
		t.Fatal(err)
	}
	as := func(hash string) context.Context {
		return marketplace.WithCaller(context.Background(), marketplace.Caller{TokenHash: []byte(hash)})
	}
	for _, f := range []marketplace.AppFilter{{Page: 1, Limit: 20}, {Page: 9, Limit: 20}, {Page: 1, Limit: 20, Query: "a"}} {
		if _, total, err := db.AppendAppsJSON(as("hash-1"), nil, f); err != nil || total != 1 {
			t.Fatalf("%+v with a valid token: total %d, %v", f, total, err)
		}
		if _, _, err := db.AppendAppsJSON(as("hash-2"), nil, f); marketplace.ErrorCode(err) != marketplace.EUNAUTHORIZED {
			t.Fatalf("%+v with an unknown token: %v, want EUNAUTHORIZED", f, err)
		}
		if _, _, err := db.FindApps(as("hash-2"), f); marketplace.ErrorCode(err) != marketplace.EUNAUTHORIZED {
			t.Fatalf("FindApps %+v with an unknown token: %v, want EUNAUTHORIZED", f, err)
		}
	}
	tokens, err := db.FindTokens(op, u.ID)
	if err != nil || len(tokens) != 1 || tokens[0].LastUsedAt == nil || time.Since(*tokens[0].LastUsedAt) > time.Hour {
		t.Fatalf("tokens %+v, %v: want one, used just now", tokens, err)
	}
	if err := db.DeleteToken(op, u.ID, tokens[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.AppendAppsJSON(as("hash-1"), nil, marketplace.AppFilter{Page: 1, Limit: 20}); marketplace.ErrorCode(err) != marketplace.EUNAUTHORIZED {
		t.Fatalf("revoked token: %v, want EUNAUTHORIZED", err)
	}
}
