// Command installbench measures, in one run on one cluster, installs and uninstalls of the bundled chart
// (charts/hello-web) through a running marketplace against direct Helm v4 SDK installs and uninstalls of
// the same chart: the TARGETS.md rows "install → installed" and "uninstall → uninstalled".
//
// Marketplace side: POST /api/deployments/install, then GET /api/deployments/{id} every 10 ms until the
// status is installed; DELETE /api/deployments/{id}, then poll until uninstalled. Every install goes into
// a fresh project, into a fresh namespace of its own (<prefix>-deployment-<id>).
//
// Direct side: what a Go program using the Helm SDK does: cli.New() settings for the namespace, an
// action.Configuration on the secret driver, action.NewInstall with CreateNamespace and the kstatus
// watcher wait into a fresh namespace, the chart loaded once; action.NewUninstall with the same wait,
// then the deletion of its namespace is asked for, as the marketplace's uninstall does (the release-only
// figure is reported beside it).
//
// With -burst N (burst.go) it measures N installs requested at once instead, against N direct installs
// run -concurrency at a time, with each marketplace install's timeline from the worker's log
// (timeline.go).
//
// The two sides alternate (marketplace first on even iterations, Helm first on odd ones) so drifting
// background load hits both alike. bench/install.sh starts the marketplace and runs this.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/kube"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/marketplace/marketplace/internal/chartrepo"
	"github.com/marketplace/marketplace/internal/kubereq"

	"github.com/marketplace/marketplace/bench/mpapi"
)

type options struct {
	api, kubeconfig, chartsDir, mpPrefix, directPrefix, out string
	repoAddr, metricsToken                                  string
	metricsBases                                            []string // every marketplace process's base URL (-metrics)
	n, warmup                                               int
	mpFlags                                                 bool
	poll, timeout                                           time.Duration
	// burst mode (burst.go)
	burst, concurrency, rounds int
	burstPoll                  time.Duration
	serveLog                   string
	during                     string        // a shell command run beside each install burst (during.go)
	duringLead                 time.Duration // how long the -during command runs before the burst's first request
}

func main() {
	var o options
	flag.StringVar(&o.api, "api", "http://127.0.0.1:3101", "the marketplace's base URL")
	flag.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "the cluster's kubeconfig (the marketplace's too)")
	flag.StringVar(&o.chartsDir, "charts", "charts", "the directory of chart sources (hello-web is used)")
	flag.StringVar(&o.mpPrefix, "mp-prefix", "", "the marketplace's K8S_NAMESPACE_PREFIX, to delete its namespaces at the end")
	flag.StringVar(&o.directPrefix, "direct-prefix", "", "the prefix of the direct installs' namespaces (default <mp-prefix>-direct)")
	flag.StringVar(&o.out, "out", "", "write the measurements as JSON here")
	flag.StringVar(&o.repoAddr, "repo-addr", "127.0.0.1:0", "where to serve the chart repository (the marketplace's MARKETPLACE_FETCH_ALLOW must name it)")
	flag.StringVar(&o.metricsToken, "metrics-token", "", "the marketplace's MARKETPLACE_ADMIN_TOKEN, to read its /metrics (its requests to the API server)")
	metrics := flag.String("metrics", "", "comma-separated base URLs of every marketplace process whose /metrics count its "+
		"requests to the API server, when the roles run apart (default: -api alone, a serve)")
	flag.IntVar(&o.n, "n", 10, "measured installs (and uninstalls) per side")
	flag.IntVar(&o.warmup, "warmup", 1, "unmeasured installs and uninstalls per side first")
	flag.DurationVar(&o.poll, "poll", 10*time.Millisecond, "how often to poll a deployment's status")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound of one install or uninstall")
	flag.BoolVar(&o.mpFlags, "mpflags", false, "diagnosis: add a third side, direct Helm with the Kubernetes client built "+
		"as the marketplace's provider builds it (genericclioptions.NewConfigFlags(true): client-go's default rate limits)")
	flag.IntVar(&o.burst, "burst", 0, "burst mode: this many installs requested at once through the API against as many direct "+
		"Helm SDK installs run -concurrency at a time, then the same for uninstalls (0: the one-at-a-time mode)")
	flag.IntVar(&o.concurrency, "concurrency", 8, "burst mode: the direct side's concurrency, the marketplace's WORKER_CONCURRENCY")
	flag.IntVar(&o.rounds, "rounds", 1, "burst mode: bursts per side, alternating which side goes first")
	flag.DurationVar(&o.burstPoll, "burst-poll", 50*time.Millisecond, "burst mode: how often to list the deployments")
	flag.StringVar(&o.serveLog, "serve-log", "", "the marketplace's JSON log, for the timeline of each install of a burst")
	flag.StringVar(&o.during, "during", "", "burst mode: a bash command started right before each side's install burst and "+
		"interrupted (SIGINT to its process group) once every install is done; BURST_SIDE says which side (during.go)")
	flag.DurationVar(&o.duringLead, "during-lead", 500*time.Millisecond, "burst mode: how long the -during command runs before the burst starts")
	flag.Parse()
	if o.mpPrefix == "" || o.kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "installbench: -mp-prefix and -kubeconfig are required")
		os.Exit(2)
	}
	o.metricsBases = []string{o.api}
	if *metrics != "" {
		o.metricsBases = strings.Split(*metrics, ",")
	}
	if o.directPrefix == "" {
		o.directPrefix = o.mpPrefix + "-direct"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "installbench:", err)
		os.Exit(1)
	}
}

// sample is one measured operation.
type sample struct {
	Side      string        `json:"side"` // marketplace or helm
	Op        string        `json:"op"`   // install or uninstall
	Iteration int           `json:"iteration"`
	Warmup    bool          `json:"warmup"`
	Namespace string        `json:"namespace"`
	Took      time.Duration `json:"took_ns"`
	// Requests are what the side's own clients sent the API server for the operation (package kubereq).
	Requests kubereq.Counts `json:"requests,omitempty"`
}

func run(ctx context.Context, o options) (err error) {
	work, err := os.MkdirTemp("", "installbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// Helm's and client-go's caches in the temp dir, not in ~.
	for k, sub := range map[string]string{"HELM_CONFIG_HOME": "config", "HELM_CACHE_HOME": "cache",
		"HELM_DATA_HOME": "data", "KUBECACHEDIR": "kubecache"} {
		os.Setenv(k, filepath.Join(work, sub))
	}

	// The bundled chart repository, for the marketplace, and the same chart loaded once for Helm.
	repoDir := filepath.Join(work, "repo")
	if err := chartrepo.Build(o.chartsDir, repoDir); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.repoAddr)
	if err != nil {
		return err
	}
	repoSrv := &http.Server{Handler: http.FileServer(http.Dir(repoDir)), ReadHeaderTimeout: 5 * time.Second}
	go repoSrv.Serve(ln)
	defer repoSrv.Close()
	repoURL := "http://" + ln.Addr().String()
	tgzs, _ := filepath.Glob(filepath.Join(repoDir, "hello-web-*.tgz"))
	if len(tgzs) != 1 {
		return fmt.Errorf("want one hello-web package in %s, got %v", repoDir, tgzs)
	}
	ch, err := loader.Load(tgzs[0])
	if err != nil {
		return err
	}

	cs, err := clientset(o.kubeconfig)
	if err != nil {
		return err
	}
	var namespaces []string // every namespace this run may have created, deleted at the end
	defer func() {
		if derr := deleteNamespaces(cs, namespaces); derr != nil && err == nil {
			err = derr
		}
	}()

	// A user who publishes the chart and deploys it.
	mp := mpapi.New(o.api)
	if o.burst > 0 {
		// A burst's requests queue in the API (a thousand at once): each waits as long as the burst may.
		mp.HTTP.Timeout = o.timeout
	}
	var user struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	if err := mp.Do(ctx, 201, "POST", "/api/users/new", map[string]any{"name": "installbench"}, &user); err != nil {
		return err
	}
	mp.Token = user.Token
	var app struct {
		ID int64 `json:"id"`
	}
	if err := mp.Do(ctx, 201, "POST", "/api/apps/new", map[string]any{
		"name": "hello-web (installbench)", "hourly_rate": 0.5,
		"deployment": map[string]any{"type": "k8s", "repoURL": repoURL, "chartName": "hello-web"},
	}, &app); err != nil {
		return err
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil)).Handler()
	if o.burst > 0 {
		b := &burstEnv{o: o, mp: mp, appID: app.ID, ch: ch, cs: cs, namespaces: &namespaces, quiet: quiet}
		results, err := runBursts(ctx, b)
		if err != nil {
			return err
		}
		reportBursts(os.Stdout, results, o)
		if o.serveLog != "" {
			if err := reportTimeline(os.Stdout, results, o.serveLog); err != nil {
				return err
			}
		}
		return writeJSON(o.out, results)
	}

	total := o.warmup + o.n
	type slot struct {
		// marketplace
		projectID, deploymentID int64
		mpNamespace             string
		// helm
		settings    *cli.EnvSettings
		hNamespace  string
		releaseName string
		// helm with the marketplace's client flags
		flags      *genericclioptions.ConfigFlags
		fNamespace string
	}
	slots := make([]slot, total)
	for i := range slots {
		var p struct {
			ID int64 `json:"id"`
		}
		if err := mp.Do(ctx, 201, "POST", "/api/user/project/new", map[string]any{"name": fmt.Sprintf("installbench-%d", i)}, &p); err != nil {
			return err
		}
		slots[i].projectID = p.ID
		slots[i].hNamespace = fmt.Sprintf("%s-%d", o.directPrefix, i)
		slots[i].releaseName = fmt.Sprintf("direct-%d", i)
		namespaces = append(namespaces, slots[i].hNamespace)
		if o.mpFlags {
			slots[i].fNamespace = fmt.Sprintf("%s-flags-%d", o.directPrefix, i)
			namespaces = append(namespaces, slots[i].fNamespace)
		}
	}
	for _, ns := range namespaces {
		if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
			namespaces = nil // not ours: leave it alone
			return fmt.Errorf("namespace %s exists already; use another prefix", ns)
		}
	}

	// The requests each side's clients send: the marketplace counts its own (/metrics), the direct side's
	// Helm and namespace deletion go through direct.
	direct := &kubereq.Counter{}
	directCS, err := clientset(o.kubeconfig, direct.Wrap)
	if err != nil {
		return err
	}
	var requestsBefore kubereq.Counts
	countFrom := func(side string) (err error) {
		if side == "marketplace" {
			requestsBefore, err = mpRequests(ctx, o.metricsBases, o.metricsToken)
		} else {
			requestsBefore = direct.Counts()
		}
		return err
	}
	requestsSince := func(side string) kubereq.Counts {
		if side != "marketplace" {
			return direct.Counts().Minus(requestsBefore)
		}
		now, err := mpRequests(ctx, o.metricsBases, o.metricsToken)
		if err != nil {
			fmt.Fprintln(os.Stderr, "installbench:", err)
			return nil
		}
		return now.Minus(requestsBefore)
	}

	var samples []sample
	record := func(side, op string, i int, ns string, took time.Duration) {
		s := sample{Side: side, Op: op, Iteration: i - o.warmup, Warmup: i < o.warmup, Namespace: ns, Took: took}
		if side == "marketplace" || side == "helm" {
			s.Requests = requestsSince(side)
		}
		samples = append(samples, s)
		tag := ""
		if s.Warmup {
			tag = " (warm-up)"
		}
		fmt.Printf("%-9s %-11s #%-2d %-32s %8.1f ms%s\n", op, side, s.Iteration, ns, ms(took), tag)
	}

	mpInstall := func(i int) error {
		s := &slots[i]
		if err := countFrom("marketplace"); err != nil {
			return err
		}
		start := time.Now()
		var q struct {
			DeploymentID int64 `json:"deploymentID"`
		}
		if err := mp.Do(ctx, 202, "POST", "/api/deployments/install",
			map[string]any{"application_id": app.ID, "project_id": s.projectID}, &q); err != nil {
			return err
		}
		s.deploymentID = q.DeploymentID
		// Each deployment has a namespace of its own, which its uninstall deletes.
		s.mpNamespace = fmt.Sprintf("%s-deployment-%d", o.mpPrefix, q.DeploymentID)
		if _, err := mp.WaitFor(ctx, q.DeploymentID, "installed", o.poll, o.timeout); err != nil {
			return err
		}
		record("marketplace", "install", i, s.mpNamespace, time.Since(start))
		return nil
	}
	mpUninstall := func(i int) error {
		s := &slots[i]
		if err := countFrom("marketplace"); err != nil {
			return err
		}
		start := time.Now()
		if err := mp.Do(ctx, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", s.deploymentID), nil, nil); err != nil {
			return err
		}
		if _, err := mp.WaitFor(ctx, s.deploymentID, "uninstalled", o.poll, o.timeout); err != nil {
			return err
		}
		record("marketplace", "uninstall", i, s.mpNamespace, time.Since(start))
		return nil
	}
	// directInstall and directUninstall are the Helm SDK calls; getter is the Kubernetes client's flags.
	directInstall := func(side string, i int, getter genericclioptions.RESTClientGetter, ns string, start time.Time) error {
		cfg := action.NewConfiguration(action.ConfigurationSetLogger(quiet))
		if err := cfg.Init(getter, ns, "secret"); err != nil {
			return err
		}
		inst := action.NewInstall(cfg)
		inst.ReleaseName = slots[i].releaseName
		inst.Namespace = ns
		inst.CreateNamespace = true
		inst.WaitStrategy = kube.StatusWatcherStrategy
		inst.Timeout = o.timeout
		ictx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		if _, err := inst.RunWithContext(ictx, ch, map[string]any{}); err != nil {
			return fmt.Errorf("helm install %s into %s: %w", inst.ReleaseName, ns, err)
		}
		record(side, "install", i, ns, time.Since(start))
		return nil
	}
	directUninstall := func(side string, i int, getter genericclioptions.RESTClientGetter, ns string) error {
		start := time.Now()
		cfg := action.NewConfiguration(action.ConfigurationSetLogger(quiet))
		if err := cfg.Init(getter, ns, "secret"); err != nil {
			return err
		}
		un := action.NewUninstall(cfg)
		un.WaitStrategy = kube.StatusWatcherStrategy
		un.Timeout = o.timeout
		if _, err := un.Run(slots[i].releaseName); err != nil {
			return fmt.Errorf("helm uninstall %s in %s: %w", slots[i].releaseName, ns, err)
		}
		record(side, "uninstall-release", i, ns, time.Since(start))
		// The marketplace's uninstall also deletes the deployment's namespace (and so stops whatever
		// the release left behind): the direct side asks for the same, and the namespace controller's
		// clean-up then weighs on both sides alike.
		delCS := cs
		if side == "helm" {
			delCS = directCS
		}
		if err := deleteNamespace(ctx, delCS, ns); err != nil {
			return err
		}
		record(side, "uninstall", i, ns, time.Since(start))
		return nil
	}
	helmInstall := func(i int) error {
		s := &slots[i]
		if err := countFrom("helm"); err != nil {
			return err
		}
		start := time.Now()
		s.settings = countedSettings(o.kubeconfig, s.hNamespace, direct)
		return directInstall("helm", i, s.settings.RESTClientGetter(), s.hNamespace, start)
	}
	helmUninstall := func(i int) error {
		if err := countFrom("helm"); err != nil {
			return err
		}
		return directUninstall("helm", i, slots[i].settings.RESTClientGetter(), slots[i].hNamespace)
	}
	flagsCache := filepath.Join(work, "flagscache")
	flagsInstall := func(i int) error {
		s := &slots[i]
		start := time.Now()
		s.flags = genericclioptions.NewConfigFlags(true)
		s.flags.KubeConfig, s.flags.Namespace, s.flags.CacheDir = &o.kubeconfig, &s.fNamespace, &flagsCache
		return directInstall("helm-mpflags", i, s.flags, s.fNamespace, start)
	}
	flagsUninstall := func(i int) error {
		return directUninstall("helm-mpflags", i, slots[i].flags, slots[i].fNamespace)
	}

	// Installs, alternating which side goes first, then uninstalls the same way.
	phases := [][]func(int) error{{mpInstall, helmInstall}, {mpUninstall, helmUninstall}}
	if o.mpFlags {
		phases[0], phases[1] = append(phases[0], flagsInstall), append(phases[1], flagsUninstall)
	}
	for _, sides := range phases {
		for i := 0; i < total; i++ {
			for k := range sides { // rotate which side goes first
				if err := sides[(i+k)%len(sides)](i); err != nil {
					return err
				}
			}
		}
	}

	report(os.Stdout, samples, o)
	return writeJSON(o.out, samples)
}

// writeJSON writes v to path, unless path is empty.
func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	buf, _ := json.MarshalIndent(v, "", "  ")
	return os.WriteFile(path, buf, 0o644)
}

// report prints the medians, the ratios and the verdicts against TARGETS.md.
func report(w io.Writer, samples []sample, o options) {
	fmt.Fprintf(w, "\n%d measured operations per side and kind (after %d warm-up), median:\n\n", o.n, o.warmup)
	fmt.Fprintln(w, "| operation | marketplace median ms | helm SDK median ms | ratio | target: ≤ 1.15 × helm + 100 ms | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, op := range []string{"install", "uninstall"} {
		m := median(samples, "marketplace", op)
		h := median(samples, "helm", op)
		limit := 1.15*h + 100
		met := "yes"
		if m > limit {
			met = fmt.Sprintf("**no** (over by %.0f ms)", m-limit)
		}
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.2f | ≤ %.1f ms | %s |\n", op, m, h, m/h, limit, met)
	}
	if h := median(samples, "helm", "uninstall-release"); h > 0 {
		m := median(samples, "marketplace", "uninstall")
		fmt.Fprintf(w, "\nhelm's uninstall alone (without deleting its namespace): median %.1f ms; marketplace / that = %.2f\n", h, m/h)
	}
	if m, h := median(samples, "marketplace", "uninstall"), median(samples, "helm", "uninstall"); h > 0 {
		met := "met"
		if m > 1.15*h {
			met = "**not met**"
		}
		fmt.Fprintf(w, "\nuninstall ratio %.2f against ≤ 1.15 (issue #19 item 4, the ratio alone): %s\n", m/h, met)
	}
	var columns []string
	var counts []kubereq.Counts
	var ns []int
	for _, c := range [][2]string{{"marketplace", "install"}, {"helm", "install"}, {"marketplace", "uninstall"}, {"helm", "uninstall"},
		{"helm", "uninstall-release"}} {
		sum, n := kubereq.Counts{}, 0
		for _, s := range samples {
			if s.Side == c[0] && s.Op == c[1] && !s.Warmup && s.Requests != nil {
				sum.Add(s.Requests)
				n++
			}
		}
		columns, counts, ns = append(columns, c[0]+" "+c[1]), append(counts, sum), append(ns, n)
	}
	reportClientRequests(w, "API-server requests sent by each side's own clients", columns, counts, ns)
	fmt.Fprintln(w)
	if o.mpFlags {
		for _, op := range []string{"install", "uninstall"} {
			fmt.Fprintf(w, "diagnosis: %s median with the marketplace's client flags %.1f ms (helm's cli flags %.1f ms)\n",
				op, median(samples, "helm-mpflags", op), median(samples, "helm", op))
		}
		fmt.Fprintln(w)
	}
	for _, op := range []string{"install", "uninstall", "uninstall-release"} {
		for _, side := range []string{"marketplace", "helm", "helm-mpflags"} {
			if op == "uninstall-release" && side == "marketplace" {
				continue
			}
			if side == "helm-mpflags" && !o.mpFlags {
				continue
			}
			fmt.Fprintf(w, "%s %s, ms: %s\n", side, op, strings.Join(values(samples, side, op), " "))
		}
	}
}

func values(samples []sample, side, op string) []string {
	var out []string
	for _, s := range samples {
		if s.Side == side && s.Op == op && !s.Warmup {
			out = append(out, fmt.Sprintf("%.0f", ms(s.Took)))
		}
	}
	return out
}

func median(samples []sample, side, op string) float64 {
	var v []float64
	for _, s := range samples {
		if s.Side == side && s.Op == op && !s.Warmup {
			v = append(v, ms(s.Took))
		}
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// clientset is a client of the cluster; wrap, if any, wraps its transport (a request counter).
func clientset(kubeconfig string, wrap ...func(http.RoundTripper) http.RoundTripper) (*k8s.Clientset, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	rc.QPS, rc.Burst = 50, 100
	for _, w := range wrap {
		rc.Wrap(w)
	}
	return k8s.NewForConfig(rc)
}

// countedSettings are Helm's CLI settings for namespace ns, as a Go program using the SDK makes them,
// with every request of its clients counted by c (which changes nothing else of them).
func countedSettings(kubeconfig, ns string, c *kubereq.Counter) *cli.EnvSettings {
	s := cli.New()
	s.KubeConfig = kubeconfig
	s.SetNamespace(ns)
	if flags, ok := s.RESTClientGetter().(*genericclioptions.ConfigFlags); ok {
		helms := flags.WrapConfigFn
		flags.WrapConfigFn = func(rc *rest.Config) *rest.Config {
			if helms != nil {
				rc = helms(rc)
			}
			rc.Wrap(c.Wrap)
			return rc
		}
	}
	return s
}

// deleteNamespaces deletes the namespaces and waits up to 2 minutes for them to go.
func deleteNamespaces(cs *k8s.Clientset, names []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	for _, ns := range names {
		err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete namespace %s: %w", ns, err))
		}
	}
	for _, ns := range names {
		for {
			_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if ctx.Err() != nil {
				errs = append(errs, fmt.Errorf("namespace %s still there after 2 minutes", ns))
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if len(errs) == 0 {
		fmt.Printf("deleted %d namespaces\n", len(names))
	}
	return errors.Join(errs...)
}
