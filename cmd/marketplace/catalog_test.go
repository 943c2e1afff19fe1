package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// catalogApp is the body that publishes an application of the catalog tests.
func catalogApp(name, description, typ string) map[string]any {
	deployment := map[string]any{"type": "k8s", "repoURL": "http://reader:s3cret@" + strings.TrimPrefix(tenv.ChartRepo, "http://"), "chartName": "hello-web",
		"image": "", "cpu": "", "memory": ""}
	if typ == "vm" {
		deployment = map[string]any{"type": "vm", "image": "test-guest.qcow2", "cpu": "1", "memory": "256Mi"}
	}
	return map[string]any{"name": name, "description": description, "hourly_rate": 0.25, "deployment": deployment,
		"inputs": []any{map[string]any{"name": "replicaCount", "type": "integer", "default": 2}}}
}

// catalogPage reads one page of the catalog and returns its ids and total_items.
func (inst *instance) catalogPage(t *testing.T, token, query string) ([]int64, int64) {
	t.Helper()
	page := inst.must(t, 200, "GET", "/api/apps?"+query, token, nil).JSON(t)
	var ids []int64
	for _, a := range page["data"].([]any) {
		ids = append(ids, num(t, a.(map[string]any)["id"]))
	}
	return ids, num(t, page["total_items"])
}

// TestCatalogSearch publishes a small catalog and searches it as a consumer would: by a word of the
// name, of the description, a word's beginning, several words, with the filters and paging, never
// showing a deleted or retired application nor a repository's credentials; each listed application is
// what GET /api/apps/{id} shows; a revoked token reads nothing at once; bad searches are 422.
func TestCatalogSearch(t *testing.T) {
	mp := startMarketplace(t, "serve", nil)
	p1, tok1 := mp.user(t, "publisher 1")
	p2, tok2 := mp.user(t, "publisher 2")
	_, tokC := mp.user(t, "consumer")
	publish := func(tok, name, desc, typ string) int64 {
		return num(t, mp.must(t, 201, "POST", "/api/apps/new", tok, catalogApp(name, desc, typ)).JSON(t)["id"])
	}
	dash := publish(tok1, "Kubernetes Dashboard", "A web UI for clusters.", "k8s")
	grafana := publish(tok1, "Grafana", "Dashboards and alerting for metrics.", "vm")
	redis := publish(tok2, "Redis Cache", "An in-memory store; ships a small dashboard.", "k8s")
	postgres := publish(tok2, "PostgreSQL", "The database.", "vm")
	retired := publish(tok2, "Old Dashboard", "Retired, out of the catalog.", "k8s")
	deleted := publish(tok1, "Deleted Dashboard", "Deleted.", "vm")
	mp.must(t, 200, "POST", fmt.Sprint("/api/apps/", retired, "/retire"), tok2, nil)
	mp.must(t, 204, "DELETE", fmt.Sprint("/api/apps/", deleted), tok1, nil)

	for _, tc := range []struct {
		query string
		ids   []int64
		total int64
	}{
		{"q=dashboard", []int64{dash, grafana, redis}, 3},             // name, description ("Dashboards"), description
		{"q=DASH", []int64{dash, grafana, redis}, 3},                  // a word's beginning, any case
		{"q=" + url.QueryEscape("kube dash"), []int64{dash}, 1},       // every word
		{"q=alerting", []int64{grafana}, 1},                           // description only
		{"q=dashboard&deploymentType=vm", []int64{grafana}, 1},        // with the type filter
		{fmt.Sprint("q=dashboard&publisher=", p2), []int64{redis}, 1}, // with the publisher filter
		{"q=dashboard&limit=2&page=2", []int64{redis}, 3},             // paged, total of every page
		{"q=dashboard&limit=2&page=3", nil, 3},                        // past the end
		{"q=retired", nil, 0},                                         // a retired application is out of the catalog
		{"q=deleted", nil, 0},
		{"q=" + url.QueryEscape("  "), []int64{dash, grafana, redis, postgres}, 4}, // blank: no search
		{"q=nothing", nil, 0},
	} {
		ids, total := mp.catalogPage(t, tokC, tc.query)
		if fmt.Sprint(ids) != fmt.Sprint(tc.ids) || total != tc.total {
			t.Errorf("GET /api/apps?%s: ids %v total_items %d, want %v total_items %d", tc.query, ids, total, tc.ids, tc.total)
		}
	}

	// Each application of a page is the application as GET /api/apps/{id} shows it, credentials hidden,
	// but for what its package says about itself (about), which only GET /api/apps/{id} carries.
	r := mp.must(t, 200, "GET", "/api/apps?limit=100", tokC, nil)
	if r.ContentType != "application/json" || r.Header.Get("Content-Length") == "" {
		t.Errorf("catalog answer: Content-Type %q, Content-Length %q", r.ContentType, r.Header.Get("Content-Length"))
	}
	if strings.Contains(string(r.Body), "s3cret") {
		t.Fatalf("the catalog shows a repository's credentials: %s", r.Body)
	}
	page := r.JSON(t)
	if num(t, page["total_items"]) != 4 || num(t, page["total_pages"]) != 1 || num(t, page["page"]) != 1 || num(t, page["limit"]) != 100 {
		t.Fatalf("catalog page: %s", r.Body)
	}
	for _, item := range page["data"].([]any) {
		a := item.(map[string]any)
		one := mp.must(t, 200, "GET", fmt.Sprint("/api/apps/", num(t, a["id"])), tokC, nil).JSON(t)
		if _, ok := a["about"]; ok {
			t.Errorf("application %v in the catalog carries about: a catalog page never does", a["id"])
		}
		delete(one, "about")
		delete(one, "signature") // like about, only GET /api/apps/{id} carries it
		if !reflect.DeepEqual(a, one) {
			t.Errorf("application %v in the catalog:\n%v\nby id:\n%v", a["id"], a, one)
		}
	}

	// Bad searches change nothing and say what to fix.
	for _, q := range []string{"!!!", strings.Repeat("a", 201), "a\x01b", "\xff"} {
		r := mp.call(t, "GET", "/api/apps?q="+url.QueryEscape(q), tokC, nil)
		if r.Status != 422 || !strings.HasPrefix(r.ContentType, "application/problem+json") || !strings.Contains(string(r.Body), "q") {
			t.Errorf("GET /api/apps?q=%q: %d %s %s, want 422 problem+json", q, r.Status, r.ContentType, r.Body)
		}
	}

	// The token is checked by the statement that reads the page: a revoked one reads nothing, at once.
	if r := mp.call(t, "GET", "/api/apps?q=dashboard", "mpt_"+strings.Repeat("x", 43), nil); r.Status != 401 {
		t.Errorf("catalog with an unknown token: %d %s, want 401", r.Status, r.Body)
	}
	extra := mp.must(t, 201, "POST", fmt.Sprint("/api/users/", p1, "/tokens"), tok1, nil).JSON(t)
	mp.catalogPage(t, extra["token"].(string), "q=dashboard")
	mp.must(t, 204, "DELETE", fmt.Sprint("/api/users/", p1, "/tokens/", num(t, extra["id"])), tok1, nil)
	for _, q := range []string{"", "page=400", "q=dashboard", "deploymentType=vm"} {
		if r := mp.call(t, "GET", "/api/apps?"+q, extra["token"].(string), nil); r.Status != 401 {
			t.Errorf("catalog (%s) with a revoked token: %d %s, want 401", q, r.Status, r.Body)
		}
	}
	if r := mp.call(t, "GET", "/api/apps", mp.Environ["MARKETPLACE_ADMIN_TOKEN"], nil); r.Status != 200 {
		t.Errorf("catalog as the operator: %d %s", r.Status, r.Body)
	}

	// The OpenAPI document describes the page and q.
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct{ Name string }
			Responses  map[string]struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					}
				}
			}
		}
	}
	if err := json.Unmarshal(mp.must(t, 200, "GET", "/openapi.json", "", nil).Body, &doc); err != nil {
		t.Fatal(err)
	}
	list := doc.Paths["/api/apps"]["get"]
	if ref := list.Responses["200"].Content["application/json"].Schema.Ref; !strings.HasSuffix(ref, "/AppPage") {
		t.Errorf("GET /api/apps 200 schema %q, want the AppPage schema", ref)
	}
	if !strings.Contains(fmt.Sprint(list.Parameters), "{q}") {
		t.Errorf("GET /api/apps parameters %v: no q", list.Parameters)
	}
}

// TestCatalogTotalsUnderConcurrentChanges publishes and deletes applications from 20 clients at once
// while others read the catalog, then checks that every total the catalog shows (all, by publisher, by
// type, searched) is the number of applications in the database, and that paging through it lists
// each exactly once.
func TestCatalogTotalsUnderConcurrentChanges(t *testing.T) {
	mp := startMarketplace(t, "serve", nil)
	const clients, each = 20, 6
	tokens := make([]string, clients)
	ids := make([]int64, clients)
	for i := range tokens {
		ids[i], tokens[i] = mp.user(t, fmt.Sprint("publisher ", i))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []int64
			for k := range each {
				typ := []string{"k8s", "vm"}[k%2]
				b := catalogApp(fmt.Sprintf("Concurrent %d-%d", i, k), fmt.Sprintf("Published by client c%d.", i), typ)
				r := mp.call(t, "POST", "/api/apps/new", tokens[i], b)
				if r.Status != 201 {
					t.Errorf("publish: %d %s", r.Status, r.Body)
					return
				}
				mine = append(mine, num(t, r.JSON(t)["id"]))
				if k%3 == 2 { // delete every third, the one published before it
					if r := mp.call(t, "DELETE", fmt.Sprint("/api/apps/", mine[len(mine)-2]), tokens[i], nil); r.Status != 204 {
						t.Errorf("delete: %d %s", r.Status, r.Body)
					}
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r := mp.call(t, "GET", "/api/apps?q=concurrent&limit=5", tokens[0], nil); r.Status != 200 {
					t.Errorf("read during changes: %d %s", r.Status, r.Body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if t.Failed() {
		t.FailNow()
	}

	count := func(where string, args ...any) int64 {
		var n int64
		query(t, mp.DatabaseURL, `SELECT count(*) FROM applications WHERE deleted_at IS NULL AND `+where, args, &n)
		return n
	}
	if n := count("true"); n != clients*(each-each/3) {
		t.Fatalf("%d applications in the database, want %d", n, clients*(each-each/3))
	}
	for _, tc := range []struct {
		query string
		want  int64
	}{
		{"", count("true")},
		{"deploymentType=vm", count("deployment_type = 'vm'")},
		{fmt.Sprint("publisher=", ids[7]), count("publisher_id = $1", ids[7])},
		{"q=concurrent", count("name LIKE 'Concurrent %'")},
		{"q=c7", count("description LIKE '%client c7.'")},
		{fmt.Sprint("q=concurrent&deploymentType=k8s&publisher=", ids[3]), count("deployment_type = 'k8s' AND publisher_id = $1", ids[3])},
	} {
		seen := map[int64]bool{}
		for page := 1; ; page++ {
			got, total := mp.catalogPage(t, tokens[1], fmt.Sprintf("%s&limit=7&page=%d", tc.query, page))
			if total != tc.want {
				t.Fatalf("GET /api/apps?%s: total_items %d, the database has %d", tc.query, total, tc.want)
			}
			if len(got) == 0 {
				break
			}
			for _, id := range got {
				if seen[id] {
					t.Fatalf("GET /api/apps?%s: application %d on two pages", tc.query, id)
				}
				seen[id] = true
			}
		}
		if int64(len(seen)) != tc.want {
			t.Fatalf("GET /api/apps?%s: %d applications over all pages, want %d", tc.query, len(seen), tc.want)
		}
	}
}
