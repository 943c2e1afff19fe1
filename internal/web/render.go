package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets/htmx.min.js assets/style.css assets/app.js
var assetFS embed.FS

// views are the pages, each parsed once at start with the layout and partials: a request only executes.
type views struct {
	pages   map[string]*template.Template
	buffers sync.Pool
}

// pageFiles are the page templates; layout.html, partials.html and orgframe.html are shared by all.
var pageFiles = []string{"signin", "catalog", "app", "preview", "deployments", "deployment", "confirm", "bills", "invoices", "invoice", "publisher", "operator", "error",
	"orgs", "org", "members", "orgbills", "orginvoice", "orgapps", "webhooks", "webhook"}

func parseViews() (*views, error) {
	v := &views{pages: map[string]*template.Template{}, buffers: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/orgframe.html")
	if err != nil {
		return nil, fmt.Errorf("parse storefront layout: %w", err)
	}
	for _, name := range pageFiles {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse storefront page %s: %w", name, err)
		}
		v.pages[name] = t
	}
	return v, nil
}

// page is what every page template gets: the layout's needs and the page's own data in Body.
type page struct {
	Title    string
	Caller   marketplace.Caller
	SignedIn bool
	CSRF     string
	Path     string
	Currency string
	Asset    func(string) string
	Body     any
}

// render executes a page into a buffer first, so a template error becomes a 500 rather than half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name, title string, body any) {
	p := page{Title: title, Path: r.URL.Path, Currency: s.Currency, Asset: s.assets.url, Body: body}
	if sess := sessionFrom(r.Context()); sess != nil {
		p.SignedIn, p.CSRF, p.Caller = true, sess.CSRFToken, marketplace.CallerFrom(r.Context())
	}
	s.execute(w, r, status, name, "layout.html", p)
}

// renderPart executes only the page's "fragment" template: the part htmx swaps in.
func (s *server) renderPart(w http.ResponseWriter, r *http.Request, name string, body any) {
	p := page{Path: r.URL.Path, Currency: s.Currency, Asset: s.assets.url, Body: body}
	if sess := sessionFrom(r.Context()); sess != nil {
		p.SignedIn, p.CSRF, p.Caller = true, sess.CSRFToken, marketplace.CallerFrom(r.Context())
	}
	s.execute(w, r, http.StatusOK, name, "fragment", p)
}

func (s *server) execute(w http.ResponseWriter, r *http.Request, status int, name, tmpl string, p page) {
	buf := s.views.buffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer s.views.buffers.Put(buf)
	if err := s.views.pages[name].ExecuteTemplate(buf, tmpl, p); err != nil {
		s.Logger.ErrorContext(r.Context(), "render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.writePage(w, status, buf.Bytes())
}

// writePage answers a page, whole: with its length, in one write.
func (s *server) writePage(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// fail shows a page that says what went wrong and what to do, with the status a program would get.
func (s *server) fail(w http.ResponseWriter, r *http.Request, status int, message string) {
	s.render(w, r, status, "error", http.StatusText(status), message)
}

// domainError shows a domain error with the API's status for its code; internal errors are logged and
// shown only as such.
func (s *server) domainError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		s.serverError(w, r, err)
		return
	}
	s.fail(w, r, status, marketplace.RedactURLs(marketplace.ErrorMessage(err)))
}

func (s *server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.Logger.ErrorContext(r.Context(), "storefront", "path", r.URL.Path, "err", err)
	s.fail(w, r, http.StatusInternalServerError, "Something went wrong on our side. Try again in a moment.")
}

// statusOf is the API's mapping of domain error codes to statuses.
func statusOf(err error) int {
	switch marketplace.ErrorCode(err) {
	case marketplace.EINVALID:
		return http.StatusUnprocessableEntity
	case marketplace.ENOTFOUND:
		return http.StatusNotFound
	case marketplace.EFORBIDDEN:
		return http.StatusForbidden
	case marketplace.ECONFLICT:
		return http.StatusConflict
	case marketplace.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case marketplace.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case marketplace.ETOOMANY:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// asset is one embedded file, served under a name that holds its content hash, so it can be cached
// for good: a new build has new names.
type asset struct {
	name, contentType string
	body, gzipped     []byte
}

type assets struct {
	byURL map[string]*asset
	urls  map[string]string
}

func loadAssets() (*assets, error) {
	a := &assets{byURL: map[string]*asset{}, urls: map[string]string{}}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		name := path.Base(p)
		sum := sha256.Sum256(body)
		ext := path.Ext(name)
		hashed := strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:6]) + ext
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(body)
		zw.Close()
		ct := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}[ext]
		a.byURL[hashed] = &asset{name: name, contentType: ct, body: body, gzipped: gz.Bytes()}
		a.urls[name] = "/assets/" + hashed
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load storefront assets: %w", err)
	}
	return a, nil
}

// url is the content-hashed URL of an embedded asset.
func (a *assets) url(name string) string { return a.urls[name] }

// asset serves an embedded file, compressed when the browser takes gzip, cacheable for a year.
func (s *server) asset(w http.ResponseWriter, r *http.Request) {
	a := s.assets.byURL[chi.URLParam(r, "name")]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Vary", "Accept-Encoding")
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		w.Write(a.gzipped)
		return
	}
	w.Write(a.body)
}
