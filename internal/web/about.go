package web

import (
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// aboutView is what an application's page shows of what its latest version says about itself.
type aboutView struct {
	*marketplace.About
	// Readme is the README as sanitised HTML; for a vm application, its Markdown description.
	Readme template.HTML
	// Notes are shown to the application's publisher (and the operator) only: what was refused and why.
	Notes []string
}

// aboutOf returns the view of app's About, nil when it has none (not read yet).
func (s *server) aboutOf(r *http.Request, app *marketplace.Application) *aboutView {
	if app.About == nil {
		return nil
	}
	v := &aboutView{About: app.About, Readme: template.HTML(s.markdown.Sanitize(app.About.ReadmeHTML))}
	if c := marketplace.CallerFrom(r.Context()); c.Operator || c.UserID == app.PublisherID {
		v.Notes = app.About.Notes
	}
	return v
}

// icon answers an icon of the marketplace's own store, /icons/<sha256>.png: a PNG it re-encoded
// itself, named by its content, so it never changes and is cached for a year.
func (s *server) icon(w http.ResponseWriter, r *http.Request) {
	sha, ok := strings.CutSuffix(chi.URLParam(r, "name"), ".png")
	if !ok {
		http.NotFound(w, r)
		return
	}
	// The icon of a public application is anyone's; that of a private one is shown only to those who see
	// it (a session's caller), and kept by no shared cache.
	png, err := s.Store.FindIcon(r.Context(), sha)
	cache := "public"
	if marketplace.ErrorCode(err) == marketplace.ENOTFOUND {
		if sess := s.session(r); sess != nil {
			png, err = s.Store.FindIcon(withSession(r, sess).Context(), sha)
			cache = "private"
		}
	}
	if marketplace.ErrorCode(err) == marketplace.ENOTFOUND {
		http.NotFound(w, r)
		return
	} else if err != nil {
		s.serverError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/png")
	h.Set("Content-Length", strconv.Itoa(len(png)))
	h.Set("Cache-Control", cache+", max-age=31536000, immutable")
	w.Write(png)
}
