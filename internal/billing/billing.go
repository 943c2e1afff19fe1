// Package billing runs the billing job: every interval it stores the amount of every open usage record
// as of the interval's start and closes the calendar months that have ended. The formula lives in the
// database (usage_amount), so reads, the job, invoices and the close at uninstall time agree to the
// last decimal.
package billing

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Store is what the job needs of the database.
type Store interface {
	// Now is the billing clock.
	Now() time.Time
	MeterOpenUsage(ctx context.Context, asOf time.Time) (int64, error)
	CloseDuePeriods(ctx context.Context) (int, error)
	RecordBillingRun(ctx context.Context, r *marketplace.BillingRun) error
}

// Job is the billing job of one replica. Any number of replicas may run it: a run meters as of the
// start of its interval, so runs of the same interval store the same numbers, and a late run of an
// earlier interval changes nothing; closes take turns through a lock and a closed period stays closed.
type Job struct {
	store       Store
	interval    time.Duration
	log         *slog.Logger
	lastSuccess prometheus.Gauge
	runs        *prometheus.CounterVec
	records     prometheus.Gauge
}

// New returns the job; reg, when not nil, receives its metrics.
func New(store Store, interval time.Duration, reg prometheus.Registerer, log *slog.Logger) *Job {
	j := &Job{store: store, interval: interval, log: log,
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "marketplace_billing_last_success_timestamp_seconds",
			Help: "When the last successful billing run finished (Unix time)."}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "marketplace_billing_runs_total",
			Help: "Billing runs of this replica by outcome."}, []string{"outcome"}),
		records: prometheus.NewGauge(prometheus.GaugeOpts{Name: "marketplace_billing_last_run_records",
			Help: "Open usage records the last billing run of this replica metered."}),
	}
	if reg != nil {
		reg.MustRegister(j.lastSuccess, j.runs, j.records)
	}
	return j
}

// Run runs the job at every multiple of the interval (on the billing clock) until ctx is done: a run
// wakes at the instant it meters as of, so stored amounts lag the clock by the run's own duration only.
func (j *Job) Run(ctx context.Context) error {
	for {
		now := j.store.Now()
		t := time.NewTimer(now.Truncate(j.interval).Add(j.interval).Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		run, err := j.RunOnce(ctx)
		if err != nil {
			if ctx.Err() == nil {
				j.log.Error("billing run failed", "err", err)
			}
			continue
		}
		j.log.Info("billing run", "records", run.Records, "periods_closed", run.PeriodsClosed,
			"took", run.FinishedAt.Sub(run.StartedAt).Round(time.Millisecond))
	}
}

// RunOnce meters the open usage records as of the start of the current interval, closes the periods
// that have ended and records the run (a failed one too, with its error).
func (j *Job) RunOnce(ctx context.Context) (*marketplace.BillingRun, error) {
	ctx = marketplace.OperatorContext(ctx)
	started := j.store.Now()
	run := &marketplace.BillingRun{AsOf: started.Truncate(j.interval), StartedAt: started}
	var err error
	if run.Records, err = j.store.MeterOpenUsage(ctx, run.AsOf); err == nil {
		run.PeriodsClosed, err = j.store.CloseDuePeriods(ctx)
	}
	run.FinishedAt = j.store.Now()
	if err != nil {
		run.Error = err.Error()
	}
	if recErr := j.store.RecordBillingRun(context.WithoutCancel(ctx), run); recErr != nil && err == nil {
		err = recErr
	}
	if err != nil {
		j.runs.WithLabelValues("error").Inc()
		return run, err
	}
	j.runs.WithLabelValues("ok").Inc()
	// Prometheus gauges are float64: a count of records and a Unix time, never an amount of money.
	j.records.Set(float64(run.Records))
	j.lastSuccess.Set(float64(run.FinishedAt.UnixNano()) / 1e9)
	return run, nil
}
