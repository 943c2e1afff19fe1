package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/marketplace/marketplace/internal/cli/apiclient"
)

// session is a command's connection to the marketplace: the generated client with the bearer token.
type session struct {
	api *apiclient.Client
	url string
}

func (o *options) session() (*session, error) {
	url, token, err := o.target()
	if err != nil {
		return nil, err
	}
	return newSession(url, token)
}

// userSession is a session and the user it acts for: user when given (the operator acting for someone),
// else the token's own user.
func (o *options) userSession(ctx context.Context, user int64) (*session, int64, error) {
	s, err := o.session()
	if err != nil {
		return nil, 0, err
	}
	me, err := s.me(ctx, user)
	return s, me, err
}

// deploymentSession is a session and the deployment id a command argument names.
func (o *options) deploymentSession(arg string) (*session, int64, error) {
	id, err := deploymentID(arg)
	if err != nil {
		return nil, 0, err
	}
	s, err := o.session()
	return s, id, err
}

func newSession(url, token string) (*session, error) {
	url = strings.TrimRight(url, "/")
	c, err := apiclient.NewClient(url,
		apiclient.WithHTTPClient(&http.Client{Timeout: 60 * time.Second, CheckRedirect: sameOrigin}),
		apiclient.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			return nil
		}))
	if err != nil {
		return nil, usageError("marketplace URL %q: %v", url, err)
	}
	return &session{api: c, url: url}, nil
}

// sameOrigin follows a redirect only to the scheme, host and port the request went to. Go's client would
// send the Authorization header on to any port of the same host name, and from https to http; the API
// itself never redirects, so a redirect elsewhere is a misconfiguration or someone after the token.
func sameOrigin(req *http.Request, via []*http.Request) error {
	from := via[0].URL
	if req.URL.Scheme != from.Scheme || req.URL.Host != from.Host {
		return fmt.Errorf("%s redirected to %s://%s, which mpctl does not send your token to: if that is the marketplace, log in with that URL",
			from.Scheme+"://"+from.Host, req.URL.Scheme, req.URL.Host)
	}
	if len(via) >= 10 {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	return nil
}

// answer is a successful response: its body, and the length of the whole list for a page of one.
type answer struct {
	body  []byte
	total int
}

// read ends a call: a 2xx answer's body, or the problem+json the server answered as an error with the
// exit code its status means.
func read(resp *http.Response, err error) (answer, error) {
	if err != nil {
		return answer{}, fmt.Errorf("the marketplace did not answer: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: reading the answer: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	if resp.StatusCode >= 300 {
		return answer{}, problemError(resp, b)
	}
	a := answer{body: b, total: -1}
	if n, err := strconv.Atoi(resp.Header.Get("X-Total-Count")); err == nil {
		a.total = n
	}
	return a, nil
}

// decode reads a successful response into v, one of the generated models.
func decode[T any](resp *http.Response, err error) (T, answer, error) {
	var v T
	a, err := read(resp, err)
	if err != nil {
		return v, a, err
	}
	if err := json.Unmarshal(a.body, &v); err != nil {
		return v, a, fmt.Errorf("%s %s: the answer is not what the API document says: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return v, a, nil
}

// problemError is the problem+json of a failed request, as "title: detail", with each invalid field.
func problemError(resp *http.Response, b []byte) error {
	var p apiclient.ErrorModel
	msg := http.StatusText(resp.StatusCode)
	if json.Unmarshal(b, &p) == nil && p.Title != nil {
		msg = *p.Title
		if p.Detail != nil && *p.Detail != "" {
			msg += ": " + *p.Detail
		}
		if p.Errors != nil {
			for _, e := range *p.Errors {
				line := "\n  " + deref(e.Message)
				if e.Location != nil {
					line = "\n  " + *e.Location + ": " + deref(e.Message)
				}
				msg += line
			}
		}
	} else if s := strings.TrimSpace(string(b)); s != "" && len(s) < 500 {
		msg += ": " + s
	}
	code := ExitError
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		code = ExitNotFound
	}
	return &exitError{code: code, err: fmt.Errorf("%s (HTTP %d)", msg, resp.StatusCode)}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func ptr[T any](v T) *T { return &v }

// listAll reads every page of a paginated list (at most 500 items a request), as raw items.
func listAll(fetch func(page, limit int64) (*http.Response, error)) ([]json.RawMessage, error) {
	const limit = 500
	var items []json.RawMessage
	for page := int64(1); ; page++ {
		a, err := read(fetch(page, limit))
		if err != nil {
			return nil, err
		}
		var batch []json.RawMessage
		if err := json.Unmarshal(a.body, &batch); err != nil {
			return nil, fmt.Errorf("a page of the list is not a JSON array: %w", err)
		}
		items = append(items, batch...)
		if len(batch) < limit || (a.total >= 0 && len(items) >= a.total) {
			return items, nil
		}
	}
}

// decodeItems reads raw list items into models.
func decodeItems[T any](raw []json.RawMessage) ([]T, error) {
	out := make([]T, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return nil, fmt.Errorf("item %d of the list is not what the API document says: %w", i+1, err)
		}
	}
	return out, nil
}

// rawList joins items back into one JSON array for -o json and -o yaml.
func rawList(items []json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(it)
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

// me is the caller's user id: a user sees only itself in GET /api/users. The operator sees everyone and
// must say for whom it acts.
func (s *session) me(ctx context.Context, user int64) (int64, error) {
	if user > 0 {
		return user, nil
	}
	users, a, err := decode[[]apiclient.User](s.api.ListUsers(ctx, &apiclient.ListUsersParams{Limit: ptr[int64](2)}))
	if err != nil {
		return 0, err
	}
	if len(users) != 1 || a.total > 1 {
		return 0, usageError("this token sees %d users (the operator's?): say which one with --user ID", max(a.total, len(users)))
	}
	return users[0].Id, nil
}

// parseID reads an id argument; ok is false when it is a name.
func parseID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// app finds an application by id or by exact name in the catalog.
func (s *session) app(ctx context.Context, ref string) (*apiclient.Application, error) {
	if id, ok := parseID(ref); ok {
		a, _, err := decode[apiclient.Application](s.api.GetApp(ctx, id))
		return &a, err
	}
	// The catalog's search finds every application whose name has the words of ref, so only those pages
	// are read; a name without a letter or digit is not searchable and is looked for in the whole catalog.
	var search *string
	if strings.IndexFunc(ref, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0 && len(ref) <= 200 {
		search = &ref
	}
	var found []apiclient.Application
	for page := int64(1); ; page++ {
		p, _, err := decode[apiclient.AppPage](s.api.ListApps(ctx, &apiclient.ListAppsParams{Page: &page, Limit: ptr[int64](100), Q: search}))
		if err != nil {
			return nil, err
		}
		for _, a := range deref(p.Data) {
			if a.Name == ref {
				found = append(found, a)
			}
		}
		if page >= p.TotalPages {
			break
		}
	}
	switch len(found) {
	case 0:
		return nil, withCode(ExitNotFound, "no application named %q in the catalog", ref)
	case 1:
		return &found[0], nil
	default:
		ids := make([]string, len(found))
		for i, a := range found {
			ids[i] = strconv.FormatInt(a.Id, 10)
		}
		return nil, usageError("%d applications are named %q (ids %s): give the id", len(found), ref, strings.Join(ids, ", "))
	}
}

// project finds one of the caller's projects by id or by name.
func (s *session) project(ctx context.Context, ref string, user int64) (int64, error) {
	if id, ok := parseID(ref); ok {
		return id, nil
	}
	me, err := s.me(ctx, user)
	if err != nil {
		return 0, err
	}
	raw, err := listAll(func(page, limit int64) (*http.Response, error) {
		return s.api.ListUserProjects(ctx, me, &apiclient.ListUserProjectsParams{Page: &page, Limit: &limit})
	})
	if err != nil {
		return 0, err
	}
	projects, err := decodeItems[apiclient.Project](raw)
	if err != nil {
		return 0, err
	}
	for _, p := range projects {
		if p.Name == ref {
			return p.Id, nil
		}
	}
	return 0, withCode(ExitNotFound, "no project named %q", ref)
}

// deploymentID reads a deployment's id (deployments have no names).
func deploymentID(ref string) (int64, error) {
	id, ok := parseID(ref)
	if !ok {
		return 0, usageError("%q is not a deployment id", ref)
	}
	return id, nil
}
