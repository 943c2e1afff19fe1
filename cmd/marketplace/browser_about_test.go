package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/marketplace/marketplace/internal/chartrepo"
)

// describedRepository is a chart repository a publisher controls, on an address the operator allowed,
// whose charts say things about themselves: "storied" has a PNG icon of the repository's, a README with
// a script in it, maintainers, links, a license and Artifact Hub changes; "svg-icon" has an SVG icon
// (with a script in it); "heavy-icon" an icon of 50 MB, streamed without a length. heavySent counts the
// bytes the repository managed to send of the heavy icon.
func describedRepository(t *testing.T) (srv *httptest.Server, heavySent *atomic.Int64) {
	t.Helper()
	src, built := t.TempDir(), t.TempDir()
	heavySent = new(atomic.Int64)
	icon := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for i := range 64 {
		icon.Set(i, i, color.RGBA{B: 255, A: 255})
		icon.Set(63-i, i, color.RGBA{R: 255, A: 255})
	}
	var iconPNG bytes.Buffer
	if err := png.Encode(&iconPNG, icon); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(built)))
	mux.HandleFunc("/icons/storied.png", func(w http.ResponseWriter, _ *http.Request) { w.Write(iconPNG.Bytes()) })
	mux.HandleFunc("/icons/logo.svg", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Write([]byte(`<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><script>alert("svg")</script><rect width="64" height="64"/></svg>`))
	})
	mux.HandleFunc("/icons/heavy.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		chunk := make([]byte, 64<<10)
		copy(chunk, iconPNG.Bytes()) // a PNG's header, then zeros
		for heavySent.Load() < 50<<20 && r.Context().Err() == nil {
			n, err := w.Write(chunk)
			heavySent.Add(int64(n))
			if err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	readme := "# Storied\n\nA small web server that says **hello**.\n\n" +
		"<script>window.__readmeScript = true; document.title = 'pwned'</script>\n\n" +
		"## Configuration\n\n| value | default |\n|---|---|\n| `replicaCount` | 1 |\n\n" +
		"See [the documentation](https://docs.example.com/storied) or [this](javascript:alert(1)). ![tracker](https://tracker.example.com/pixel.png)\n"
	charts := map[string]map[string]string{
		"storied": {
			"Chart.yaml": fmt.Sprintf(`apiVersion: v2
name: storied
version: 1.2.0
appVersion: "4.5.6"
icon: %[1]s/icons/storied.png
keywords: [web, hello]
home: https://storied.example.com
sources: [https://git.example.com/storied]
maintainers:
  - name: Ada Lovelace
    email: ada@example.com
    url: https://ada.example.com
  - name: Mallory
    url: javascript:alert(1)
annotations:
  artifacthub.io/license: Apache-2.0
  artifacthub.io/links: |
    - name: Support
      url: https://support.example.com
  artifacthub.io/changes: |
    - kind: added
      description: A greeting page
    - kind: fixed
      description: The health check
`, srv.URL),
			"README.md": readme,
		},
		"svg-icon":   {"Chart.yaml": fmt.Sprintf("apiVersion: v2\nname: svg-icon\nversion: 0.1.0\nicon: %s/icons/logo.svg\n", srv.URL)},
		"heavy-icon": {"Chart.yaml": fmt.Sprintf("apiVersion: v2\nname: heavy-icon\nversion: 0.1.0\nicon: %s/icons/heavy.png\n", srv.URL)},
	}
	for name, files := range charts {
		files["values.yaml"] = "greeting: hello\n"
		files["templates/configmap.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\ndata:\n  greeting: {{ .Values.greeting | quote }}\n"
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
	return srv, heavySent
}

// waitForAbout waits until what application id's latest version says about itself has been read, and
// returns the application as the API shows it.
func waitForAbout(t *testing.T, inst *instance, token string, id int64) map[string]any {
	t.Helper()
	var app map[string]any
	waitFor(t, time.Minute, fmt.Sprintf("application %d's package to be read", id), func() bool {
		app = inst.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d", id), token, nil).JSON(t)
		return app["about"] != nil
	})
	return app["about"].(map[string]any)
}

// TestApplicationPageTellsWhatThePackageSays is the evidence for what a chart says about itself, read
// when it is published: the API, mpctl and the application's page in Chromium show its icon (re-encoded,
// served by the marketplace itself), app version, license, keywords, maintainers, links, README (its
// script shown as text, never run) and its Artifact Hub changes as the version's changelog; an SVG icon
// and a 50 MB icon are refused, and the publisher is told why. The page passes axe-core; screenshots go
// to .local/screenshots.
func TestApplicationPageTellsWhatThePackageSays(t *testing.T) {
	repo, heavySent := describedRepository(t)
	inst := startMarketplace(t, "serve", map[string]string{"MARKETPLACE_FETCH_ALLOW": testRepositories() + "," + repo.Listener.Addr().String()})
	_, pub := inst.user(t, "Publisher")
	publish := func(chart string) int64 {
		return num(t, inst.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{
			"name": "App " + chart, "description": "The " + chart + " chart.", "hourly_rate": 0.25,
			"deployment": map[string]any{"type": "k8s", "repoURL": repo.URL, "chartName": chart},
		}).JSON(t)["id"])
	}
	storied, svg, heavy := publish("storied"), publish("svg-icon"), publish("heavy-icon")
	_, token := inst.user(t, "Consumer")

	// The API.
	about := waitForAbout(t, inst, token, storied)
	iconPath, _ := about["icon"].(string)
	if !strings.HasPrefix(iconPath, "/icons/") || !strings.HasSuffix(iconPath, ".png") {
		t.Fatalf("the storied chart's icon is %q, want /icons/<sha256>.png", iconPath)
	}
	if about["app_version"] != "4.5.6" || about["license"] != "Apache-2.0" || about["home"] != "https://storied.example.com" ||
		fmt.Sprint(about["keywords"]) != "[web hello]" || fmt.Sprint(about["sources"]) != "[https://git.example.com/storied]" ||
		fmt.Sprint(about["links"]) != "[map[name:Support url:https://support.example.com]]" ||
		fmt.Sprint(about["maintainers"]) != "[map[email:ada@example.com name:Ada Lovelace url:https://ada.example.com] map[name:Mallory]]" {
		t.Errorf("about: %v", about)
	}
	readme, _ := about["readme_html"].(string)
	if !strings.Contains(readme, "&lt;script&gt;window.__readmeScript") || strings.Contains(readme, "<script") ||
		strings.Contains(readme, "javascript:") || strings.Contains(readme, "tracker.example.com") || !strings.Contains(readme, "<h3>Storied</h3>") {
		t.Errorf("readme_html: %s", readme)
	}
	versions := inst.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d/versions", storied), token, nil).List(t)
	if cl := versions[0]["changelog"]; cl != "- added: A greeting page\n- fixed: The health check" {
		t.Errorf("version 1's changelog is %q, want the chart's Artifact Hub changes", cl)
	}

	// The icon, from the marketplace's own store: a PNG named by its content.
	resp, err := http.Get(inst.URL + iconPath)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(body.Bytes())
	cfg, format, err := image.DecodeConfig(bytes.NewReader(body.Bytes()))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || iconPath != "/icons/"+hex.EncodeToString(sum[:])+".png" ||
		err != nil || format != "png" || cfg.Width != 64 || cfg.Height != 64 {
		t.Errorf("GET %s: %d %v, a %s %dx%d (%v)", iconPath, resp.StatusCode, resp.Header, format, cfg.Width, cfg.Height, err)
	}
	if r := inst.call(t, "GET", "/icons/"+strings.Repeat("0", 64)+".png", "", nil); r.Status != 404 {
		t.Errorf("an icon the marketplace does not have: %d", r.Status)
	}

	// Refused icons: none kept, and the publisher is told why.
	for id, want := range map[int64]string{svg: "not a PNG, JPEG or GIF picture", heavy: "more than the 1048576 bytes an icon may"} {
		a := waitForAbout(t, inst, pub, id)
		if a["icon"] != nil || !strings.Contains(fmt.Sprint(a["notes"]), want) {
			t.Errorf("application %d: icon %v, notes %v; want no icon and a note saying %q", id, a["icon"], a["notes"], want)
		}
	}
	if sent := heavySent.Load(); sent > 16<<20 {
		t.Errorf("the marketplace let the repository send %d bytes of a 50 MB icon before it refused it", sent)
	}

	// mpctl apps show.
	cli := buildMpctl(t)
	cli.must(t, "login", "--url", inst.URL, "--token", token)
	out := cli.must(t, "apps", "show", fmt.Sprint(storied))
	for _, want := range []string{iconPath, "4.5.6", "Apache-2.0", "web, hello", "Ada Lovelace <ada@example.com> https://ada.example.com",
		"Support https://support.example.com", "https://git.example.com/storied", "readme"} {
		if !strings.Contains(out, want) {
			t.Errorf("mpctl apps show does not say %q:\n%s", want, out)
		}
	}

	// The page, as a consumer: the README's script is text, never run; the icon loads from here.
	ctx := browserContext(t)
	step := 0
	shot := func(name string) { step++; screenshot(t, ctx, step, name) }
	signInBrowser(t, ctx, inst, token)
	var page struct {
		Title        string   `json:"title"`
		ScriptRan    bool     `json:"scriptRan"`
		ReadmeText   string   `json:"readmeText"`
		IconWidth    int      `json:"iconWidth"`
		IconSrc      string   `json:"iconSrc"`
		Maintainers  string   `json:"maintainers"`
		Links        []string `json:"links"`
		AppVersion   string   `json:"appVersion"`
		Changelog    string   `json:"changelog"`
		Notes        bool     `json:"notes"`
		ForeignLoads []string `json:"foreignLoads"`
	}
	browse(t, ctx, "the application's page",
		chromedp.Navigate(fmt.Sprintf("%s/apps/%d", inst.URL, storied)),
		chromedp.WaitVisible(`[data-testid=readme]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=app-icon]").complete`, nil),
		chromedp.Evaluate(`(() => ({
  title: document.title, scriptRan: window.__readmeScript === true,
  readmeText: document.querySelector("[data-testid=readme]").textContent,
  iconWidth: document.querySelector("[data-testid=app-icon]").naturalWidth,
  iconSrc: document.querySelector("[data-testid=app-icon]").src,
  maintainers: document.querySelector("[data-testid=maintainers]").textContent,
  links: [...document.querySelectorAll("[data-testid=links] a")].map(a => a.textContent + " " + a.href),
  appVersion: document.querySelector("[data-testid=app-version]").textContent,
  changelog: document.querySelector(".versions .changelog").textContent,
  notes: document.querySelector("[data-testid=about-notes]") !== null,
  foreignLoads: performance.getEntriesByType("resource").map(e => e.name).filter(u => !u.startsWith(location.origin)),
}))()`, &page))
	shot("application-page")
	checkAccessibility(t, ctx, "the application's page")
	if page.ScriptRan || page.Title == "pwned" {
		t.Errorf("the README's script ran (title %q)", page.Title)
	}
	if !strings.Contains(page.ReadmeText, "<script>window.__readmeScript = true") {
		t.Errorf("the README's script is not shown as text: %q", page.ReadmeText)
	}
	if page.IconWidth != 64 || page.IconSrc != inst.URL+iconPath {
		t.Errorf("the icon: %s, %d pixels wide; want %s, 64", page.IconSrc, page.IconWidth, inst.URL+iconPath)
	}
	if len(page.ForeignLoads) > 0 {
		t.Errorf("the page loaded from elsewhere: %q", page.ForeignLoads)
	}
	if !strings.Contains(page.Maintainers, "Ada Lovelace") || page.AppVersion != "4.5.6" ||
		!strings.Contains(page.Changelog, "A greeting page") || page.Notes {
		t.Errorf("page: %+v", page)
	}
	wantLinks := []string{"Home page https://storied.example.com/", "Source: https://git.example.com/storied https://git.example.com/storied", "Support https://support.example.com/"}
	if fmt.Sprint(page.Links) != fmt.Sprint(wantLinks) {
		t.Errorf("links %q, want %q", page.Links, wantLinks)
	}

	// The publisher's page of the SVG one says why its icon was refused.
	pubCtx := browserContext(t)
	signInBrowser(t, pubCtx, inst, pub)
	var notes string
	browse(t, pubCtx, "the refused icon's note",
		chromedp.Navigate(fmt.Sprintf("%s/apps/%d", inst.URL, svg)),
		chromedp.WaitVisible(`[data-testid=about-notes]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid=about-notes]`, &notes, chromedp.ByQuery))
	screenshot(t, pubCtx, 1, "refused-icon")
	checkAccessibility(t, pubCtx, "the page of an application whose icon was refused")
	if !strings.Contains(notes, "icon refused: the icon is not a PNG, JPEG or GIF picture") {
		t.Errorf("the publisher reads %q", notes)
	}
	var icons int
	browse(t, pubCtx, "no icon", chromedp.Evaluate(`document.querySelectorAll("[data-testid=app-icon]").length`, &icons))
	if icons != 0 {
		t.Errorf("the SVG application shows %d icons", icons)
	}
}

// TestVMApplicationIconAndDescription: a vm application's publisher supplies what a chart says about
// itself: its description is its README, rendered from Markdown and sanitised, and its icon an upload,
// re-encoded (an SVG, or anyone but the publisher, refused; a chart's icon is the chart's), kept by the
// versions after it.
func TestVMApplicationIconAndDescription(t *testing.T) {
	inst := startMarketplace(t, "serve", nil)
	_, pub := inst.user(t, "Publisher")
	_, other := inst.user(t, "Other")
	vm := num(t, inst.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{
		"name": "Guest", "description": "# Guest\n\nA **small** guest. <script>alert(1)</script>", "hourly_rate": 0.5,
		"deployment": map[string]any{"type": "vm", "image": "test-guest.qcow2", "cpu": "1", "memory": "256Mi"},
	}).JSON(t)["id"])
	k8s := num(t, inst.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{
		"name": "Chart", "hourly_rate": 0.5, "deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
	}).JSON(t)["id"])
	about := waitForAbout(t, inst, pub, vm)
	if readme := fmt.Sprint(about["readme_html"]); !strings.Contains(readme, "<strong>small</strong>") || !strings.Contains(readme, "&lt;script&gt;") || strings.Contains(readme, "<script") {
		t.Errorf("the vm application's description as its README: %s", readme)
	}

	icon := image.NewPaletted(image.Rect(0, 0, 32, 32), []color.Color{color.White, color.Black})
	var pic bytes.Buffer
	if err := png.Encode(&pic, icon); err != nil {
		t.Fatal(err)
	}
	put := func(id int64, token string, picture []byte) response {
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/api/apps/%d/icon", inst.URL, id), bytes.NewReader(picture))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "image/png")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return response{Status: resp.StatusCode, Body: b.Bytes()}
	}
	svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
	for _, c := range []struct {
		what    string
		id      int64
		token   string
		picture []byte
		status  int
		says    string
	}{
		{"an SVG", vm, pub, svg, 422, "not a PNG, JPEG or GIF picture"},
		{"a chart's", k8s, pub, pic.Bytes(), 422, "its icon is its chart's"},
		{"another user's", vm, other, pic.Bytes(), 404, "not found"},
	} {
		if r := put(c.id, c.token, c.picture); r.Status != c.status || !strings.Contains(string(r.Body), c.says) {
			t.Errorf("%s icon: %d %s, want %d saying %q", c.what, r.Status, r.Body, c.status, c.says)
		}
	}
	r := put(vm, pub, pic.Bytes())
	if r.Status != 200 {
		t.Fatalf("the publisher's icon: %d %s", r.Status, r.Body)
	}
	path := r.JSON(t)["icon"].(string)
	inst.must(t, 201, "POST", fmt.Sprintf("/api/apps/%d/versions", vm), pub, map[string]any{"hourly_rate": 0.6,
		"deployment": map[string]any{"type": "vm", "image": "test-guest.qcow2", "cpu": "1", "memory": "512Mi"}})
	waitFor(t, time.Minute, "version 2 to be read with the icon", func() bool {
		app := inst.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d", vm), other, nil).JSON(t)
		a, _ := app["about"].(map[string]any)
		return fmt.Sprint(app["version"]) == "2" && a != nil && a["icon"] == path && a["readme_html"] != nil
	})
	if r := inst.call(t, "GET", path, "", nil); r.Status != 200 || r.ContentType != "image/png" {
		t.Errorf("GET %s: %d %s", path, r.Status, r.ContentType)
	}
}
