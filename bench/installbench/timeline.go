package main

// The timeline of each marketplace operation of a burst, from the client's clock and the worker's log
// (-serve-log): requested → claimed by a worker → provider done → recorded → seen by the client. Where a
// stage is long, that is where an install waited.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"time"
)

// logLine is what the timeline reads of one line of the marketplace's JSON log.
type logLine struct {
	Time       time.Time     `json:"time"`
	Msg        string        `json:"msg"`
	Deployment int64         `json:"deployment"`
	Op         string        `json:"op"`
	Attempt    int           `json:"attempt"`
	Took       time.Duration `json:"took"`
	Provider   time.Duration `json:"provider"`
	Err        string        `json:"err"`
}

// attemptKey names one attempt of one operation of one deployment.
type attemptKey struct {
	id      int64
	op      string
	attempt int
}

type workerLog struct {
	started map[attemptKey]time.Time
	done    map[attemptKey]logLine
	failed  map[attemptKey]string
}

func readWorkerLog(path string) (*workerLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	wl := &workerLog{started: map[attemptKey]time.Time{}, done: map[attemptKey]logLine{}, failed: map[attemptKey]string{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Deployment == 0 {
			continue
		}
		k := attemptKey{l.Deployment, l.Op, l.Attempt}
		switch l.Msg {
		case "attempt started":
			wl.started[k] = l.Time
		case "done":
			wl.done[k] = l
		case "attempt failed":
			wl.failed[k] = l.Err
		}
	}
	return wl, sc.Err()
}

// reportTimeline prints, per marketplace burst, the distribution of each stage over its deployments.
func reportTimeline(w io.Writer, results []burstResult, logPath string) error {
	wl, err := readWorkerLog(logPath)
	if err != nil {
		return fmt.Errorf("read the worker's log: %w", err)
	}
	fmt.Fprintln(w, "\ntimeline of each marketplace operation (client clock and worker log), ms: p50 / p90 / max")
	fmt.Fprintln(w, "\n| burst | requested → claimed | claimed → provider done | provider done → recorded | recorded → seen by client | end to end | attempts > 1 | worker slots busy |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		if r.Side != "marketplace" {
			continue
		}
		var queued, provider, record, observe, total []time.Duration
		var retried []int64
		var first, last time.Time
		var busy time.Duration
		for id, requested := range r.Requested {
			// The attempts of this operation: the last one is the one that succeeded.
			var attempts []int
			for k := range wl.started {
				if k.id == id && k.op == r.Op {
					attempts = append(attempts, k.attempt)
				}
			}
			if len(attempts) == 0 {
				continue
			}
			slices.Sort(attempts)
			claimed := wl.started[attemptKey{id, r.Op, attempts[0]}]
			done, ok := wl.done[attemptKey{id, r.Op, attempts[len(attempts)-1]}]
			if !ok {
				continue
			}
			if len(attempts) > 1 {
				retried = append(retried, id)
			}
			for _, a := range attempts {
				k := attemptKey{id, r.Op, a}
				end := done.Time
				if d, ok := wl.done[k]; ok {
					end = d.Time
				}
				busy += end.Sub(wl.started[k])
			}
			providerDone := done.Time.Add(-(done.Took - done.Provider))
			queued = append(queued, claimed.Sub(requested))
			provider = append(provider, providerDone.Sub(claimed))
			record = append(record, done.Time.Sub(providerDone))
			observe = append(observe, r.Observed[id].Sub(done.Time))
			total = append(total, r.Observed[id].Sub(requested))
			if first.IsZero() || requested.Before(first) {
				first = requested
			}
			if done.Time.After(last) {
				last = done.Time
			}
		}
		fmt.Fprintf(w, "| %s round %d | %s | %s | %s | %s | %s | %d | %.0f%% of %d × %.0f ms |\n", r.Op, r.Round,
			dist(queued), dist(provider), dist(record), dist(observe), dist(total), len(retried),
			100*float64(busy)/float64(r.Concurrency)/float64(last.Sub(first)), r.Concurrency, ms(last.Sub(first)))
		sort.Slice(retried, func(i, j int) bool { return retried[i] < retried[j] })
		for _, id := range retried {
			for k, reason := range wl.failed {
				if k.id == id && k.op == r.Op {
					fmt.Fprintf(w, "  deployment %d %s attempt %d failed: %.300s\n", id, r.Op, k.attempt, reason)
				}
			}
		}
	}
	return nil
}

func dist(v []time.Duration) string {
	if len(v) == 0 {
		return "-"
	}
	slices.Sort(v)
	return fmt.Sprintf("%.0f / %.0f / %.0f", ms(pct(v, 50)), ms(pct(v, 90)), ms(v[len(v)-1]))
}
