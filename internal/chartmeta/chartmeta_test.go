package chartmeta

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/marketplace"
)

func TestReadmeIsRenderedAndSanitised(t *testing.T) {
	src := "# Hello chart\n\nSome *text* and a [link](https://example.com/docs) and a [bad one](javascript:alert(1)).\n\n" +
		"<script>alert('readme')</script>\n\n" +
		"Inline <img src=x onerror=alert(2)> html, an ![image](https://tracker.example.com/pixel.png) and <a href=\"https://x\" onclick=\"alert(3)\">raw link</a>.\n\n" +
		"| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode <b>here</b>\n```\n"
	got, err := NewMarkdown().Render(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h3>Hello chart</h3>", "<em>text</em>", `<a href="https://example.com/docs" rel="nofollow noreferrer">link</a>`,
		"&lt;script&gt;alert(&#39;readme&#39;)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt;", "<table>", "<td>1</td>",
		"code &lt;b&gt;here&lt;/b&gt;", "image"} {
		if !strings.Contains(got, want) {
			t.Errorf("the README renders without %q:\n%s", want, got)
		}
	}
	for _, banned := range []string{"<script", "<img", "javascript:", "onclick=\"", "tracker.example.com", "<h1"} {
		if strings.Contains(got, banned) {
			t.Errorf("the rendered README has %q:\n%s", banned, got)
		}
	}
}

// picture encodes a w×h picture in format (png or jpeg).
func picture(t *testing.T, w, h int, format string) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		img.Set(x, x%h, color.RGBA{R: 200, A: 255})
	}
	var b bytes.Buffer
	var err error
	if format == "jpeg" {
		err = jpeg.Encode(&b, img, nil)
	} else {
		err = png.Encode(&b, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// iconServer is a publisher's server of icons, on loopback (which the guard is told to allow).
func iconServer(t *testing.T) (*httptest.Server, *fetch.Guard) {
	t.Helper()
	jpg := picture(t, 48, 32, "jpeg")
	mux := http.NewServeMux()
	mux.HandleFunc("/icon.jpg", func(w http.ResponseWriter, _ *http.Request) { w.Write(jpg) })
	mux.HandleFunc("/icon.svg", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Write([]byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`))
	})
	huge := picture(t, 600, 600, "png")
	mux.HandleFunc("/huge.png", func(w http.ResponseWriter, _ *http.Request) { w.Write(huge) })
	// 50 MB, announced, and the same without a length (streamed): both refused.
	mux.HandleFunc("/heavy.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(50<<20))
		streamZeros(w, r, 50<<20)
	})
	mux.HandleFunc("/streamed.png", func(w http.ResponseWriter, r *http.Request) { streamZeros(w, r, 50<<20) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	guard, err := fetch.New(context.Background(), fetch.Config{Allow: srv.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	return srv, guard
}

func streamZeros(w http.ResponseWriter, r *http.Request, n int) {
	chunk := make([]byte, 64<<10)
	for sent := 0; sent < n && r.Context().Err() == nil; sent += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		w.(http.Flusher).Flush()
	}
}

func TestIconsAreReencodedOrRefused(t *testing.T) {
	srv, guard := iconServer(t)
	ctx := context.Background()
	got, err := fetchIcon(ctx, guard, srv.URL+"/icon.jpg")
	if err != nil {
		t.Fatalf("a JPEG icon: %v", err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(got))
	if err != nil || format != "png" || cfg.Width != 48 || cfg.Height != 32 {
		t.Errorf("a JPEG icon is kept as %s %dx%d (%v), want a 48x32 PNG", format, cfg.Width, cfg.Height, err)
	}
	for path, want := range map[string]string{
		"/icon.svg":     "not a PNG, JPEG or GIF picture",
		"/huge.png":     "600×600 pixels",
		"/heavy.png":    "more than the 1048576 bytes",
		"/streamed.png": "more than the 1048576 bytes",
		"/missing.png":  "404 Not Found",
	} {
		if _, err := fetchIcon(ctx, guard, srv.URL+path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("icon %s: %v, want it refused saying %q", path, err, want)
		}
	}
	// Not allowed by the operator: an address inside, refused by the guard.
	strict, err := fetch.New(ctx, fetch.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fetchIcon(ctx, strict, srv.URL+"/icon.jpg"); err == nil || !strings.Contains(err.Error(), fetch.AllowSetting) {
		t.Errorf("an icon on loopback, not allowed: %v, want the guard's refusal", err)
	}
}

func TestDescribeBoundsAndChecks(t *testing.T) {
	info := &marketplace.PackageInfo{
		AppVersion: "2.4.1", Keywords: []string{"web", "  ", strings.Repeat("k", 500)},
		Maintainers: []marketplace.Maintainer{{Name: "Ada", Email: "ada@example.com", URL: "https://ada.example.com"},
			{Name: "Mallory", URL: "javascript:alert(1)"}},
		Home: "https://hello.example.com", Sources: []string{"https://git.example.com/hello", "file:///etc/passwd"},
		Annotations: map[string]string{
			annotationLicense: "Apache-2.0",
			annotationLinks:   "- name: Docs\n  url: https://docs.example.com\n- name: Evil\n  url: javascript:alert(1)\n",
			annotationChanges: "- kind: added\n  description: A greeting page\n- kind: fixed\n  description: The   port\n",
		},
	}
	a, changes := describe(info)
	if a.AppVersion != "2.4.1" || a.License != "Apache-2.0" || a.Home != "https://hello.example.com" {
		t.Errorf("about: %+v", a)
	}
	if len(a.Keywords) != 2 || a.Keywords[0] != "web" || len(a.Keywords[1]) != maxText {
		t.Errorf("keywords %q: want web and one cut to %d bytes", a.Keywords, maxText)
	}
	if len(a.Maintainers) != 2 || a.Maintainers[0].URL != "https://ada.example.com" || a.Maintainers[1].URL != "" {
		t.Errorf("maintainers %+v: Mallory's javascript: URL must go", a.Maintainers)
	}
	if len(a.Sources) != 1 || len(a.Links) != 1 || a.Links[0] != (marketplace.Link{Name: "Docs", URL: "https://docs.example.com"}) {
		t.Errorf("sources %q, links %+v: want only the http(s) ones", a.Sources, a.Links)
	}
	if changes != "- added: A greeting page\n- fixed: The port" {
		t.Errorf("changes %q", changes)
	}
	if len(a.Notes) != 3 {
		t.Errorf("notes %q: want one for Mallory's URL, one for the file: source, one for the javascript: link", a.Notes)
	}
	_, plain := describe(&marketplace.PackageInfo{Annotations: map[string]string{annotationChanges: "- First release\n- Second line\n"}})
	if plain != "- First release\n- Second line" {
		t.Errorf("changes as a list of strings: %q", plain)
	}
}
