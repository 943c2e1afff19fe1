package web

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// catalogPageSize is how many applications a catalog page lists.
const catalogPageSize = 20

type catalogView struct {
	Query, Type, Publisher string
	// Browse is the category, publisher name and order asked for (browse.go).
	marketplace.Browse
	// Categories are the catalog's most listed categories, for the filter (with the one asked for).
	Categories         []marketplace.CategoryCount
	Sorts              []sortOption
	Apps               template.HTML
	Count              int
	Total, Page, Pages int
	PrevURL, NextURL   string
}

// catalog lists a page of the catalog, searched and filtered in the store. It is the busiest page, so
// it is not behind signedIn: the statement that reads the page checks the session too (one round trip,
// as the API's catalog checks its token). Bad input is answered through signedIn, which sends a browser
// without a session to sign in.
//
// What the page shows below its heading depends only on the query and the catalog, and the layout
// around it only on the session: both are kept as html/template rendered them (catalogPages, layouts),
// and a request whose catalog is still at the generation its page was rendered at (the statement reads
// no application then) is answered with the two put together. Every request checks its session in the
// store all the same.
func (s *server) catalog(w http.ResponseWriter, r *http.Request) {
	idHash := sessionIDHash(r)
	fail := func(status int, message string) {
		s.signedIn(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.fail(w, r, status, message) })).ServeHTTP(w, r)
	}
	if idHash == nil {
		fail(http.StatusUnauthorized, "Sign in to see the catalog.")
		return
	}
	q := r.URL.Query()
	v := catalogView{Query: strings.TrimSpace(q.Get("q")), Type: q.Get("type"), Publisher: strings.TrimSpace(q.Get("publisher")), Page: 1}
	browse, err := marketplace.CleanBrowse(marketplace.Browse{Category: q.Get("category"), PublisherName: q.Get("publisherName"), Sort: q.Get("sort")})
	if err != nil {
		fail(http.StatusBadRequest, browseMessage(err))
		return
	}
	v.Browse = browse
	f := marketplace.AppFilter{Query: v.Query, Browse: browse, Limit: catalogPageSize}
	switch v.Type {
	case "", marketplace.TypeK8s, marketplace.TypeVM:
		f.DeploymentType = v.Type
	default:
		fail(http.StatusBadRequest, "Type must be k8s or vm.")
		return
	}
	if v.Publisher != "" {
		id, err := strconv.ParseInt(v.Publisher, 10, 64)
		if err != nil || id < 1 {
			fail(http.StatusBadRequest, "Publisher must be a user id, a whole number from 1.")
			return
		}
		f.PublisherID = id
	}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 1000000 {
			fail(http.StatusBadRequest, "Page must be a whole number from 1.")
			return
		}
		v.Page = n
	}
	if _, err := marketplace.CleanQuery(v.Query); err != nil {
		fail(http.StatusBadRequest, "Search: "+marketplace.ErrorMessage(err)+".")
		return
	}
	f.Page = v.Page
	key := catalogKey{query: v.Query, typ: v.Type, publisher: v.Publisher, browse: v.Browse, page: v.Page}
	have, _ := s.catalogPages.get(key)
	found, err := s.Store.FindAppsInSession(r.Context(), idHash, f, have.generation)
	if marketplace.ErrorCode(err) == marketplace.EUNAUTHORIZED || err == nil && !s.live(found.Session) {
		fail(http.StatusUnauthorized, "Your session has ended: sign in again.")
		return
	} else if err != nil {
		s.domainError(w, r, err)
		return
	}
	body := have.html // kept with a generation (not 0) only, so Unchanged only when there is one
	if !found.Unchanged {
		cats, err := s.categoriesAt(r.Context(), found.Generation)
		if err != nil {
			s.domainError(w, r, err)
			return
		}
		if body, err = s.catalogBody(v, found, cats); err != nil {
			s.Logger.ErrorContext(r.Context(), "render page", "page", "catalog", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		if !found.Personal { // a page with this caller's private applications is its own
			s.catalogPages.put(key, catalogPage{generation: found.Generation, html: body})
		}
	}
	l, err := s.catalogLayout(found.Session)
	if err != nil {
		s.Logger.ErrorContext(r.Context(), "render page", "page", "catalog", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	buf := s.views.buffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer s.views.buffers.Put(buf)
	buf.Grow(len(l.head) + len(body) + len(l.tail))
	buf.Write(l.head)
	buf.Write(body)
	buf.Write(l.tail)
	s.writePage(w, http.StatusOK, buf.Bytes())
}

// catalogKey is what a catalog page's content is rendered from, besides the catalog: the query as the
// page echoes it (the publisher as typed: "01" and "1" are two keys).
type catalogKey struct {
	query, typ, publisher string
	browse                marketplace.Browse
	page                  int
}

// catalogPage is a catalog page's content (catalog-body) rendered from the catalog at generation.
type catalogPage struct {
	generation int64
	html       []byte
}

// catalogView completes v with the page found and the catalog's categories.
func (s *server) catalogView(v catalogView, found *marketplace.CatalogCards, cats []marketplace.CategoryCount) catalogView {
	v.Categories, v.Sorts = withCategory(cats, v.Category), sortOptions
	v.Total = found.Total
	v.Apps, v.Count = appCards(found.Apps, s.Currency), len(found.Apps)
	v.Pages = max(1, (v.Total+catalogPageSize-1)/catalogPageSize)
	link := func(page int) string {
		u := url.Values{}
		for k, val := range map[string]string{"q": v.Query, "type": v.Type, "publisher": v.Publisher,
			"category": v.Category, "publisherName": v.PublisherName, "sort": v.Sort} {
			if val != "" {
				u.Set(k, val)
			}
		}
		u.Set("page", strconv.Itoa(page))
		return "/?" + u.Encode()
	}
	if v.Page > 1 {
		v.PrevURL = link(min(v.Page-1, v.Pages))
	}
	if v.Page < v.Pages {
		v.NextURL = link(v.Page + 1)
	}
	return v
}

// catalogBody renders the content of the page found for v (what the layout shows below the heading).
func (s *server) catalogBody(v catalogView, found *marketplace.CatalogCards, cats []marketplace.CategoryCount) ([]byte, error) {
	v = s.catalogView(v, found, cats)
	var b bytes.Buffer
	b.Grow(v.Count*400 + 2048)
	if err := s.views.pages["catalog"].ExecuteTemplate(&b, "catalog-body", v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// layoutKey is what the catalog page's layout shows of a session.
type layoutKey struct {
	csrf     string
	userID   int64
	operator bool
}

// layout is a page's layout rendered, split where its content goes.
type layout struct{ head, tail []byte }

// catalogLayout is the catalog page's layout for a session, rendered by html/template (the layout of
// render, with the session's CSRF token and caller) the first time that session asks.
func (s *server) catalogLayout(sess *marketplace.Session) (layout, error) {
	caller := callerOf(sess)
	key := layoutKey{csrf: sess.CSRFToken, userID: caller.UserID, operator: caller.Operator}
	if l, ok := s.layouts.get(key); ok {
		return l, nil
	}
	// The content is a mark no rendering of the session's values can make (they are escaped: no "<"),
	// found once in the page.
	p := page{Title: "Catalog", Path: "/", Currency: s.Currency, Asset: s.assets.url, Body: template.HTML(contentMark),
		SignedIn: true, CSRF: sess.CSRFToken, Caller: caller}
	var b bytes.Buffer
	if err := s.views.pages["catalog"].ExecuteTemplate(&b, "layout.html", p); err != nil {
		return layout{}, err
	}
	head, tail, ok := bytes.Cut(b.Bytes(), []byte(contentMark))
	if !ok || bytes.Contains(tail, []byte(contentMark)) {
		return layout{}, errors.New("the catalog's layout does not show its content once")
	}
	l := layout{head: head, tail: tail}
	s.layouts.put(key, l)
	return l, nil
}

// contentMark stands for a page's content in its layout while it is split (catalogLayout).
const contentMark = "<mp-content></mp-content>"

type appView struct {
	App      *marketplace.Application
	Versions []*marketplace.AppVersion
	// VersionsPager places the versions shown among all of them.
	VersionsPager pager
	Form          installForm
	Projects      []*marketplace.Project
	// About is what its latest version says about itself; nil until it has been read.
	About *aboutView
}

// appPage shows an application: its price, versions and changelogs, and the install form.
func (s *server) appPage(w http.ResponseWriter, r *http.Request) {
	app, ok := s.findApp(w, r)
	if !ok {
		return
	}
	v, err := s.appView(r, app)
	if err != nil {
		s.domainError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "app", app.Name, v)
}

func (s *server) appView(r *http.Request, app *marketplace.Application) (*appView, error) {
	// A page of its versions, newest first: an application may have hundreds.
	versionsPager := pagerOf(r, "versions_page", 20, "versions", "Newer", "Older")
	versions, total, err := s.Store.FindVersions(r.Context(), marketplace.VersionFilter{ApplicationID: app.ID, NewestFirst: true,
		Page: versionsPager.page()})
	if err != nil {
		return nil, err
	}
	if app.About, err = s.Store.FindAbout(r.Context(), app.ID, app.Version); err != nil {
		return nil, err
	}
	shown := *app // credentials of its URLs hidden, as the API shows it
	shown.Deployment = app.Deployment.Redacted()
	v := &appView{App: &shown, Versions: versions, VersionsPager: versionsPager.of(r, "versions_page", total, len(versions)),
		Form: s.installForm(r, app), About: s.aboutOf(r, app)}
	if c := marketplace.CallerFrom(r.Context()); !c.Operator {
		if v.Projects, _, err = s.Store.FindProjectsByUser(r.Context(), c.UserID, marketplace.Page{Number: 1, Limit: 200}); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// findApp reads the application of the path, or answers 404.
func (s *server) findApp(w http.ResponseWriter, r *http.Request) (*marketplace.Application, bool) {
	id, ok := s.pathID(w, r)
	if !ok {
		return nil, false
	}
	app, err := s.Store.FindAppByID(r.Context(), id)
	if err != nil {
		s.domainError(w, r, err)
		return nil, false
	}
	return app, true
}

// pathID is the {id} of the path, a positive integer, or a 404.
func (s *server) pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id < 1 {
		s.fail(w, r, http.StatusNotFound, "There is nothing at this address.")
		return 0, false
	}
	return id, true
}
