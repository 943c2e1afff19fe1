// Package apidocs serves the API reference at /docs, rendered on the server from the OpenAPI document
// with html/template. It loads nothing from another host (no CDN script, no web font), so it works on a
// machine without internet; its one stylesheet is embedded in the binary.
package apidocs

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
)

//go:embed assets templates
var files embed.FS

// Handler serves the reference of doc at prefix (such as "/docs", with or without a final slash) and its
// assets under prefix/assets/; it is mounted at prefix and sees whole paths. The page is rendered on the
// first request, once every operation has been registered.
func Handler(prefix string, doc func() *huma.OpenAPI) http.Handler {
	return &handler{doc: doc, prefix: strings.TrimRight(prefix, "/")}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the API reference is read with GET", http.StatusMethodNotAllowed)
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, h.prefix)
	switch {
	case rest == "" || rest == "/":
		h.page(w, r)
	case strings.HasPrefix(rest, "/assets/"):
		w.Header().Set("Cache-Control", "public, max-age=86400") // assets change only with the binary
		http.ServeFileFS(w, r, files, "assets/"+strings.TrimPrefix(rest, "/assets/"))
	default:
		http.NotFound(w, r)
	}
}

type handler struct {
	doc    func() *huma.OpenAPI
	prefix string
	once   sync.Once
	html   []byte
	etag   string
	err    error
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	h.once.Do(func() {
		var buf bytes.Buffer
		tpl, err := template.ParseFS(files, "templates/docs.html")
		if err == nil {
			err = tpl.Execute(&buf, newReference(h.prefix, h.doc()))
		}
		sum := sha256.Sum256(buf.Bytes())
		h.html, h.etag, h.err = buf.Bytes(), `"`+hex.EncodeToString(sum[:8])+`"`, err
	})
	if h.err != nil {
		http.Error(w, "the API reference could not be rendered: "+h.err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'none'; img-src 'self' data:")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", h.etag)
	if r.Header.Get("If-None-Match") == h.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(h.html)
}

// reference is what the template shows: the operations grouped by the first segment of their path, then
// the schemas they refer to.
type reference struct {
	Prefix                      string // where the reference is served: its assets are under Prefix/assets
	Title, Version, Description string
	Groups                      []group
	Schemas                     []schemaView
}

type group struct {
	Name       string
	Operations []operation
}

type operation struct {
	ID, Method, Path, Summary, Description string
	Secured                                bool
	Params                                 []field
	Body                                   template.HTML
	Responses                              []response
}

type response struct {
	Status, Description string
	Schema              template.HTML
}

type field struct {
	Name, In, Description string
	Type                  template.HTML
	Required              bool
	Constraints           string
}

type schemaView struct {
	Name, Description string
	Fields            []field
	Type              template.HTML
}

func newReference(prefix string, doc *huma.OpenAPI) reference {
	ref := reference{Prefix: prefix}
	if doc.Info != nil {
		ref.Title, ref.Version, ref.Description = doc.Info.Title, doc.Info.Version, doc.Info.Description
	}
	groups := map[string]*group{}
	paths := make([]string, 0, len(doc.Paths))
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		item := doc.Paths[p]
		for _, m := range []struct {
			method string
			op     *huma.Operation
		}{{"GET", item.Get}, {"POST", item.Post}, {"PUT", item.Put}, {"PATCH", item.Patch}, {"DELETE", item.Delete}} {
			if m.op == nil {
				continue
			}
			name := groupOf(p)
			g := groups[name]
			if g == nil {
				g = &group{Name: name}
				groups[name] = g
			}
			g.Operations = append(g.Operations, newOperation(m.method, p, m.op))
		}
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ref.Groups = append(ref.Groups, *groups[n])
	}
	if doc.Components != nil && doc.Components.Schemas != nil {
		all := doc.Components.Schemas.Map()
		snames := make([]string, 0, len(all))
		for n := range all {
			snames = append(snames, n)
		}
		sort.Strings(snames)
		for _, n := range snames {
			ref.Schemas = append(ref.Schemas, newSchemaView(n, all[n]))
		}
	}
	return ref
}

// groupOf is the resource a path is about: /api/apps/{id} → apps.
func groupOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) > 1 && parts[0] == "api" {
		return parts[1]
	}
	return "service"
}

func newOperation(method, path string, op *huma.Operation) operation {
	o := operation{ID: op.OperationID, Method: method, Path: path, Summary: op.Summary, Description: op.Description,
		Secured: len(op.Security) > 0}
	for _, p := range op.Parameters {
		if p == nil {
			continue
		}
		o.Params = append(o.Params, field{Name: p.Name, In: p.In, Description: p.Description, Required: p.Required,
			Type: typeOf(p.Schema), Constraints: constraints(p.Schema)})
	}
	if op.RequestBody != nil {
		for _, mt := range op.RequestBody.Content {
			o.Body = typeOf(mt.Schema)
			break
		}
	}
	statuses := make([]string, 0, len(op.Responses))
	for s := range op.Responses {
		statuses = append(statuses, s)
	}
	sort.Strings(statuses)
	for _, s := range statuses {
		r := op.Responses[s]
		rv := response{Status: s, Description: r.Description}
		for _, mt := range r.Content {
			rv.Schema = typeOf(mt.Schema)
			break
		}
		o.Responses = append(o.Responses, rv)
	}
	return o
}

func newSchemaView(name string, s *huma.Schema) schemaView {
	v := schemaView{Name: name, Description: s.Description, Type: typeOf(s)}
	props := make([]string, 0, len(s.Properties))
	for p := range s.Properties {
		props = append(props, p)
	}
	sort.Strings(props)
	required := map[string]bool{}
	for _, r := range s.Required {
		required[r] = true
	}
	for _, p := range props {
		ps := s.Properties[p]
		v.Fields = append(v.Fields, field{Name: p, Type: typeOf(ps), Required: required[p], Description: ps.Description,
			Constraints: constraints(ps)})
	}
	return v
}

// typeOf writes a schema's type, with a link to a named schema.
func typeOf(s *huma.Schema) template.HTML {
	if s == nil {
		return "any"
	}
	if s.Ref != "" {
		name := s.Ref[strings.LastIndex(s.Ref, "/")+1:]
		return template.HTML(fmt.Sprintf(`<a href="#schema-%s">%s</a>`, template.HTMLEscapeString(name), template.HTMLEscapeString(name)))
	}
	switch s.Type {
	case "array":
		return "array of " + typeOf(s.Items)
	case "object":
		if as, ok := s.AdditionalProperties.(*huma.Schema); ok && len(s.Properties) == 0 {
			return "map of " + typeOf(as)
		}
		if len(s.Properties) == 0 {
			return "object"
		}
	}
	t := s.Type
	if t == "" {
		t = "any"
	}
	if s.Format != "" {
		t += " (" + s.Format + ")"
	}
	if s.Nullable {
		t += ", nullable"
	}
	return template.HTML(template.HTMLEscapeString(t))
}

// constraints are the limits a value must keep: enum, bounds, lengths, pattern, default.
func constraints(s *huma.Schema) string {
	if s == nil {
		return ""
	}
	var c []string
	if len(s.Enum) > 0 {
		vals := make([]string, len(s.Enum))
		for i, e := range s.Enum {
			vals[i] = fmt.Sprint(e)
		}
		c = append(c, "one of "+strings.Join(vals, ", "))
	}
	if s.Minimum != nil {
		c = append(c, "≥ "+strconv.FormatFloat(*s.Minimum, 'f', -1, 64))
	}
	if s.Maximum != nil {
		c = append(c, "≤ "+strconv.FormatFloat(*s.Maximum, 'f', -1, 64))
	}
	if s.MinLength != nil {
		c = append(c, fmt.Sprintf("length ≥ %d", *s.MinLength))
	}
	if s.MaxLength != nil {
		c = append(c, fmt.Sprintf("length ≤ %d", *s.MaxLength))
	}
	if s.MaxItems != nil {
		c = append(c, fmt.Sprintf("at most %d items", *s.MaxItems))
	}
	if s.Pattern != "" {
		c = append(c, "matches "+s.Pattern)
	}
	if s.Default != nil {
		c = append(c, fmt.Sprintf("default %v", s.Default))
	}
	return strings.Join(c, "; ")
}
