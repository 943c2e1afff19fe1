package main

import (
	"fmt"
	"net/url"
	"sync"
	"testing"
)

// TestCatalogFilledThroughTheAPIReadAtOnce fills a catalog as publishers do (POST /api/apps/new from 8
// clients at once, two publishers, no VACUUM or ANALYZE afterwards: issue #23) and reads it right away
// from 16 clients at once: a deep page (read from the kept answers), searches, filters, each page and
// total_items exactly what the database holds. How fast these reads are is checked by bench/apps.sh's
// smoke run (bench/smoke_test.go), not here.
func TestCatalogFilledThroughTheAPIReadAtOnce(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"QUOTA_APPS_PER_USER": "0"})
	p1, tok1 := mp.user(t, "publisher 1")
	_, tok2 := mp.user(t, "publisher 2")
	const apps, publishers = 600, 8
	work := make(chan int)
	var wg sync.WaitGroup
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				tok, typ := tok1, "k8s"
				if i%3 == 0 {
					tok = tok2
				}
				if i%2 == 0 {
					typ = "vm"
				}
				desc := fmt.Sprintf("Filled through the API, number %d.", i)
				if i%50 == 7 {
					desc += " Rare find."
				}
				if r := mp.call(t, "POST", "/api/apps/new", tok, catalogApp(fmt.Sprint("Filled app ", i), desc, typ)); r.Status != 201 {
					t.Errorf("publish %d: %d %s", i, r.Status, r.Body)
				}
			}
		}()
	}
	for i := 1; i <= apps; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// What each page must be: the ids of the database, in order, and their number.
	truth := func(where string, args []any, limit, page int) ([]int64, int64) {
		var ids []int64
		query(t, mp.DatabaseURL, `SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM applications WHERE deleted_at IS NULL AND `+where, args, &ids)
		from, to := min((page-1)*limit, len(ids)), min(page*limit, len(ids))
		return ids[from:to], int64(len(ids))
	}
	pages := []struct {
		query string
		where string
		args  []any
		limit int
		page  int
	}{
		{"page=16&limit=20", "true", nil, 20, 16}, // offset 300: a deep page, past the first block of 256
		{"page=30&limit=20", "true", nil, 20, 30}, // the last one
		{"page=31&limit=20", "true", nil, 20, 31}, // past the end
		{"page=14&limit=20&deploymentType=vm", "deployment_type = 'vm'", nil, 20, 14},
		{fmt.Sprint("page=27&limit=10&publisher=", p1), "publisher_id = $1", []any{p1}, 10, 27},
		{"q=rare", "description LIKE '% Rare find.'", nil, 20, 1},
		{"q=" + url.QueryEscape("filled app") + "&page=15&limit=20", "name LIKE 'Filled app %'", nil, 20, 15},
		{"q=" + url.QueryEscape("number 42") + "&deploymentType=vm", "description LIKE '% number 42%' AND deployment_type = 'vm'", nil, 20, 1},
	}
	type want struct {
		ids   []int64
		total int64
	}
	wants := make([]want, len(pages))
	for i, p := range pages {
		wants[i].ids, wants[i].total = truth(p.where, p.args, p.limit, p.page)
	}
	if wants[0].total != apps || len(wants[0].ids) != 20 || wants[5].total != apps/50 || wants[7].total != 6 {
		t.Fatalf("the database holds %+v", wants)
	}
	var readers sync.WaitGroup
	for r := range 16 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for k := range pages {
				i := (k + r) % len(pages) // every reader starts on another page, and reads them all
				ids, total := mp.catalogPage(t, []string{tok1, tok2}[r%2], pages[i].query)
				if fmt.Sprint(ids) != fmt.Sprint(wants[i].ids) || total != wants[i].total {
					t.Errorf("GET /api/apps?%s: ids %v total_items %d, want %v total_items %d", pages[i].query, ids, total, wants[i].ids, wants[i].total)
				}
			}
		}()
	}
	readers.Wait()
}
