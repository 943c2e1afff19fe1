package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/marketplace/marketplace/internal/chartrepo"
)

// browsableRepository is a chart repository whose charts list keywords (the catalog's categories);
// two have an icon.
func browsableRepository(t *testing.T) *httptest.Server {
	t.Helper()
	src, built := t.TempDir(), t.TempDir()
	icon := func(c color.RGBA) []byte {
		img := image.NewRGBA(image.Rect(0, 0, 48, 48))
		for x := range 48 {
			for y := range 48 {
				if (x-24)*(x-24)+(y-24)*(y-24) < 20*20 {
					img.Set(x, y, c)
				}
			}
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	icons := map[string][]byte{"/icons/pg.png": icon(color.RGBA{B: 160, G: 80, A: 255}), "/icons/cache.png": icon(color.RGBA{R: 200, A: 255})}
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(built)))
	for path, b := range icons {
		mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) { w.Write(b) })
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for name, extra := range map[string]string{
		"pg-lite":     "appVersion: \"16.2\"\nkeywords: [Database, sql]\nicon: " + srv.URL + "/icons/pg.png\n",
		"cache-box":   "appVersion: \"7.4\"\nkeywords: [database, cache]\nicon: " + srv.URL + "/icons/cache.png\n",
		"metrics-web": "appVersion: \"2.0\"\nkeywords: [monitoring, web]\n",
	} {
		files := map[string]string{
			"Chart.yaml":               "apiVersion: v2\nname: " + name + "\nversion: 0.1.0\n" + extra,
			"values.yaml":              "greeting: hello\n",
			"templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
		}
		for file, content := range files {
			path := filepath.Join(src, name, file)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := chartrepo.Build(src, built); err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestCatalogBrowse is the catalog people browse: applications published by two named publishers from
// charts with keywords are listed with their publisher's name, categories, icon and app version; the
// API filters them by category and publisher name and sorts them by name, age and price (total_items
// counts the filtered set; bad values are 422 problem+json; without the new parameters the catalog is
// the seed's); mpctl lists and shows the same; and in Chromium a consumer filters by a category (shown
// with its count) and a publisher, sorts by price, and the page passes axe-core. The screenshot of that
// page is docs/storefront.png, the README's.
func TestCatalogBrowse(t *testing.T) {
	repo := browsableRepository(t)
	mp := startMarketplace(t, "serve", map[string]string{"MARKETPLACE_FETCH_ALLOW": testRepositories() + "," + repo.Listener.Addr().String()})
	acmeID, acme := mp.user(t, "Acme Labs")
	betaID, beta := mp.user(t, "Beta Soft")
	_, consumer := mp.user(t, "Consumer")
	publish := func(tok, name, chart string, rate float64) int64 {
		deployment := map[string]any{"type": "k8s", "repoURL": repo.URL, "chartName": chart}
		if chart == "" {
			deployment = map[string]any{"type": "vm", "image": "test-guest.qcow2", "cpu": "1", "memory": "256Mi"}
		}
		return num(t, mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": name,
			"description": "The " + name + " you need.", "hourly_rate": rate, "deployment": deployment}).JSON(t)["id"])
	}
	pg := publish(acme, "PostgreSQL Lite", "pg-lite", 0.5)
	cacheBox := publish(beta, "Cache Box", "cache-box", 0.3)
	metrics := publish(acme, "Metrics Web", "metrics-web", 0.1)
	replica := publish(beta, "replica DB", "pg-lite", 0.8)
	tiny := publish(beta, "Tiny Cache", "cache-box", 0.05)
	plain := publish(beta, "Plain VM", "", 1)
	for _, id := range []int64{pg, cacheBox, metrics, replica, tiny} {
		waitFor(t, time.Minute, fmt.Sprintf("application %d's categories", id), func() bool {
			return mp.must(t, 200, "GET", fmt.Sprint("/api/apps/", id), consumer, nil).JSON(t)["categories"] != nil
		})
	}

	// The rows carry the publisher's name, the categories, the icon and the app version.
	app := mp.must(t, 200, "GET", fmt.Sprint("/api/apps/", pg), consumer, nil).JSON(t)
	icon, _ := app["icon_url"].(string)
	if app["publisher_name"] != "Acme Labs" || fmt.Sprint(app["categories"]) != "[database sql]" || app["app_version"] != "16.2" ||
		!strings.HasPrefix(icon, "/icons/") {
		t.Errorf("GET /api/apps/%d: %v", pg, app)
	}
	page := mp.must(t, 200, "GET", "/api/apps?category=sql", consumer, nil).JSON(t)
	row := page["data"].([]any)[0].(map[string]any)
	delete(app, "about")
	delete(app, "signature") // like about, only GET /api/apps/{id} carries it
	if fmt.Sprint(row) != fmt.Sprint(app) {
		t.Errorf("the catalog's row:\n%v\nby id:\n%v", row, app)
	}

	for _, tc := range []struct {
		query string
		ids   []int64
		total int64
	}{
		{"", []int64{pg, cacheBox, metrics, replica, tiny, plain}, 6}, // the seed's catalog, by id
		{"category=database", []int64{pg, cacheBox, replica, tiny}, 4},
		{"category=DATABASE&sort=price", []int64{tiny, cacheBox, pg, replica}, 4},
		{"category=database&sort=-price", []int64{replica, pg, cacheBox, tiny}, 4},
		{"category=database&sort=price&limit=2&page=2", []int64{pg, replica}, 4},
		{"publisherName=" + url.QueryEscape("acme labs"), []int64{pg, metrics}, 2},
		{"publisherName=" + url.QueryEscape("Beta Soft") + "&category=database&sort=price", []int64{tiny, cacheBox, replica}, 3},
		{"publisherName=nobody", nil, 0},
		{"category=nothing", nil, 0},
		{"sort=name", []int64{cacheBox, metrics, plain, pg, replica, tiny}, 6},
		{"sort=newest&limit=2", []int64{plain, tiny}, 6},
		{"sort=price&deploymentType=k8s", []int64{tiny, metrics, cacheBox, pg, replica}, 5},
		{fmt.Sprint("sort=-price&publisher=", acmeID), []int64{pg, metrics}, 2},
		{"category=cache&q=tiny", []int64{tiny}, 1},
	} {
		ids, total := mp.catalogPage(t, consumer, tc.query)
		if fmt.Sprint(ids) != fmt.Sprint(tc.ids) || total != tc.total {
			t.Errorf("GET /api/apps?%s: ids %v total_items %d, want %v total_items %d", tc.query, ids, total, tc.ids, tc.total)
		}
	}
	if p := mp.must(t, 200, "GET", "/api/apps?limit=4", consumer, nil).JSON(t); num(t, p["total_pages"]) != 2 || num(t, p["page"]) != 1 ||
		num(t, p["limit"]) != 4 || num(t, p["total_items"]) != 6 {
		t.Errorf("the seed's page: %v", p)
	}
	for _, q := range []string{"sort=cheapest", "category=" + strings.Repeat("x", 101), "publisherName=a%01b", "category=%ff"} {
		r := mp.call(t, "GET", "/api/apps?"+q, consumer, nil)
		if r.Status != 422 || !strings.HasPrefix(r.ContentType, "application/problem+json") {
			t.Errorf("GET /api/apps?%s: %d %s %s, want 422 problem+json", q, r.Status, r.ContentType, r.Body)
		}
	}
	var names []string
	for _, p := range mp.must(t, 200, "GET", "/openapi.json", "", nil).JSON(t)["paths"].(map[string]any)["/api/apps"].(map[string]any)["get"].(map[string]any)["parameters"].([]any) {
		names = append(names, p.(map[string]any)["name"].(string))
	}
	for _, want := range []string{"category", "publisherName", "sort"} {
		if !slices.Contains(names, want) {
			t.Errorf("the OpenAPI document's GET /api/apps has no %s: %v", want, names)
		}
	}

	// mpctl.
	cli := buildMpctl(t)
	cli.must(t, "login", "--url", mp.URL, "--token", consumer)
	out := cli.must(t, "apps", "list", "--category", "database", "--publisher-name", "beta soft", "--sort", "-price")
	if r, c, ti := strings.Index(out, "replica DB"), strings.Index(out, "Cache Box"), strings.Index(out, "Tiny Cache"); r < 0 || !(r < c && c < ti) ||
		strings.Contains(out, "PostgreSQL") || !strings.Contains(out, fmt.Sprintf("Beta Soft (%d)", betaID)) || !strings.Contains(out, "cache,database") {
		t.Errorf("mpctl apps list --category database --publisher-name 'beta soft' --sort -price:\n%s", out)
	}
	out = cli.must(t, "apps", "show", fmt.Sprint(pg))
	for _, want := range []string{"Acme Labs", "database, sql", "16.2"} {
		if !strings.Contains(out, want) {
			t.Errorf("mpctl apps show does not say %q:\n%s", want, out)
		}
	}
	cli.expectFailure(t, nil, 1, []string{"sort"}, "apps", "list", "--sort", "cheapest")

	// The storefront.
	ctx := browserContext(t)
	signInBrowser(t, ctx, mp, consumer)
	type card struct {
		Name, Publisher, Price string
		Categories             []string
		Icon                   int
	}
	var cards []card
	var count string
	readCards := func(step string) {
		t.Helper()
		browse(t, ctx, step,
			chromedp.WaitVisible(`[data-testid=count]`, chromedp.ByQuery),
			chromedp.Poll(`[...document.querySelectorAll(".app-card img")].every(i => i.complete)`, nil),
			chromedp.Text(`[data-testid=count]`, &count, chromedp.ByQuery),
			chromedp.Evaluate(`[...document.querySelectorAll(".app-card")].map(c => ({
  Name: c.querySelector("h2").textContent, Publisher: (c.querySelector(".publisher") || {}).textContent || "",
  Price: c.querySelector(".price").textContent, Categories: [...c.querySelectorAll(".categories a")].map(a => a.textContent),
  Icon: (c.querySelector("img.icon") || {}).naturalWidth || 0}))`, &cards))
	}
	browse(t, ctx, "the catalog", chromedp.Navigate(mp.URL+"/"), chromedp.WaitVisible(`#category`, chromedp.ByID))
	var option string
	browse(t, ctx, "the category filter", chromedp.TextContent(`#category option[value=database]`, &option, chromedp.ByQuery))
	if option != "database (4)" {
		t.Errorf("the category filter offers %q, want database (4)", option)
	}
	browse(t, ctx, "filter by category", chromedp.SetValue(`#category`, "database", chromedp.ByID),
		chromedp.Click(`form.search button[type=submit]`, chromedp.ByQuery), chromedp.WaitReady(`#category option[value=database][selected]`, chromedp.ByQuery))
	readCards("cards of a category")
	if len(cards) != 4 || !strings.HasPrefix(count, "4 applications") {
		t.Errorf("category database: %q %+v", count, cards)
	}
	browse(t, ctx, "filter by publisher and sort by price",
		chromedp.SendKeys(`#publisherName`, "Beta Soft", chromedp.ByID), chromedp.SetValue(`#sort`, "price", chromedp.ByID),
		chromedp.Click(`form.search button[type=submit]`, chromedp.ByQuery), chromedp.WaitReady(`#sort option[value=price][selected]`, chromedp.ByQuery))
	readCards("cards of a category and a publisher by price")
	var got []string
	for _, c := range cards {
		got = append(got, c.Name)
		if c.Publisher != "Beta Soft" || !slices.Contains(c.Categories, "database") || c.Icon != 48 || !strings.Contains(c.Price, "/hour") {
			t.Errorf("card %+v: want Beta Soft's, in database, with its 48px icon and its price", c)
		}
	}
	if fmt.Sprint(got) != "[Tiny Cache Cache Box replica DB]" || !strings.HasPrefix(count, "3 applications") {
		t.Errorf("Beta Soft's databases by price: %q %v", count, got)
	}
	var location string
	browse(t, ctx, "the address", chromedp.Location(&location))
	if u, err := url.Parse(location); err != nil || u.Query().Get("category") != "database" || u.Query().Get("publisherName") != "Beta Soft" ||
		u.Query().Get("sort") != "price" {
		t.Errorf("the page's address %s does not keep the filters", location)
	}
	checkAccessibility(t, ctx, "the catalog, filtered and sorted")
	var shot []byte
	browse(t, ctx, "screenshot", chromedp.Navigate(mp.URL+"/?sort=name"), chromedp.WaitVisible(`[data-testid=count]`, chromedp.ByQuery),
		chromedp.Poll(`[...document.querySelectorAll(".app-card img")].every(i => i.complete)`, nil),
		chromedp.FullScreenshot(&shot, 100)) // 100: a PNG
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "storefront.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	// A category of a card leads to its applications.
	browse(t, ctx, "a card's category", chromedp.Click(`.app-card .categories a[href="/?category=monitoring"]`, chromedp.ByQuery),
		chromedp.WaitReady(`#category option[value=monitoring][selected]`, chromedp.ByQuery))
	readCards("cards of a card's category")
	if len(cards) != 1 || cards[0].Name != "Metrics Web" || cards[0].Icon != 0 {
		t.Errorf("category monitoring: %+v", cards)
	}
}
