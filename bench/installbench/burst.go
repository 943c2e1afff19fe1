package main

// The burst mode (-burst N): N installs requested at once through the API until every one is installed,
// against N direct Helm SDK installs run -concurrency at a time (the marketplace's WORKER_CONCURRENCY),
// then the same for uninstalls. Each side's namespaces are gone before the other side starts, so the
// namespace controller's clean-up of one side does not run during the other's measurement.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/kube"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/marketplace/marketplace/bench/mpapi"
	"github.com/marketplace/marketplace/internal/kubereq"
)

// burstEnv is what a burst needs of run's set-up.
type burstEnv struct {
	o          options
	mp         *mpapi.Client
	appID      int64
	ch         *chart.Chart
	cs         *k8s.Clientset
	namespaces *[]string // every namespace the run may have created, deleted at the end
	quiet      slog.Handler
}

// burstResult is one side's burst: the makespan and when each item finished, from the burst's start.
type burstResult struct {
	Side        string          `json:"side"`
	Op          string          `json:"op"`
	Round       int             `json:"round"`
	N           int             `json:"n"`
	Concurrency int             `json:"concurrency"`
	Total       time.Duration   `json:"total_ns"`
	Finished    []time.Duration `json:"finished_ns"`
	// Work is the sum of each item's own duration (direct side: one Helm call each), to compare
	// against Concurrency × Total: how busy the slots were.
	Work time.Duration `json:"work_ns,omitempty"`
	// Requested is when each marketplace request was sent, by deployment id, for the timeline.
	Requested map[int64]time.Time `json:"requested,omitempty"`
	// Observed is when the client first saw each deployment at the wanted status.
	Observed map[int64]time.Time `json:"observed,omitempty"`
	// Requests is what the API server served during the burst (apicount.go).
	Requests requestCounts `json:"requests"`
	// ClientRequests is what the side's own clients sent (apicount.go).
	ClientRequests kubereq.Counts `json:"client_requests,omitempty"`
}

func runBursts(ctx context.Context, b *burstEnv) ([]burstResult, error) {
	var results []burstResult
	for round := 0; round < b.o.rounds; round++ {
		sides := []func(context.Context, int) ([]burstResult, error){b.marketplaceBurst, b.helmBurst}
		if round%2 == 1 {
			slices.Reverse(sides)
		}
		for _, side := range sides {
			rs, err := side(ctx, round)
			if err != nil {
				return results, err
			}
			for _, r := range rs {
				fmt.Printf("burst round %d: %-11s %-9s %d at once (concurrency %d): %8.1f ms\n",
					r.Round, r.Side, r.Op, r.N, r.Concurrency, ms(r.Total))
			}
			results = append(results, rs...)
		}
	}
	return results, nil
}

// marketplaceBurst requests N installs at once into one project, waits until all are installed, then
// deletes them all at once and waits until all are uninstalled and their namespaces gone.
func (b *burstEnv) marketplaceBurst(ctx context.Context, round int) ([]burstResult, error) {
	n := b.o.burst
	var p struct {
		ID int64 `json:"id"`
	}
	if err := b.mp.Do(ctx, 201, "POST", "/api/user/project/new", map[string]any{"name": fmt.Sprintf("burst-%d", round)}, &p); err != nil {
		return nil, err
	}
	ids := make([]int64, n)
	install := burstResult{Side: "marketplace", Op: "install", Round: round, N: n, Concurrency: b.o.concurrency,
		Requested: map[int64]time.Time{}}
	var mu sync.Mutex
	before, err := apiserverRequests(ctx, b.cs)
	if err != nil {
		return nil, err
	}
	own, err := mpRequests(ctx, b.o.metricsBases, b.o.metricsToken)
	if err != nil {
		return nil, err
	}
	hook, err := b.startDuring("marketplace", round)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	err = fanOut(n, n, func(i int) error {
		sent := time.Now()
		var q struct {
			DeploymentID int64 `json:"deploymentID"`
		}
		if err := b.mp.Do(ctx, 202, "POST", "/api/deployments/install",
			map[string]any{"application_id": b.appID, "project_id": p.ID}, &q); err != nil {
			return err
		}
		mu.Lock()
		ids[i], install.Requested[q.DeploymentID] = q.DeploymentID, sent
		*b.namespaces = append(*b.namespaces, fmt.Sprintf("%s-deployment-%d", b.o.mpPrefix, q.DeploymentID))
		mu.Unlock()
		return nil
	})
	if err != nil {
		hook.stop()
		return nil, err
	}
	if install.Observed, err = b.waitAll(ctx, ids, "installed"); err != nil {
		hook.stop()
		return nil, err
	}
	if err := hook.stop(); err != nil {
		return nil, err
	}
	install.Total, install.Finished = finished(start, install.Observed)
	if install.Requests, err = b.requestsSince(ctx, before); err != nil {
		return nil, err
	}
	if install.ClientRequests, own, err = b.mpRequestsSince(ctx, own); err != nil {
		return nil, err
	}

	uninstall := burstResult{Side: "marketplace", Op: "uninstall", Round: round, N: n, Concurrency: b.o.concurrency,
		Requested: map[int64]time.Time{}}
	if before, err = apiserverRequests(ctx, b.cs); err != nil {
		return nil, err
	}
	start = time.Now()
	err = fanOut(n, n, func(i int) error {
		sent := time.Now()
		mu.Lock()
		uninstall.Requested[ids[i]] = sent
		mu.Unlock()
		return b.mp.Do(ctx, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", ids[i]), nil, nil)
	})
	if err != nil {
		return nil, err
	}
	if uninstall.Observed, err = b.waitAll(ctx, ids, "uninstalled"); err != nil {
		return nil, err
	}
	uninstall.Total, uninstall.Finished = finished(start, uninstall.Observed)
	if uninstall.Requests, err = b.requestsSince(ctx, before); err != nil {
		return nil, err
	}
	if uninstall.ClientRequests, _, err = b.mpRequestsSince(ctx, own); err != nil {
		return nil, err
	}
	var nss []string
	for _, id := range ids {
		nss = append(nss, fmt.Sprintf("%s-deployment-%d", b.o.mpPrefix, id))
	}
	return []burstResult{install, uninstall}, waitGone(ctx, b.cs, nss)
}

// waitAll polls the caller's deployments (one request for all) until each of ids has status want, and
// returns when the client first saw each so.
func (b *burstEnv) waitAll(ctx context.Context, ids []int64, want string) (map[int64]time.Time, error) {
	pending := map[int64]bool{}
	for _, id := range ids {
		pending[id] = true
	}
	seen := map[int64]time.Time{}
	deadline := time.Now().Add(b.o.timeout)
	for len(pending) > 0 {
		list, err := b.mp.Deployments(ctx)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		for _, d := range list {
			switch {
			case !pending[d.ID]:
			case d.Status == want:
				seen[d.ID] = now
				delete(pending, d.ID)
			case d.Status == "failed":
				return nil, fmt.Errorf("deployment %d failed: %s", d.ID, d.FailureReason)
			}
		}
		if now.After(deadline) {
			return nil, fmt.Errorf("%d deployments not %s after %v", len(pending), want, b.o.timeout)
		}
		time.Sleep(b.o.burstPoll)
	}
	return seen, nil
}

// helmBurst installs the chart N times, concurrency at a time, each into a fresh namespace as a Go
// program using the Helm SDK would (CreateNamespace, the kstatus wait), then uninstalls them the same
// way, each uninstall also deleting its namespace, as the marketplace's does.
func (b *burstEnv) helmBurst(ctx context.Context, round int) ([]burstResult, error) {
	n, c := b.o.burst, b.o.concurrency
	nss := make([]string, n)
	for i := range nss {
		nss[i] = fmt.Sprintf("%s-b%d-%d", b.o.directPrefix, round, i)
		if _, err := b.cs.CoreV1().Namespaces().Get(ctx, nss[i], metav1.GetOptions{}); err == nil {
			return nil, fmt.Errorf("namespace %s exists already; use another prefix", nss[i])
		}
	}
	*b.namespaces = append(*b.namespaces, nss...)
	results := []burstResult{{Side: "helm", Op: "install", Round: round, N: n, Concurrency: c},
		{Side: "helm", Op: "uninstall", Round: round, N: n, Concurrency: c}}
	for k, op := range []func(int, *cli.EnvSettings, *k8s.Clientset) error{
		func(i int, s *cli.EnvSettings, _ *k8s.Clientset) error {
			return b.helmInstall(ctx, s, nss[i], fmt.Sprintf("burst-%d", i))
		},
		func(i int, s *cli.EnvSettings, cs *k8s.Clientset) error {
			return b.helmUninstall(ctx, s, cs, nss[i], fmt.Sprintf("burst-%d", i))
		},
	} {
		r := &results[k]
		done := make([]time.Duration, n)
		var work time.Duration
		var mu sync.Mutex
		before, err := apiserverRequests(ctx, b.cs)
		if err != nil {
			return nil, err
		}
		direct := &kubereq.Counter{}
		directCS, err := clientset(b.o.kubeconfig, direct.Wrap)
		if err != nil {
			return nil, err
		}
		var hook *duringHook
		if k == 0 {
			if hook, err = b.startDuring("helm", round); err != nil {
				return nil, err
			}
		}
		start := time.Now()
		err = fanOut(n, c, func(i int) error {
			s := countedSettings(b.o.kubeconfig, nss[i], direct)
			t := time.Now()
			if err := op(i, s, directCS); err != nil {
				return err
			}
			mu.Lock()
			done[i], work = time.Since(start), work+time.Since(t)
			mu.Unlock()
			return nil
		})
		if herr := hook.stop(); err == nil {
			err = herr
		}
		if err != nil {
			return nil, err
		}
		r.Total, r.Finished, r.Work = slices.Max(done), done, work
		r.ClientRequests = direct.Counts()
		slices.Sort(r.Finished)
		if r.Requests, err = b.requestsSince(ctx, before); err != nil {
			return nil, err
		}
	}
	return results, waitGone(ctx, b.cs, nss)
}

// mpRequestsSince is what the marketplace sent the API server since before, and its count now.
func (b *burstEnv) mpRequestsSince(ctx context.Context, before kubereq.Counts) (kubereq.Counts, kubereq.Counts, error) {
	now, err := mpRequests(ctx, b.o.metricsBases, b.o.metricsToken)
	if err != nil {
		return nil, nil, err
	}
	return now.Minus(before), now, nil
}

// requestsSince is what the API server served since before.
func (b *burstEnv) requestsSince(ctx context.Context, before requestCounts) (requestCounts, error) {
	after, err := apiserverRequests(ctx, b.cs)
	if err != nil {
		return nil, err
	}
	return after.minus(before), nil
}

func (b *burstEnv) helmInstall(ctx context.Context, s *cli.EnvSettings, ns, name string) error {
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(b.quiet))
	if err := cfg.Init(s.RESTClientGetter(), ns, "secret"); err != nil {
		return err
	}
	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace, inst.CreateNamespace = name, ns, true
	inst.WaitStrategy, inst.Timeout = kube.StatusWatcherStrategy, b.o.timeout
	ictx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	if _, err := inst.RunWithContext(ictx, b.ch, map[string]any{}); err != nil {
		return fmt.Errorf("helm install %s into %s: %w", name, ns, err)
	}
	return nil
}

// helmUninstall removes the release, waiting until its resources are gone, then asks for its
// namespace's deletion: what the marketplace's uninstall does before it reports uninstalled.
func (b *burstEnv) helmUninstall(ctx context.Context, s *cli.EnvSettings, cs *k8s.Clientset, ns, name string) error {
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(b.quiet))
	if err := cfg.Init(s.RESTClientGetter(), ns, "secret"); err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.WaitStrategy, un.Timeout = kube.StatusWatcherStrategy, b.o.timeout
	if _, err := un.Run(name); err != nil {
		return fmt.Errorf("helm uninstall %s in %s: %w", name, ns, err)
	}
	return deleteNamespace(ctx, cs, ns)
}

func deleteNamespace(ctx context.Context, cs *k8s.Clientset, ns string) error {
	background := metav1.DeletePropagationBackground
	err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{PropagationPolicy: &background})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	return nil
}

// waitGone waits (unmeasured) until the namespaces are deleted, so their clean-up by the namespace
// controller is over before the next measurement starts.
func waitGone(ctx context.Context, cs *k8s.Clientset, nss []string) error {
	deadline := time.Now().Add(10 * time.Minute)
	for _, ns := range nss {
		for {
			_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			} else if time.Now().After(deadline) {
				return fmt.Errorf("namespace %s still there after 10 minutes", ns)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	return nil
}

// fanOut runs f(0..n-1), at most c at a time, and returns the first error.
func fanOut(n, c int, f func(int) error) error {
	jobs := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range min(n, c) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	return <-errs
}

// finished turns the moments each deployment was seen done into durations from start, sorted, and
// the makespan.
func finished(start time.Time, seen map[int64]time.Time) (time.Duration, []time.Duration) {
	var out []time.Duration
	for _, t := range seen {
		out = append(out, t.Sub(start))
	}
	slices.Sort(out)
	return out[len(out)-1], out
}

// reportBursts prints the makespans and their ratios against TARGETS.md.
func reportBursts(w io.Writer, results []burstResult, o options) {
	fmt.Fprintf(w, "\nburst of %d, direct side %d at a time, %d round(s):\n\n", o.burst, o.concurrency, o.rounds)
	fmt.Fprintln(w, "| operation | round | marketplace total ms | helm SDK total ms | ratio | marketplace p50 / p90 of each ms | helm p50 / p90 ms | target |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for round := 0; round < o.rounds; round++ {
		for _, op := range []string{"install", "uninstall"} {
			var m, h *burstResult
			for i := range results {
				r := &results[i]
				if r.Round == round && r.Op == op {
					if r.Side == "marketplace" {
						m = r
					} else {
						h = r
					}
				}
			}
			if m == nil || h == nil {
				continue
			}
			target := "none"
			if op == "install" {
				target = "≤ 1.3×: yes"
				if float64(m.Total) > 1.3*float64(h.Total) {
					target = "≤ 1.3×: **no**"
				}
			}
			fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %.2f | %.0f / %.0f | %.0f / %.0f | %s |\n", op, round, ms(m.Total), ms(h.Total),
				float64(m.Total)/float64(h.Total), ms(pct(m.Finished, 50)), ms(pct(m.Finished, 90)),
				ms(pct(h.Finished, 50)), ms(pct(h.Finished, 90)), target)
		}
	}
	fmt.Fprintln(w)
	for _, r := range results {
		r.Requests.report(w, fmt.Sprintf("%s %s (round %d)", r.Side, r.Op, r.Round), r.N)
	}
	for round := 0; round < o.rounds; round++ {
		var columns []string
		var counts []kubereq.Counts
		var ns []int
		for _, op := range []string{"install", "uninstall"} {
			for _, side := range []string{"marketplace", "helm"} {
				for _, r := range results {
					if r.Round == round && r.Op == op && r.Side == side {
						columns, counts, ns = append(columns, side+" "+op), append(counts, r.ClientRequests), append(ns, r.N)
					}
				}
			}
		}
		reportClientRequests(w, fmt.Sprintf("burst round %d: API-server requests sent by each side's own clients", round), columns, counts, ns)
	}
	fmt.Fprintln(w)
	for _, r := range results {
		if r.Side == "helm" && r.Total > 0 {
			fmt.Fprintf(w, "helm %s round %d: its %d slots were busy %.0f%% of the makespan\n", r.Op, r.Round, r.Concurrency,
				100*float64(r.Work)/float64(r.Total)/float64(r.Concurrency))
		}
	}
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, (len(sorted)*p+99)/100-1)]
}
