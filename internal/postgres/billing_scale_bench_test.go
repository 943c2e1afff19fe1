package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/marketplace/marketplace/internal/httpapi"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// BenchmarkBillingAtScale is issue #19 item 6 (TARGETS.md): over 100,000 deployments and 1,000,000
// usage records of one month (loadBillingScale), a page of the statement of a consumer with 10,000 of
// them read through the HTTP API (p99 ≤ 50 ms), then the close of the month (≤ 10 s). The load takes a
// few minutes and is not timed. Run it with
//
//	go test ./internal/postgres -run '^$' -bench BillingAtScale -benchtime 1x -timeout 30m
func BenchmarkBillingAtScale(b *testing.B) {
	benchBillingScale(b, billingScale{deployments: 100_000, recordsPer: 10, consumers: 1_000, bigDeployments: 1_000})
}

func benchBillingScale(b *testing.B, s billingScale) {
	l := loadBillingScale(b, s)
	b.Run("StatementPage", func(b *testing.B) {
		var lat []time.Duration
		for range b.N {
			lat = append(lat, readStatementPages(b, l, 200, s.bigDeployments*s.recordsPer, b.StartTimer, b.StopTimer)...)
		}
		b.ReportMetric(float64(percentile(lat, 50).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(lat, 99).Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(slices.Max(lat).Microseconds())/1000, "max-ms")
	})
	b.Run("ClosePeriod", func(b *testing.B) {
		if b.N > 1 {
			b.Fatal("run with -benchtime 1x: a period closes once")
		}
		ctx := marketplace.OperatorContext(context.Background())
		b.ResetTimer()
		closed, err := l.db.ClosePeriod(ctx, scaleMonth, "bench")
		b.StopTimer()
		if err != nil || closed.Invoices != s.consumers {
			b.Fatalf("closed %+v, %v; want %d invoices", closed, err, s.consumers)
		}
		b.ReportMetric(float64(s.deployments*s.recordsPer), "records")
	})
}

// readStatementPages reads n pages (of 100 lines) of the big consumer's statement of the month through
// the HTTP API, with its own token, every page of the statement in a shuffled order (deep ones as often
// as the first), each about as often; it returns each read's latency, request to last byte, and times
// only the reads (between start and stop).
func readStatementPages(tb testing.TB, l *scaleLoad, n, lines int, start, stop func()) []time.Duration {
	tb.Helper()
	stop()
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Deps{Store: l.db, Metrics: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	defer srv.Close()
	pages := (lines + 99) / 100
	order := make([]int, 0, n)
	rng := rand.New(rand.NewPCG(19, 6))
	for len(order) < n {
		for _, p := range rng.Perm(pages) {
			order = append(order, p+1)
		}
	}
	order = order[:n]
	read := func(page int) (time.Duration, []byte) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/billing/user/%d/statement?from=2025-03-01&to=2025-04-01&page=%d&limit=100",
			srv.URL, l.big, page), nil)
		req.Header.Set("Authorization", "Bearer "+l.bigToken)
		sent := time.Now()
		start()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		stop()
		took := time.Since(sent)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("X-Total-Count") != strconv.Itoa(lines) {
			tb.Fatalf("page %d: %d %s (X-Total-Count %s), %v", page, resp.StatusCode, body, resp.Header.Get("X-Total-Count"), err)
		}
		return took, body
	}
	for p := range 5 { // the connection and the handler's first use, not measured
		read(p + 1)
	}
	lat := make([]time.Duration, 0, n)
	for _, page := range order {
		took, body := read(page)
		lat = append(lat, took)
		var st marketplace.Statement
		if err := json.Unmarshal(body, &st); err != nil || st.LineCount != lines || len(st.Lines) != min(100, lines-(page-1)*100) {
			tb.Fatalf("page %d: %d of %d lines, %v", page, len(st.Lines), st.LineCount, err)
		}
	}
	return lat
}

// percentile is the nearest-rank p-th percentile of d.
func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[max(0, (len(s)*p+99)/100-1)]
}
