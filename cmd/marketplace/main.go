// Command marketplace is the whole marketplace in one binary. Its roles:
//
//	marketplace serve      API, workers, reconciler and billing job in one process
//	marketplace api        the HTTP API only (N replicas share one PostgreSQL and one Redis)
//	marketplace worker     install/uninstall workers, the reconciler and the billing job
//	marketplace migrate    apply the schema and exit
//	marketplace chartrepo  serve ./charts as a Helm chart repository (for machines without internet)
//
// `go build -tags apionly` builds the api and migrate roles alone, without Helm, client-go or go-libvirt
// (apionly.go, full.go): what API replicas run.
//
// Configuration comes from the environment; see the README's table.
package main

import (
	"context"
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
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/marketplace/marketplace/internal/billing"
	"github.com/marketplace/marketplace/internal/chartmeta"
	"github.com/marketplace/marketplace/internal/chartsign"
	"github.com/marketplace/marketplace/internal/deploy"
	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/httpapi"
	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
	"github.com/marketplace/marketplace/internal/queue"
	"github.com/marketplace/marketplace/internal/web"
	"github.com/marketplace/marketplace/internal/webhook"
	"github.com/marketplace/marketplace/internal/workerrpc"
)

func main() {
	// The hidden subcommand a worker runs to render a publisher's chart (package render): no
	// configuration, no signals of its own, the request on stdin.
	if code, ok := renderChild(os.Args); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "marketplace:", err)
		os.Exit(1)
	}
}

// Config is the environment the marketplace reads.
type Config struct {
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://localhost:5432/marketplace?sslmode=disable"`
	RedisURL    string `env:"REDIS_URL" envDefault:"redis://localhost:6379/0"`
	Addr        string `env:"MARKETPLACE_ADDR" envDefault:":3000"`
	Kubeconfig  string `env:"KUBECONFIG"`
	AdminToken  string `env:"MARKETPLACE_ADMIN_TOKEN"`
	// RPCSecret signs the calls API replicas make to workers; unset, the database's own secret does.
	RPCSecret         string        `env:"MARKETPLACE_RPC_SECRET"`
	MetricsPublic     bool          `env:"METRICS_PUBLIC" envDefault:"false"`
	SecureCookies     bool          `env:"MARKETPLACE_SECURE_COOKIES" envDefault:"false"`
	UserCreateRate    float64       `env:"USER_CREATE_RATE" envDefault:"30"`
	UserCreateBurst   int           `env:"USER_CREATE_BURST" envDefault:"10"`
	QuotaProjects     int           `env:"QUOTA_PROJECTS_PER_USER" envDefault:"50"`
	QuotaDeployments  int           `env:"QUOTA_DEPLOYMENTS_PER_USER" envDefault:"200"`
	QuotaApps         int           `env:"QUOTA_APPS_PER_USER" envDefault:"100"`
	QuotaVersions     int           `env:"QUOTA_VERSIONS_PER_APP" envDefault:"500"`
	UpgradesPerHour   int           `env:"UPGRADES_PER_HOUR" envDefault:"20"`
	BillingInterval   time.Duration `env:"BILLING_INTERVAL" envDefault:"5m"`
	BillingCurrency   string        `env:"BILLING_CURRENCY" envDefault:"USD"`
	FeePercent        string        `env:"MARKETPLACE_FEE_PERCENT" envDefault:"0"`
	CacheDir          string        `env:"MARKETPLACE_CACHE_DIR"`
	WorkerConcurrency int           `env:"WORKER_CONCURRENCY" envDefault:"8"`
	QueuePoll         time.Duration `env:"QUEUE_POLL_INTERVAL" envDefault:"50ms"`
	Lease             time.Duration `env:"DEPLOY_LEASE" envDefault:"30s"`
	OperationTimeout  time.Duration `env:"DEPLOY_TIMEOUT" envDefault:"5m"`
	MaxAttempts       int           `env:"DEPLOY_MAX_ATTEMPTS" envDefault:"5"`
	RetryBackoff      time.Duration `env:"DEPLOY_RETRY_BACKOFF" envDefault:"5s"`
	ReconcileInterval time.Duration `env:"RECONCILE_INTERVAL" envDefault:"5s"`
	NamespacePrefix   string        `env:"K8S_NAMESPACE_PREFIX" envDefault:"mp"`
	Quota             string        `env:"K8S_QUOTA" envDefault:"pods=50,requests.cpu=4,requests.memory=8Gi,limits.cpu=8,limits.memory=16Gi,persistentvolumeclaims=10,requests.storage=50Gi,services.loadbalancers=2,services.nodeports=0,count/configmaps=200,count/secrets=200,count/services=50,count/jobs.batch=50,count/cronjobs.batch=20"`
	DefaultRequests   string        `env:"K8S_DEFAULT_REQUESTS" envDefault:"cpu=50m,memory=64Mi"`
	DefaultLimits     string        `env:"K8S_DEFAULT_LIMITS" envDefault:"cpu=500m,memory=512Mi"`
	IngressDomain     string        `env:"K8S_INGRESS_DOMAIN"`
	IngressAnnots     []string      `env:"K8S_INGRESS_ANNOTATIONS" envDefault:"cert-manager.io/cluster-issuer,nginx.ingress.kubernetes.io/rewrite-target,nginx.ingress.kubernetes.io/ssl-redirect,nginx.ingress.kubernetes.io/proxy-body-size,nginx.ingress.kubernetes.io/backend-protocol"`
	MaxGracePeriod    int64         `env:"K8S_MAX_GRACE_PERIOD" envDefault:"120"`
	OCIPlainHTTP      bool          `env:"OCI_PLAIN_HTTP" envDefault:"false"`
	RenderTimeout     time.Duration `env:"RENDER_TIMEOUT" envDefault:"20s"`
	RenderMaxBytes    int64         `env:"RENDER_MAX_BYTES" envDefault:"8388608"`
	RenderNice        int           `env:"RENDER_NICE" envDefault:"10"`
	FetchAllow        string        `env:"MARKETPLACE_FETCH_ALLOW"`
	FetchMaxBytes     int64         `env:"MARKETPLACE_FETCH_MAX_BYTES" envDefault:"20971520"`
	ChartsDir         string        `env:"CHARTS_DIR" envDefault:"charts"`
	ChartRepoAddr     string        `env:"CHART_REPO_ADDR" envDefault:"127.0.0.1:8879"`
	LogLevel          slog.Level    `env:"LOG_LEVEL" envDefault:"info"`
	HTTPReadTimeout   time.Duration `env:"HTTP_READ_TIMEOUT" envDefault:"30s"`
	HTTPWriteTimeout  time.Duration `env:"HTTP_WRITE_TIMEOUT" envDefault:"2m"`
	HTTPIdleTimeout   time.Duration `env:"HTTP_IDLE_TIMEOUT" envDefault:"2m"`
	LibvirtURI        string        `env:"LIBVIRT_URI"`
	VMDir             string        `env:"VM_DIR" envDefault:".local/vm"`
	VMNetwork         string        `env:"VM_NETWORK" envDefault:"marketplace"`
	VMBootTimeout     time.Duration `env:"VM_BOOT_TIMEOUT" envDefault:"2m"`
	VMMaxVCPUs        int           `env:"VM_MAX_VCPUS" envDefault:"8"`
	VMMaxMemory       string        `env:"VM_MAX_MEMORY" envDefault:"16Gi"`
	VMImageMaxBytes   int64         `env:"VM_IMAGE_MAX_BYTES" envDefault:"2147483648"`
	VMCPUOvercommit   float64       `env:"VM_CPU_OVERCOMMIT" envDefault:"4"`
	VMMemOvercommit   float64       `env:"VM_MEMORY_OVERCOMMIT" envDefault:"1"`
	VMMaxDisk         string        `env:"VM_MAX_DISK" envDefault:"64Gi"`
	VMImageQuotaBytes int64         `env:"VM_IMAGE_QUOTA_BYTES" envDefault:"21474836480"`
	VMImageMinRate    int64         `env:"VM_IMAGE_MIN_RATE" envDefault:"65536"`
	VMImageRateWindow time.Duration `env:"VM_IMAGE_RATE_WINDOW" envDefault:"20s"`
	VMImageGCInterval time.Duration `env:"VM_IMAGE_GC_INTERVAL" envDefault:"10m"`
	// Webhook deliveries (package webhook): one attempt's bound, attempts, backoff and polling.
	WebhookTimeout      time.Duration `env:"WEBHOOK_TIMEOUT" envDefault:"10s"`
	WebhookMaxAttempts  int           `env:"WEBHOOK_MAX_ATTEMPTS" envDefault:"12"`
	WebhookRetryBackoff time.Duration `env:"WEBHOOK_RETRY_BACKOFF" envDefault:"10s"`
	WebhookMaxBackoff   time.Duration `env:"WEBHOOK_MAX_BACKOFF" envDefault:"1h"`
	WebhookPoll         time.Duration `env:"WEBHOOK_POLL_INTERVAL" envDefault:"1s"`
	// RequireSignedCharts refuses a k8s chart without a verified signature: at publish, and at install
	// and upgrade of a version published unverified (README, Signed charts).
	RequireSignedCharts bool `env:"MARKETPLACE_REQUIRE_SIGNED_CHARTS" envDefault:"false"`
	// Targets (README "Targets"): the key that seals registered clusters' kubeconfigs, the old keys that
	// still open them during a rotation, and how often workers check every target's health.
	SecretKey           string        `env:"MARKETPLACE_SECRET_KEY"`
	OldSecretKeys       []string      `env:"MARKETPLACE_OLD_SECRET_KEYS"`
	TargetCheckInterval time.Duration `env:"TARGET_CHECK_INTERVAL" envDefault:"30s"`
	VMNetworks
	SSO
}

// loadConfig reads Config through getenv.
func loadConfig(getenv func(string) string) (Config, error) {
	var cfg Config
	params, err := env.GetFieldParams(&cfg)
	if err != nil {
		return cfg, err
	}
	environ := map[string]string{}
	for _, p := range params {
		if v := getenv(p.Key); v != "" {
			environ[p.Key] = v
		}
	}
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	if cfg.CacheDir == "" {
		home := getenv("HOME")
		if home == "" {
			home = os.TempDir()
		}
		cfg.CacheDir = filepath.Join(home, ".cache", "marketplace")
	}
	return cfg, nil
}

const usage = `usage: marketplace serve|api|worker|migrate|chartrepo

  serve      API, workers, reconciler and billing job in one process
  api        the HTTP API only
  worker     install/uninstall workers, reconciler and billing job
  migrate    apply the database schema and exit
  chartrepo  serve CHARTS_DIR as a Helm chart repository on CHART_REPO_ADDR`

// apiOnlyRefusal is why the API-only build (apionly.go) runs no other role.
const apiOnlyRefusal = "this build of marketplace (-tags apionly, make build: .local/bin/marketplace-api) runs only the api and migrate roles: run serve, worker and chartrepo from the full build"

// run is the program: everything a test needs to start it in process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	flags.SetOutput(stdout)
	flags.Usage = func() { fmt.Fprintln(stdout, usage) }
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	role := flags.Arg(0)
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel})).With("role", role)

	switch {
	case !slices.Contains([]string{"serve", "api", "worker", "migrate", "chartrepo"}, role):
		return fmt.Errorf("unknown role %q\n%s", role, usage)
	case role == "chartrepo":
		return serveChartRepo(ctx, cfg, log)
	case apiOnly && role != "api" && role != "migrate":
		return fmt.Errorf("role %s: %s", role, apiOnlyRefusal)
	}

	terms, err := billingTerms(cfg)
	if err != nil {
		return err
	}
	sealer, err := secretBox(cfg)
	if err != nil {
		return err
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.WithQuotas(marketplace.Quotas{
		Projects: cfg.QuotaProjects, Deployments: cfg.QuotaDeployments, Apps: cfg.QuotaApps, VersionsPerApp: cfg.QuotaVersions,
		UpgradesPerHour: cfg.UpgradesPerHour}), postgres.WithBillingTerms(terms), postgres.WithSealer(sealer))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	if role == "migrate" {
		log.Info("schema is up to date")
		return nil
	}

	if err := registerDefaultTargets(ctx, cfg, db); err != nil {
		return err
	}
	instance, err := db.InstanceID(ctx)
	if err != nil {
		return err
	}
	owner, err := queue.ClaimDatabase(ctx, cfg.RedisURL, instance, log)
	if err != nil {
		return err
	}
	defer owner.Close()
	queueClient, err := queue.NewClient(cfg.RedisURL, cfg.OperationTimeout+time.Minute)
	if err != nil {
		return err
	}
	defer queueClient.Close()

	// Every publisher's URL is fetched through this guard, which refuses internal addresses, the cluster's
	// API server among them.
	fetchCfg := fetch.Config{Allow: cfg.FetchAllow, MaxBytes: cfg.FetchMaxBytes}
	if cfg.Kubeconfig != "" {
		apiServer, err := kubeconfigServer(cfg.Kubeconfig)
		if err != nil {
			return err
		}
		fetchCfg.Forbid = append(fetchCfg.Forbid, apiServer)
	}
	guard, err := fetch.New(ctx, fetchCfg)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}

	calls := workerrpc.Config{RedisURL: cfg.RedisURL, Instance: instance, Secret: []byte(cfg.RPCSecret)}
	if cfg.RPCSecret == "" {
		if calls.Secret, err = db.WorkerCallSecret(ctx); err != nil {
			return err
		}
	}
	var (
		installers map[string]marketplace.Installer // none in an API replica
		inspectors map[string]marketplace.Inspector
		vmHost     *vmHostRecorder
		local      *localProviders
	)
	if role == "api" {
		// An API replica holds no cluster or VM host credentials: a worker answers its previews, health
		// and console reads (package workerrpc).
		client, err := workerrpc.NewClient(calls)
		if err != nil {
			return err
		}
		defer client.Close()
		inspectors = remoteInspectors(cfg, client, log)
	} else {
		local, err = newLocalProviders(ctx, cfg, instance, guard, log)
		if err != nil {
			return err
		}
		defer local.close()
		installers, inspectors = local.installers, local.inspectors
		if local.vmHost != nil {
			// Recorded before anything is served, so installs are admitted against this host's capacity.
			vmHost = &vmHostRecorder{store: db, host: local.vmHost, log: log}
			if err := vmHost.record(ctx); err != nil {
				return err
			}
		}
	}
	limits, err := vmLimits(cfg)
	if err != nil {
		return err
	}
	queueMetrics, err := queue.NewMetrics(cfg.RedisURL)
	if err != nil {
		return err
	}
	defer queueMetrics.Close()
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), queueMetrics)
	if local != nil {
		metrics.MustRegister(local.metrics...)
	}
	// The two sides of package deploy: a worker runs attempts (the runner), an API replica accepts
	// requests, serve does both, and its requests start on its own runner at once (deploy's local.go).
	var runner, here *deploy.Runner
	if role == "serve" || role == "worker" {
		runner = deploy.NewRunner(db, queueClient, installers, deploy.Config{
			Lease: cfg.Lease, OperationTimeout: cfg.OperationTimeout, MaxAttempts: cfg.MaxAttempts,
			RetryBackoff: cfg.RetryBackoff, ReconcileInterval: cfg.ReconcileInterval, Metrics: metrics, Concurrency: cfg.WorkerConcurrency,
		}, log)
	}
	if role == "serve" {
		here = runner
	}
	// A worker's reconciler requests automatic upgrades through it too, checked as a consumer's are.
	requests := deploy.NewRequests(db, queueClient, inspectors, here, log)
	requests.RequireSignedCharts(cfg.RequireSignedCharts)
	consoles := consoleReader(inspectors)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return owner.Run(ctx) })
	if role == "serve" || role == "api" {
		about := chartmeta.New(chartmeta.Config{Store: db, Inspectors: inspectors, Fetch: guard, Logger: log})
		g.Go(func() error { return about.Run(ctx) })
		store := publishingStore{DB: db, about: about}
		charts := &chartsign.Checker{Store: db, Inspector: inspectors[marketplace.TypeK8s], Require: cfg.RequireSignedCharts}
		sso, err := newSSO(ctx, cfg.SSO, db, log)
		if err != nil {
			return err
		}
		var accessTokens httpapi.AccessTokenVerifier
		var signIn web.SSO
		if sso != nil {
			accessTokens, signIn = sso, sso
		}
		handler := httpapi.NewHandler(httpapi.Deps{
			Store: store, Deployer: requests, OperatorToken: cfg.AdminToken, MetricsPublic: cfg.MetricsPublic, AccessTokens: accessTokens,
			UserCreatePerMinute: cfg.UserCreateRate, UserCreateBurst: cfg.UserCreateBurst,
			Ready:   map[string]httpapi.Pinger{"postgres": db, "redis": queueClient},
			Metrics: metrics, Logger: log, URLs: guard, VMLimits: limits, Consoles: consoles,
			Charts: charts,
		})
		// The storefront answers its own pages at / and hands every other path to the API.
		if handler, err = web.New(web.Deps{Store: store, Deployer: requests, Consoles: consoles, Charts: charts, Queues: queueMetrics, URLs: guard, OperatorToken: cfg.AdminToken,
			HashToken: httpapi.HashToken, API: handler, Currency: cfg.BillingCurrency, SecureCookies: cfg.SecureCookies, Logger: log,
			SSO: signIn, NoTokenSignIn: !cfg.TokenSignIn}); err != nil {
			return err
		}
		g.Go(func() error { return serveHTTP(ctx, cfg, handler, log) })
	}
	if role == "serve" || role == "worker" {
		worker, err := queue.NewServer(queue.ServerConfig{RedisURL: cfg.RedisURL, Concurrency: cfg.WorkerConcurrency,
			PollInterval: cfg.QueuePoll, ShutdownTimeout: 10 * time.Second, Logger: log}, runner)
		if err != nil {
			return err
		}
		g.Go(func() error { return worker.Run(ctx) })
		if role == "serve" {
			// This process's API and worker are one: what the API records starts here at once, in a free
			// slot, without waiting for the worker's next poll of the queue (package deploy, local.go).
			g.Go(func() error { return runner.RunLocal(ctx) })
		}
		// The calls of API replicas, answered with this process's providers.
		answers, err := workerrpc.NewServer(calls, db, inspectors, cfg.WorkerConcurrency, log)
		if err != nil {
			return err
		}
		g.Go(func() error { return answers.Run(ctx) })
		g.Go(func() error { return runner.Reconcile(ctx, requests) })
		if vmHost != nil {
			g.Go(func() error { return vmHost.run(ctx) })
		}
		// Webhook deliveries go out through the fetch guard: a receiver inside the operator's network is
		// refused at every dial unless MARKETPLACE_FETCH_ALLOW allows it.
		sender := webhook.NewSender(db, guard.Transport(), webhook.Config{Timeout: cfg.WebhookTimeout, MaxAttempts: cfg.WebhookMaxAttempts,
			RetryBackoff: cfg.WebhookRetryBackoff, MaxBackoff: cfg.WebhookMaxBackoff, PollInterval: cfg.WebhookPoll,
			Concurrency: cfg.WorkerConcurrency}, log)
		g.Go(func() error { return sender.Run(ctx) })
		job := billing.New(db, cfg.BillingInterval, metrics, log)
		g.Go(func() error { return job.Run(ctx) })
		if check := newTargetChecker(cfg, db, log); check != nil {
			g.Go(func() error {
				if err := check(ctx); err != nil && ctx.Err() == nil {
					log.Warn("could not check the targets", "err", err)
				}
				return every(ctx, cfg.TargetCheckInterval, "could not check the targets", log, check)
			})
		}
		if local.collectImages != nil {
			g.Go(func() error { return collectImages(ctx, cfg.VMImageGCInterval, db, local.collectImages, log) })
		}
	}
	if role == "worker" {
		// A worker has no API; it still answers /metrics, /healthz and /readyz on MARKETPLACE_ADDR.
		mux := http.NewServeMux()
		mux.Handle("/metrics", httpapi.OperatorOnly(cfg.AdminToken, cfg.MetricsPublic, promhttp.HandlerFor(metrics, promhttp.HandlerOpts{})))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
		mux.Handle("/readyz", httpapi.Readiness(map[string]httpapi.Pinger{"postgres": db, "redis": queueClient}))
		g.Go(func() error { return serveHTTP(ctx, cfg, mux, log) })
	}
	// Start-up (the migrations, the OpenAPI document built by reflection, the templates) leaves garbage
	// that the runtime would hand back to the OS only slowly; a long-running process gives it back now.
	debug.FreeOSMemory()
	return g.Wait()
}

// serveHTTP serves handler on cfg.Addr until ctx is done, then lets requests in flight finish. A client
// that trickles its request, never reads its answer or idles holds a connection only for the timeouts;
// the write timeout is above the longest answer (a dry run a worker renders, a VM console).
func serveHTTP(ctx context.Context, cfg Config, handler http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: cfg.HTTPReadTimeout,
		WriteTimeout: cfg.HTTPWriteTimeout, IdleTimeout: cfg.HTTPIdleTimeout}
	log.Info("listening", "addr", ln.Addr().String(), "url", "http://"+strings.Replace(ln.Addr().String(), "[::]", "localhost", 1))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}
