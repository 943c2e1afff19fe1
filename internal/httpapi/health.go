package httpapi

import (
	"context"
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
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	return func(ctx context.Context, _ *struct{}) (*body[probeResult], error) {
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
		if len(failed) > 0 {
			return nil, huma.NewError(http.StatusServiceUnavailable, "not ready: "+strings.Join(failed, ", "))
		}
		return &body[probeResult]{st}, nil
	}
}
