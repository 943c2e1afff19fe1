package main

// How many requests the API server served, by verb and resource, from its own metrics: taken before
// and after each side's burst, the difference over N is the requests one install (or uninstall) costs
// the control plane. Anything else using the cluster meanwhile counts too, so the figure is an upper
// bound on a shared machine.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	k8s "k8s.io/client-go/kubernetes"
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
