// Package kubereq names the requests a Kubernetes client makes as the API server's own
// apiserver_request_total does (a verb and a resource), and counts them on the client's side: what one
// client costs the control plane, without the controllers and other users of the cluster that the API
// server's figures include.
package kubereq

import (
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Name is how the API server counts a request: "VERB resource[/subresource]", such as "create
// namespaces", "get secrets", "list pods", "watch deployments", "update secrets" or "patch
// services". Requests outside the resource API (discovery, the version, OpenAPI documents) are "get"
// and their path, with a group version's discovery as "get /apis/<group>/<version>".
func Name(req *http.Request) string {
	method, u := req.Method, req.URL
	path := strings.Trim(u.Path, "/")
	parts := strings.Split(path, "/")
	// /api/v1/... and /apis/group/version/...
	var rest []string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		rest = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		rest = parts[3:]
	default:
		return strings.ToLower(method) + " /" + path
	}
	// namespaces/<ns>/<resource>/... is a namespaced resource; namespaces, namespaces/<name> and its
	// subresources status and finalize are the namespaces themselves.
	if len(rest) >= 3 && rest[0] == "namespaces" && rest[2] != "status" && rest[2] != "finalize" {
		rest = rest[2:]
	}
	resource, name, sub := rest[0], "", ""
	if len(rest) >= 2 {
		name = rest[1]
	}
	if len(rest) >= 3 {
		sub = rest[2]
	}
	verb := ""
	switch method {
	case http.MethodGet, http.MethodHead:
		switch {
		case u.Query().Get("watch") == "true" || u.Query().Get("watch") == "1":
			verb = "watch"
		case name == "":
			verb = "list"
		default:
			verb = "get"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
		if strings.HasPrefix(req.Header.Get("Content-Type"), "application/apply-patch") {
			verb = "apply" // server-side apply
		}
	case http.MethodDelete:
		verb = "delete"
		if name == "" {
			verb = "deletecollection"
		}
	default:
		verb = strings.ToLower(method)
	}
	if sub != "" {
		resource += "/" + sub
	}
	return verb + " " + resource
}

// Transport passes every request to next and calls count with its Name first.
func Transport(next http.RoundTripper, count func(name string)) http.RoundTripper {
	return roundTripper{next: next, count: count}
}

type roundTripper struct {
	next  http.RoundTripper
	count func(string)
}

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	t.count(Name(req))
	return t.next.RoundTrip(req)
}

// Counts are requests by Name.
type Counts map[string]float64

// Total is the number of requests.
func (c Counts) Total() float64 {
	var n float64
	for _, v := range c {
		n += v
	}
	return n
}

// Minus returns c - before, keeping what grew.
func (c Counts) Minus(before Counts) Counts {
	out := Counts{}
	for k, v := range c {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// Add adds other to c.
func (c Counts) Add(other Counts) {
	for k, v := range other {
		c[k] += v
	}
}

// Names are c's names, the most frequent first.
func (c Counts) Names() []string {
	names := make([]string, 0, len(c))
	for k := range c {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		if c[a] != c[b] {
			if c[a] > c[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return names
}

// Counter counts requests by Name; safe for concurrent use.
type Counter struct {
	mu     sync.Mutex
	counts Counts
}

// Wrap is a rest.Config WrapTransport function.
func (c *Counter) Wrap(next http.RoundTripper) http.RoundTripper {
	return Transport(next, c.add)
}

func (c *Counter) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = Counts{}
	}
	c.counts[name]++
}

// Counts returns a copy of the counts so far.
func (c *Counter) Counts() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(Counts, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}
