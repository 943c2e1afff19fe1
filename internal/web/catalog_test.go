package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// catalogStore answers the catalog's statement as the store does, from apps at generation; the rest of
// Store is nil (the catalog calls nothing else but FindSession, for a session that has ended).
type catalogStore struct {
	Store
	mu         sync.Mutex
	session    *marketplace.Session // nil: the session has ended
	apps       []*marketplace.Application
	generation int64
	known      []int64 // the generation each request said it knew
	cats       []marketplace.CategoryCount
	catsRead   int // how many times the categories were read
}

func (c *catalogStore) FindCategories(_ context.Context, limit int) ([]marketplace.CategoryCount, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.catsRead++
	return c.cats[:min(limit, len(c.cats))], nil
}

func (c *catalogStore) FindAppsInSession(_ context.Context, _ []byte, f marketplace.AppFilter, known int64) (*marketplace.CatalogCards, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.known = append(c.known, known)
	if c.session == nil {
		return nil, marketplace.Errorf(marketplace.EUNAUTHORIZED, "the session has ended")
	}
	sess := *c.session
	found := &marketplace.CatalogCards{Session: &sess, Generation: c.generation}
	if known == c.generation {
		found.Unchanged = true
		return found, nil
	}
	found.Total = len(c.apps)
	from := min((f.Page-1)*f.Limit, len(c.apps))
	found.Apps = c.apps[from:min(from+f.Limit, len(c.apps))]
	return found, nil
}

func (c *catalogStore) FindSession(context.Context, []byte) (*marketplace.Session, error) {
	return nil, marketplace.Errorf(marketplace.EUNAUTHORIZED, "the session has ended")
}

func (c *catalogStore) set(apps []*marketplace.Application, generation int64, session *marketplace.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apps, c.generation, c.session = apps, generation, session
}

func (c *catalogStore) knownLast() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.known[len(c.known)-1]
}

func catalogApps(n int, name string) []*marketplace.Application {
	var apps []*marketplace.Application
	for i := 1; i <= n; i++ {
		apps = append(apps, &marketplace.Application{ID: int64(i), PublisherID: 2, Name: name, Description: "Described <em>" + name + "</em> & more",
			HourlyRate: marketplace.MustMoney("0.5"), Deployment: marketplace.DeploymentSpec{Type: marketplace.TypeVM}})
	}
	return apps
}

func sha(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// TestCatalogPageKept: the catalog page is kept while the catalog stays at its generation, and is
// byte for byte the page html/template renders in one execution of the layout with the catalog's
// content in it (as before it was kept); hostile text in the query, the applications and the session is
// escaped; each session gets its own layout; a new generation shows the new catalog at once; an ended
// session gets no page, kept or not.
func TestCatalogPageKept(t *testing.T) {
	hostile := `"'><script>alert(1)</script>&`
	store := &catalogStore{cats: []marketplace.CategoryCount{{Name: "database", Count: 3}, {Name: "web" + hostile, Count: 1}}}
	user := &marketplace.Session{UserID: 5, CSRFToken: "csrf" + hostile}
	store.set(catalogApps(45, "App "+hostile), 7, user)
	h, err := New(Deps{Store: store, HashToken: sha, OperatorToken: "operator-token", API: http.NotFoundHandler(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	get := func(target string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: "s"})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	// The page as one execution of the layout renders it, with the catalog's content inside.
	views, err := parseViews()
	if err != nil {
		t.Fatal(err)
	}
	whole := template.Must(template.Must(views.pages["catalog"].Clone()).Parse(`{{define "content"}}{{template "catalog-body" .Body}}{{end}}`))
	assets, err := loadAssets()
	if err != nil {
		t.Fatal(err)
	}
	want := func(v catalogView, apps []*marketplace.Application, total int, sess *marketplace.Session) string {
		t.Helper()
		s := &server{Deps: Deps{Currency: "USD"}}
		p := page{Title: "Catalog", Path: "/", Currency: "USD", Asset: assets.url, SignedIn: true, CSRF: sess.CSRFToken,
			Caller: callerOf(sess), Body: s.catalogView(v, &marketplace.CatalogCards{Apps: apps, Total: total}, store.cats)}
		var b bytes.Buffer
		if err := whole.ExecuteTemplate(&b, "layout.html", p); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}

	target := "/?q=" + strings.ReplaceAll(hostile, "&", "%26") + "&type=vm&publisher=02&page=2"
	v := catalogView{Query: hostile, Type: "vm", Publisher: "02", Page: 2}
	first := get(target)
	if first.Code != http.StatusOK || store.knownLast() != 0 {
		t.Fatalf("first page: %d, generation %d known", first.Code, store.knownLast())
	}
	if got, w := first.Body.String(), want(v, store.apps[20:40], 45, user); got != w {
		t.Fatalf("the page:\n%s\nwant:\n%s", got, w)
	}
	if b := first.Body.String(); strings.Contains(b, "<script>") || strings.Contains(b, "<em>") || !strings.Contains(b, "publisher 2") {
		t.Fatalf("hostile text not escaped, or cards missing:\n%s", b)
	}
	if first.Header().Get("Content-Length") != strconv.Itoa(first.Body.Len()) || first.Header().Get("Content-Security-Policy") == "" ||
		first.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", first.Header())
	}

	// Kept: the store only checks the session, at the generation of the page kept.
	if again := get(target); again.Code != http.StatusOK || store.knownLast() != 7 || again.Body.String() != first.Body.String() {
		t.Fatalf("page again: %d, generation %d known, same page %v", again.Code, store.knownLast(), again.Body.String() == first.Body.String())
	}
	// Another page at the same generation: the categories read for the first one.
	if w := get("/?category=database&sort=-price&publisherName=" + strings.ReplaceAll(hostile, "&", "%26")); w.Code != http.StatusOK || store.catsRead != 1 ||
		!strings.Contains(w.Body.String(), `<option value="database" selected>database (3)</option>`) ||
		!strings.Contains(w.Body.String(), `<option value="-price" selected>`) || strings.Contains(w.Body.String(), "<script>") {
		t.Fatalf("a browsed page: %d, categories read %d times:\n%s", w.Code, store.catsRead, w.Body.String())
	}
	if w := get("/?sort=cheapest"); w.Code != http.StatusBadRequest && w.Code != http.StatusSeeOther {
		t.Fatalf("a bad order: %d", w.Code)
	}
	// The kept page in the operator's session: the operator's layout.
	operator := &marketplace.Session{OperatorTokenHash: sha("operator-token"), CSRFToken: "operator-csrf"}
	store.set(store.apps, 7, operator)
	if w := get(target); w.Code != http.StatusOK || store.knownLast() != 7 || w.Body.String() != want(v, store.apps[20:40], 45, operator) ||
		!strings.Contains(w.Body.String(), `href="/operator"`) {
		t.Fatalf("operator: %d, generation %d known:\n%s", w.Code, store.knownLast(), w.Body.String())
	}
	// An operator's session opened with another operator token has ended.
	store.set(store.apps, 7, &marketplace.Session{OperatorTokenHash: sha("old-token"), CSRFToken: "operator-csrf"})
	if w := get(target); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/signin") {
		t.Fatalf("an operator session of an old operator token: %d %v", w.Code, w.Header())
	}

	// A new generation: the new catalog at once.
	other := &marketplace.Session{UserID: 6, CSRFToken: "other"}
	store.set(catalogApps(3, "Renamed"), 8, other)
	if w := get("/"); w.Code != http.StatusOK || store.knownLast() != 0 || w.Body.String() != want(catalogView{Page: 1}, store.apps, 3, other) {
		t.Fatalf("page 1: %d, generation %d known:\n%s", w.Code, store.knownLast(), w.Body.String())
	}
	store.set(catalogApps(2, "Fewer"), 9, other)
	if w := get("/"); store.knownLast() != 8 || w.Body.String() != want(catalogView{Page: 1}, store.apps, 2, other) {
		t.Fatalf("after a change, generation %d known:\n%s", store.knownLast(), w.Body.String())
	}

	// An ended session: sent to sign in, whatever is kept.
	store.set(store.apps, 9, nil)
	if w := get("/"); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/signin") || store.knownLast() != 9 {
		t.Fatalf("ended session: %d %v, generation %d known", w.Code, w.Header(), store.knownLast())
	}
}
