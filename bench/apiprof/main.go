// Command apiprof serves the marketplace's HTTP API exactly as `marketplace serve` builds it (same store,
// same handler, same middleware), without the workers, plus net/http/pprof on a second address, so the
// catalog benchmark's load can be profiled:
//
//	go run ./bench/apiprof -db postgres://postgres@127.0.0.1:5432/mp_bench?sslmode=disable &
//	wrk -t2 -c32 -d30s -H 'Authorization: Bearer mpt_bench_publisher_1' 'http://127.0.0.1:3102/api/apps?page=1&limit=20' &
//	go tool pprof -top -seconds 20 http://127.0.0.1:6062/debug/pprof/profile
//
// With -web it serves the storefront in front of the API, as `serve` does (web.New with the API as its
// fallback), so the storefront's catalog `/` can be profiled against the JSON endpoint on one handler
// (bench/storefront.sh seeds a database with a session for it).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/marketplace/marketplace/internal/httpapi"
	"github.com/marketplace/marketplace/internal/postgres"
	"github.com/marketplace/marketplace/internal/web"
)

func main() {
	dbURL := flag.String("db", "postgres://postgres@127.0.0.1:5432/mp_bench?sslmode=disable", "DATABASE_URL")
	addr := flag.String("addr", "127.0.0.1:3102", "API address")
	pprofAddr := flag.String("pprof", "127.0.0.1:6062", "net/http/pprof address")
	storefront := flag.Bool("web", false, "serve the storefront in front of the API, as serve does")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	db, err := postgres.Open(ctx, *dbURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiprof:", err)
		os.Exit(1)
	}
	defer db.Close()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	handler := httpapi.NewHandler(httpapi.Deps{Store: db, Ready: map[string]httpapi.Pinger{"postgres": db},
		Metrics: metrics, Logger: log})
	if *storefront {
		// No deployer: the catalog and the pages that only read need none.
		if handler, err = web.New(web.Deps{Store: db, HashToken: httpapi.HashToken, API: handler, Logger: log}); err != nil {
			fmt.Fprintln(os.Stderr, "apiprof:", err)
			os.Exit(1)
		}
	}
	go http.ListenAndServe(*pprofAddr, nil) // http.DefaultServeMux carries net/http/pprof
	srv := &http.Server{Addr: *addr, Handler: handler}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "apiprof:", err)
		os.Exit(1)
	}
}
