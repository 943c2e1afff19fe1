package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

type probeResult struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

func healthz() func(context.Context, *struct{}) (*body[probeResult], error) {
	return func(context.Context, *struct{}) (*body[probeResult], error) {
		return &body[probeResult]{probeResult{Status: "ok"}}, nil
	}
}

// readyz answers 200 when every dependency answers within a second, 503 naming the ones that do not.
func readyz(deps map[string]Pinger) func(context.Context, *struct{}) (*body[probeResult], error) {
	return func(ctx context.Context, _ *struct{}) (*body[probeResult], error) {
		st, failed := probe(ctx, deps)
		if len(failed) > 0 {
			return nil, huma.NewError(http.StatusServiceUnavailable, "not ready: "+strings.Join(failed, ", "))
		}
		return &body[probeResult]{st}, nil
	}
}

// Readiness is /readyz for a process without the API (a worker): 200 when every dependency answers
// within a second, 503 when one does not, each check's outcome in the body.
func Readiness(deps map[string]Pinger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, failed := probe(r.Context(), deps)
		w.Header().Set("Content-Type", "application/json")
		if len(failed) > 0 {
			st.Status = "not ready: " + strings.Join(failed, ", ")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(st)
	})
}

// probe pings every dependency, a second at most, and returns the outcomes and the names that failed.
func probe(ctx context.Context, deps map[string]Pinger) (probeResult, []string) {
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st := probeResult{Status: "ok", Checks: map[string]string{}}
	var failed []string
	for _, n := range names {
		if err := deps[n].Ping(ctx); err != nil {
			st.Checks[n] = err.Error()
			failed = append(failed, n)
		} else {
			st.Checks[n] = "ok"
		}
	}
	return st, failed
}
