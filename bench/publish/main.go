// Command publish fills a marketplace's catalog as publishers do: POST /api/apps/new, one application
// per request, from several clients at once. Application i (from -from to -from+n-1) is the one
// bench/apps.sh's SQL seed writes as row i: publisher 2 (the second token) when i % 3 == 0, publisher
// 1 otherwise; vm when i is even, k8s when odd; its description ends with one of ten tags (i % 10) and
// one of 500 product codes (sku000..sku499, i % 500). The ids the marketplace gives them follow the
// order the publishes commit in, not i: what a search or a page must answer is read from the database.
//
//	publish -base http://127.0.0.1:3100 -tokens TOKEN1,TOKEN2 -n 10000 -c 8
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marketplace/marketplace/bench/mpapi"
)

var tags = []string{"database", "cache", "queue", "monitoring", "search", "storage", "proxy", "security", "analytics", "builds"}

// app is the body that publishes application i.
func app(i int) map[string]any {
	deployment := map[string]any{"type": "k8s", "repoURL": "http://127.0.0.1:8879", "chartName": "hello-web",
		"chartVersion": "0.1.0", "image": "", "cpu": "", "memory": ""}
	inputs := []any{map[string]any{"name": "replicaCount", "type": "integer", "default": 1}}
	if i%2 == 0 {
		deployment = map[string]any{"type": "vm", "repoURL": "", "chartName": "", "chartVersion": "",
			"image": "debian-12-generic", "cpu": "2", "memory": "2Gi"}
		inputs = []any{}
	}
	return map[string]any{
		"name": fmt.Sprintf("Benchmark app %d", i),
		"description": fmt.Sprintf("Application %d of the catalog benchmark: a small web server with a Deployment and a Service. %s sku%03d",
			i, tags[i%10], i%500),
		"hourly_rate": json.Number(fmt.Sprintf("%.2f", 0.1+float64(i%100)*0.05)),
		"deployment":  deployment,
		"inputs":      inputs,
	}
}

func main() {
	base := flag.String("base", "http://127.0.0.1:3100", "the marketplace's address")
	tokenList := flag.String("tokens", "", "the bearer tokens of publisher 1 and publisher 2, comma-separated")
	n := flag.Int("n", 10000, "how many applications")
	from := flag.Int("from", 1, "the number of the first application")
	clients := flag.Int("c", 8, "clients publishing at once")
	flag.Parse()
	tokens := strings.Split(*tokenList, ",")
	if len(tokens) != 2 || *n < 1 || *clients < 1 {
		fmt.Fprintln(os.Stderr, "publish: want -tokens TOKEN1,TOKEN2, -n ≥ 1 and -c ≥ 1")
		os.Exit(2)
	}
	ctx := context.Background()
	work := make(chan int)
	go func() {
		for i := *from; i < *from+*n; i++ {
			work <- i
		}
		close(work)
	}()
	var done atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One client (and connection) per publisher, as separate publishers' tools would be.
			var c [2]*mpapi.Client
			for k := range c {
				c[k] = mpapi.New(*base)
				c[k].HTTP.Transport = &http.Transport{}
				c[k].Token = tokens[k]
			}
			for i := range work {
				pub := 0
				if i%3 == 0 {
					pub = 1
				}
				if err := c[pub].Do(ctx, 201, "POST", "/api/apps/new", app(i), nil); err != nil {
					failed.CompareAndSwap(nil, fmt.Errorf("application %d: %w", i, err))
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		fmt.Fprintf(os.Stderr, "publish: %d of %d published; first failure: %v\n", done.Load(), *n, err)
		os.Exit(1)
	}
	fmt.Printf("published %d applications through POST /api/apps/new with %d clients in %.1f s (%.0f/s)\n",
		*n, *clients, took.Seconds(), float64(*n)/took.Seconds())
}
