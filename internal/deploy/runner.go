package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Config tunes attempts and leases.
type Config struct {
	// Lease is how long a claim holds a deployment without a heartbeat; a crashed worker's deployment is
	// taken over this long after its last heartbeat.
	Lease time.Duration
	// OperationTimeout bounds one attempt of an install or uninstall.
	OperationTimeout time.Duration
	// MaxAttempts is how many attempts an operation gets before the deployment ends failed.
	MaxAttempts int
	// RetryBackoff is the wait after the first failed attempt; it doubles each attempt, up to 5 minutes.
	RetryBackoff time.Duration
	// ReconcileInterval is how often the reconciler re-queues owed work.
	ReconcileInterval time.Duration
	// Metrics, when not nil, receives the attempt counters and durations.
	Metrics prometheus.Registerer
	// Concurrency, when positive, is how many attempts this process runs at once (WORKER_CONCURRENCY),
	// those the queue hands it and those it starts itself (RunLocal) together; 0 for a process without
	// a worker.
	Concurrency int
}

// metrics are what an operator watches: attempts by outcome and how long they take.
type metrics struct {
	attempts *prometheus.CounterVec
	duration *prometheus.HistogramVec
	owed     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marketplace_deploy_attempts_total",
			Help: "Install and uninstall attempts by outcome: done, retry, failed, lost (another attempt took over) or handed_back (worker stopping).",
		}, []string{"op", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "marketplace_deploy_attempt_duration_seconds",
			Help:    "Duration of install and uninstall attempts, provider work included.",
			Buckets: []float64{.25, .5, 1, 2, 5, 10, 30, 60, 120, 300},
		}, []string{"op", "outcome"}),
		owed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "marketplace_deploy_owed_tasks",
			Help: "Tasks the last reconcile pass found owed and not held by a live lease.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.duration, m.owed)
	}
	return m
}

func (m *metrics) observe(op marketplace.Operation, outcome string, start time.Time) {
	m.attempts.WithLabelValues(string(op), outcome).Inc()
	m.duration.WithLabelValues(string(op), outcome).Observe(time.Since(start).Seconds())
}

// Runner runs attempts of installs, upgrades and uninstalls with each type's Installer, and reconciles
// the queue with the database. Its Install, Upgrade and Uninstall methods are the queue's handlers.
type Runner struct {
	store      Store
	queue      marketplace.Enqueuer
	installers map[string]marketplace.Installer
	cfg        Config
	log        *slog.Logger
	metrics    *metrics
	slots      slots // nil without Config.Concurrency (local.go)
	local      local
}

// NewRunner returns the runner side. installers maps a deployment type to its provider's Installer: an
// attempt of a type without one fails, and the clean-up of a failed one is left to a process that has it.
func NewRunner(store Store, queue marketplace.Enqueuer, installers map[string]marketplace.Installer, cfg Config, log *slog.Logger) *Runner {
	s := &Runner{store: store, queue: queue, installers: installers, cfg: cfg, log: log, metrics: newMetrics(cfg.Metrics)}
	if cfg.Concurrency > 0 {
		s.slots = make(slots, cfg.Concurrency)
	}
	return s
}

// Install runs one attempt of a deployment's install. A task that finds nothing to claim (a duplicate, a
// late retry, a deployment deleted meanwhile) does nothing.
func (s *Runner) Install(ctx context.Context, id int64) error {
	return s.queued(ctx, id, marketplace.OpInstall)
}

// Upgrade runs one attempt of a deployment's upgrade (or rollback).
func (s *Runner) Upgrade(ctx context.Context, id int64) error {
	return s.queued(ctx, id, marketplace.OpUpgrade)
}

// Uninstall runs one attempt of a deployment's uninstall.
func (s *Runner) Uninstall(ctx context.Context, id int64) error {
	return s.queued(ctx, id, marketplace.OpUninstall)
}

func (s *Runner) attempt(ctx context.Context, id int64, op marketplace.Operation) error {
	ctx = marketplace.OperatorContext(ctx)
	claim := map[marketplace.Operation]func(context.Context, int64, time.Duration, int) (*marketplace.Deployment, error){
		marketplace.OpInstall: s.store.ClaimInstall, marketplace.OpUninstall: s.store.ClaimUninstall, marketplace.OpUpgrade: s.store.ClaimUpgrade,
	}[op]
	claimed := time.Now() // the lease runs from no later than this
	// A worker whose database stalls must not sit on the task: give up soon, and the reconciler sends it
	// again, to whichever worker takes it.
	claimCtx, cancelClaim := context.WithTimeout(ctx, s.cfg.Lease/3)
	d, err := claim(claimCtx, id, s.cfg.Lease, s.cfg.MaxAttempts)
	cancelClaim()
	if err != nil {
		return err
	} else if d == nil {
		return nil
	}
	attempt := d.Attempts
	log := s.log.With("deployment", id, "op", op, "attempt", attempt)
	start := time.Now()
	log.Info("attempt started")

	// leaseCtx ends when the lease can no longer be vouched for; the provider's work and the clean-up
	// of a final failure both run under it, and a provider returns only once its work has stopped.
	leaseCtx, cancelLease := context.WithCancel(ctx)
	defer cancelLease()
	lost := s.heartbeat(leaseCtx, cancelLease, id, op, attempt, claimed)
	workCtx, cancelWork := context.WithTimeout(leaseCtx, s.cfg.OperationTimeout)
	var placement marketplace.Placement
	var revision int
	err = s.run(workCtx, d, op, &placement, &revision)
	cancelWork()
	providerTook := time.Since(start)

	// An error no retry can change (marketplace.Final) ends the operation at once.
	final := attempt >= s.cfg.MaxAttempts || marketplace.IsFinal(err)
	cleanedUp := false
	if err != nil && final && op == marketplace.OpInstall && leaseCtx.Err() == nil {
		// Nothing of a failed install may stay running unbilled: remove what the attempts created.
		cleanCtx, cancelClean := context.WithTimeout(leaseCtx, max(s.cfg.OperationTimeout, 2*time.Minute)) // the lease still holds it
		if cerr := s.runUninstall(cleanCtx, d); cerr != nil {
			log.Warn("could not remove the resources of a failed install; the reconciler retries", "err", cerr)
			err = fmt.Errorf("%w (its resources could not be removed yet: %v)", err, cerr)
		} else {
			cleanedUp = true
			err = fmt.Errorf("%w; everything the install created was removed", err)
		}
		cancelClean()
	}

	// The work is over; what remains is recording it, which must happen even when ctx is cancelled.
	cancelLease()
	claimLost := <-lost
	recordCtx, cancelRecord := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelRecord()
	switch {
	case claimLost:
		log.Warn("lease lost; the attempt stopped and another attempt owns the deployment")
		s.metrics.observe(op, "lost", start)
		return nil
	case err != nil && ctx.Err() != nil:
		// The worker is stopping: hand the deployment back at once, without counting the attempt.
		log.Info("worker stopping; handing the deployment back", "err", err)
		s.metrics.observe(op, "handed_back", start)
		return ignoreLost(s.store.HandBack(recordCtx, id, op, attempt))
	case err != nil:
		backoff := s.backoff(attempt)
		// A chart repository's or an image server's error names the URL it fetched, credentials and all
		// (Go's client hides the password, not the user): the reason is recorded without them, so the
		// audit trail, which copies it, and every page that shows it never hold them.
		reason := marketplace.RedactURLs(err.Error())
		log.Warn("attempt failed", "err", reason, "final", final, "retry_in", backoff)
		outcome := "retry"
		if final {
			outcome = "failed"
		}
		s.metrics.observe(op, outcome, start)
		failure := marketplace.AttemptFailure{Reason: fmt.Sprintf("%s attempt %d of %d: %s", op, attempt, s.cfg.MaxAttempts, reason),
			RetryAfter: backoff, Final: final, CleanedUp: cleanedUp}
		if ferr := s.store.FailAttempt(recordCtx, id, op, attempt, failure); ferr != nil {
			return ignoreLost(ferr)
		}
		if !final {
			next := marketplace.Task{Op: op, DeploymentID: id, Attempt: attempt, NotBefore: time.Now().Add(backoff)}
			if qerr := s.queue.Enqueue(recordCtx, next); qerr != nil {
				log.Warn("could not queue the retry; the reconciler will", "err", qerr)
			}
		}
		return nil
	}
	switch op {
	case marketplace.OpInstall:
		err = s.store.CompleteInstall(recordCtx, id, attempt, placement)
	case marketplace.OpUpgrade:
		err = s.store.CompleteUpgrade(recordCtx, id, attempt, placement, revision)
	default:
		err = s.store.CompleteUninstall(recordCtx, id, attempt)
	}
	if err != nil {
		return ignoreLost(err)
	}
	s.metrics.observe(op, "done", start)
	// took is claim to recorded; provider is the part the provider spent, so the timeline of an install
	// (requested, claimed, provider done, recorded) can be read from the log.
	log.Info("done", "took", time.Since(start).Round(time.Millisecond), "provider", providerTook.Round(time.Millisecond))
	return nil
}

// run calls the provider for op. A panic in the provider is an attempt that failed, not a lost worker.
func (s *Runner) run(ctx context.Context, d *marketplace.Deployment, op marketplace.Operation, placement *marketplace.Placement, revision *int) (err error) {
	if op == marketplace.OpUninstall {
		return s.runUninstall(ctx, d)
	}
	defer recoverPanic(d, &err)
	p := s.installers[d.Type]
	if p == nil {
		return fmt.Errorf("no provider is configured for deployment type %q", d.Type)
	}
	if op == marketplace.OpUpgrade {
		if !marketplace.Offers(d.Type).Upgrade {
			return fmt.Errorf("the %s provider cannot upgrade", d.Type)
		}
		app, err := s.store.FindAppVersion(ctx, d.ApplicationID, d.TargetVersion)
		if err != nil {
			return fmt.Errorf("load application %d version %d: %w", d.ApplicationID, d.TargetVersion, err)
		}
		target := *d
		target.Inputs = d.TargetInputs
		*placement, *revision, err = p.Upgrade(ctx, &target, app)
		return err
	}
	// The version the deployment pinned when it was accepted, whatever its publisher did since.
	app, err := s.store.FindAppVersion(ctx, d.ApplicationID, d.Version)
	if err != nil {
		return fmt.Errorf("load application %d version %d: %w", d.ApplicationID, d.Version, err)
	}
	*placement, err = p.Install(ctx, d, app)
	return err
}

// runUninstall removes a deployment's resources through its provider.
func (s *Runner) runUninstall(ctx context.Context, d *marketplace.Deployment) (err error) {
	defer recoverPanic(d, &err)
	p := s.installers[d.Type]
	if p == nil {
		return fmt.Errorf("no provider is configured for deployment type %q", d.Type)
	}
	return p.Uninstall(ctx, d)
}

func recoverPanic(d *marketplace.Deployment, err *error) {
	if v := recover(); v != nil {
		*err = fmt.Errorf("the %s provider panicked: %v", d.Type, v)
	}
}

// heartbeat extends the lease every third of it until ctx is done. The returned channel yields exactly
// one value: true (after calling cancel) if the claim was lost, false once ctx is done otherwise.
//
// Each renewal has a deadline well inside the lease, and a worker that has not renewed for half a lease
// (a database that stalls or refuses) gives the claim up: cancel stops the work, and providers return
// only once their work has stopped, so the attempt is over before the lease can lapse and another
// worker's attempt can begin. held is when the lease was last known to start.
func (s *Runner) heartbeat(ctx context.Context, cancel context.CancelFunc, id int64, op marketplace.Operation, attempt int, held time.Time) <-chan bool {
	lost := make(chan bool, 1)
	giveUp := s.cfg.Lease / 2
	go func() {
		renew := time.NewTicker(s.cfg.Lease / 3)
		defer renew.Stop()
		deadline := time.NewTimer(time.Until(held.Add(giveUp)))
		defer deadline.Stop()
		for {
			select {
			case <-ctx.Done():
				lost <- false
				return
			case <-deadline.C:
				s.log.Warn("lease not renewed for half its length; stopping the attempt", "deployment", id, "op", op, "attempt", attempt)
				lost <- true
				cancel()
				return
			case <-renew.C:
				sent := time.Now() // the new lease runs from no later than this
				callCtx, cancelCall := context.WithTimeout(ctx, s.cfg.Lease/6)
				ok, err := s.store.ExtendLease(callCtx, id, op, attempt, s.cfg.Lease)
				cancelCall()
				switch {
				case err == nil && ok:
					deadline.Reset(time.Until(sent.Add(giveUp)))
				case err == nil && !ok:
					lost <- true
					cancel()
					return
				}
			}
		}
	}()
	return lost
}

func (s *Runner) backoff(attempt int) time.Duration {
	d := s.cfg.RetryBackoff << (attempt - 1)
	if d <= 0 || d > 5*time.Minute {
		d = 5 * time.Minute
	}
	return d
}

func ignoreLost(err error) error {
	if errors.Is(err, marketplace.ErrClaimLost) {
		return nil
	}
	return err
}
