// Package billing runs the metering job: every interval it brings the stored amount of every open usage
// record up to date. The formula lives in the database (usage_amount), so reads, the job and the close
// at uninstall time agree to the last decimal.
package billing

import (
	"context"
	"log/slog"
	"time"
)

// Meter is the store's metering pass.
type Meter interface {
	MeterOpenUsage(ctx context.Context) (int64, error)
}

// Run meters every interval until ctx is done. Several replicas may run it at once: each pass is one
// idempotent statement.
func Run(ctx context.Context, m Meter, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		start := time.Now()
		n, err := m.MeterOpenUsage(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error("metering pass failed", "err", err)
			continue
		}
		log.Info("metered open usage records", "records", n, "took", time.Since(start).Round(time.Millisecond))
	}
}
