package queue

import (
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Metrics exports the state of both queues at every scrape, read from Redis with asynq's inspector:
// tasks by state and the age of the oldest pending task.
type Metrics struct {
	inspector *asynq.Inspector
	tasks     *prometheus.Desc
	latency   *prometheus.Desc
	up        *prometheus.Desc
}

// NewMetrics returns a collector for the queues of the Redis at redisURL.
func NewMetrics(redisURL string) (*Metrics, error) {
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	return &Metrics{
		inspector: asynq.NewInspector(opt),
		tasks: prometheus.NewDesc("marketplace_queue_tasks", "Tasks in a queue by state.",
			[]string{"queue", "state"}, nil),
		latency: prometheus.NewDesc("marketplace_queue_latency_seconds", "Age of the oldest pending task of a queue.",
			[]string{"queue"}, nil),
		up: prometheus.NewDesc("marketplace_queue_up", "1 when Redis answered the last scrape.", nil, nil),
	}, nil
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.tasks
	ch <- m.latency
	ch <- m.up
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	up := 1.0
	for _, q := range []string{InstallerQueue, UninstallerQueue} {
		info, err := m.inspector.GetQueueInfo(q)
		if errors.Is(err, asynq.ErrQueueNotFound) {
			info = &asynq.QueueInfo{Queue: q} // no task was ever queued
		} else if err != nil {
			up = 0
			continue
		}
		for state, n := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived} {
			ch <- prometheus.MustNewConstMetric(m.tasks, prometheus.GaugeValue, float64(n), q, state)
		}
		ch <- prometheus.MustNewConstMetric(m.latency, prometheus.GaugeValue, info.Latency.Seconds(), q)
	}
	ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, up)
}

// Stats reads both queues now, for the operator's page of the storefront.
func (m *Metrics) Stats() ([]marketplace.QueueStats, error) {
	var stats []marketplace.QueueStats
	for _, q := range []string{InstallerQueue, UninstallerQueue} {
		info, err := m.inspector.GetQueueInfo(q)
		if errors.Is(err, asynq.ErrQueueNotFound) {
			info = &asynq.QueueInfo{Queue: q}
		} else if err != nil {
			return nil, fmt.Errorf("read queue %s: %w", q, err)
		}
		stats = append(stats, marketplace.QueueStats{Queue: q, Pending: info.Pending, Active: info.Active,
			Scheduled: info.Scheduled, Retry: info.Retry, Archive: info.Archived, OldestWaiting: info.Latency})
	}
	return stats, nil
}

// Close closes the inspector's connection.
func (m *Metrics) Close() error { return m.inspector.Close() }
