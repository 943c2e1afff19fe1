package main

// How many requests the API server served, by verb and resource, from its own metrics: taken before
// and after each side's burst, the difference over N is the requests one install (or uninstall) costs
// the control plane. Anything else using the cluster meanwhile counts too, so the figure is an upper
// bound on a shared machine.
//
// And how many each side's own clients sent (package kubereq, the same names): the marketplace's from
// its marketplace_kubernetes_requests_total, the direct side's counted by its transport. Those are exact
// per operation, without the controllers' work that follows (the quota controller's status updates,
// the namespace controller's deletion) and without anyone else's.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	k8s "k8s.io/client-go/kubernetes"

	"github.com/marketplace/marketplace/internal/kubereq"
)

// requestCounts is apiserver_request_total summed over codes, by "VERB resource[/subresource]".
type requestCounts map[string]float64

func apiserverRequests(ctx context.Context, cs *k8s.Clientset) (requestCounts, error) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the API server's metrics: %w", err)
	}
	counts := requestCounts{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(line[len("apiserver_request_total{"):end], ",") {
			k, val, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(val, `"`)
		}
		key := labels["verb"] + " " + labels["resource"]
		if labels["subresource"] != "" {
			key += "/" + labels["subresource"]
		}
		counts[key] += v
	}
	return counts, sc.Err()
}

// minus returns c - before, keeping only what grew.
func (c requestCounts) minus(before requestCounts) requestCounts {
	out := requestCounts{}
	for k, v := range c {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// report prints the total per item and the biggest kinds.
func (c requestCounts) report(w io.Writer, what string, n int) {
	var total float64
	keys := make([]string, 0, len(c))
	for k, v := range c {
		total += v
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c[a] != c[b] {
			if c[a] > c[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	var top []string
	for _, k := range keys[:min(len(keys), 12)] {
		top = append(top, fmt.Sprintf("%s %.1f", k, c[k]/float64(n)))
	}
	fmt.Fprintf(w, "API server requests per %s: %.1f (%s)\n", what, total/float64(n), strings.Join(top, ", "))
}

// mpRequests reads the marketplace's own count of its requests to the API server from the /metrics of
// each of its processes (the api and every worker when the roles run apart), summed.
func mpRequests(ctx context.Context, bases []string, token string) (kubereq.Counts, error) {
	sum := kubereq.Counts{}
	for _, base := range bases {
		counts, err := mpProcessRequests(ctx, base, token)
		if err != nil {
			return nil, err
		}
		sum.Add(counts)
	}
	return sum, nil
}

// mpProcessRequests reads one marketplace process's count of its requests to the API server.
func mpProcessRequests(ctx context.Context, base, token string) (kubereq.Counts, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(base, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the metrics of %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("read the metrics of %s: status %d (installbench -metrics-token is its MARKETPLACE_ADMIN_TOKEN)", base, resp.StatusCode)
	}
	const metric = "marketplace_kubernetes_requests_total{"
	counts := kubereq.Counts{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric) {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(line[len(metric):end], ",") {
			k, val, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(val, `"`)
		}
		counts[labels["verb"]+" "+labels["resource"]] += v
	}
	return counts, sc.Err()
}

// reportClientRequests prints, per operation, the requests each side's clients sent: the mean per
// operation by name, as a table, with the total first.
func reportClientRequests(w io.Writer, title string, columns []string, counts []kubereq.Counts, ns []int) {
	all := kubereq.Counts{}
	for _, c := range counts {
		all.Add(c)
	}
	fmt.Fprintf(w, "\n%s (mean per operation):\n\n", title)
	fmt.Fprintf(w, "| request | %s |\n|---|%s\n", strings.Join(columns, " | "), strings.Repeat("---|", len(columns)))
	row := func(name string, value func(kubereq.Counts) float64) {
		cells := make([]string, len(counts))
		for i, c := range counts {
			if ns[i] == 0 {
				cells[i] = "–"
				continue
			}
			if v := value(c) / float64(ns[i]); v != 0 {
				cells[i] = strconv.FormatFloat(v, 'f', 1, 64)
			}
		}
		fmt.Fprintf(w, "| %s | %s |\n", name, strings.Join(cells, " | "))
	}
	row("**total**", kubereq.Counts.Total)
	for _, name := range all.Names() {
		row(name, func(c kubereq.Counts) float64 { return c[name] })
	}
}
