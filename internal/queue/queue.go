// Package queue carries install and uninstall tasks through Redis with asynq: the installer_queue and
// uninstaller_queue, one task per deployment, operation and attempt, deduplicated by that id.
//
// The queue only delivers; PostgreSQL decides. Delivery is at-least-once with holes (a lost lease, a
// double recovery, a crash that burns a retry), so handlers are guarded status transitions in the store
// and a reconciler in package deploy re-queues whatever Redis lost.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Queue names, as the seed API documents them.
const (
	InstallerQueue   = "installer_queue"
	UninstallerQueue = "uninstaller_queue"
)

// payload is the body of a task.
type payload struct {
	DeploymentID int64 `json:"deployment_id"`
	Attempt      int   `json:"attempt"`
}

// Client enqueues tasks. It implements marketplace.Enqueuer.
type Client struct {
	client  *asynq.Client
	timeout time.Duration
}

// NewClient returns a client of the Redis at redisURL. taskTimeout bounds one task's run on a worker.
func NewClient(redisURL string, taskTimeout time.Duration) (*Client, error) {
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	return &Client{client: asynq.NewClient(opt), timeout: taskTimeout}, nil
}

// Enqueue puts t on its queue. A task with the same id already queued is success, not an error.
func (c *Client) Enqueue(ctx context.Context, t marketplace.Task) error {
	body, err := json.Marshal(payload{DeploymentID: t.DeploymentID, Attempt: t.Attempt})
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", t.ID(), err)
	}
	queue := InstallerQueue // installs, and upgrades: installs of another version
	if t.Op == marketplace.OpUninstall {
		queue = UninstallerQueue
	}
	// Retries belong to PostgreSQL (FailAttempt schedules them, the reconciler re-sends what is owed);
	// asynq's own retries only cover a worker that died holding the task.
	opts := []asynq.Option{asynq.Queue(queue), asynq.TaskID(t.ID()), asynq.MaxRetry(10), asynq.Timeout(c.timeout)}
	if !t.NotBefore.IsZero() {
		opts = append(opts, asynq.ProcessAt(t.NotBefore))
	}
	_, err = c.client.EnqueueContext(ctx, asynq.NewTask(string(t.Op), body), opts...)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue %s: %w", t.ID(), err)
	}
	return nil
}

// Ping reports whether Redis answers before ctx is done.
func (c *Client) Ping(ctx context.Context) error {
	answer := make(chan error, 1)
	go func() { answer <- c.client.Ping() }() // asynq's Ping takes no context
	select {
	case err := <-answer:
		return err
	case <-ctx.Done():
		return fmt.Errorf("redis did not answer: %w", ctx.Err())
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.client.Close() }

// Handler runs tasks. Install and Uninstall return an error only when the decision could not be
// recorded (the database is down).
type Handler interface {
	Install(ctx context.Context, deploymentID int64) error
	Uninstall(ctx context.Context, deploymentID int64) error
	Upgrade(ctx context.Context, deploymentID int64) error
}

// ServerConfig tunes a worker server.
type ServerConfig struct {
	RedisURL    string
	Concurrency int
	// PollInterval is how often an idle worker asks Redis for work; it bounds the queue's latency.
	PollInterval time.Duration
	// ShutdownTimeout is how long a stopping worker lets tasks in flight finish before handing them back.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

// Server takes tasks from both queues and hands them to a Handler.
type Server struct {
	srv *asynq.Server
	mux *asynq.ServeMux
	// stopping is closed when Run's context ends. It cancels the tasks in flight at once, so they hand
	// their deployments back before the process exits: asynq itself would only abandon them after
	// ShutdownTimeout, without cancelling them, and the attempt would count as used.
	stopping chan struct{}
}

// NewServer returns a server that runs h's methods for install and uninstall tasks.
func NewServer(cfg ServerConfig, h Handler) (*Server, error) {
	opt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	log := cfg.Logger
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency:       cfg.Concurrency,
		Queues:            map[string]int{InstallerQueue: 1, UninstallerQueue: 1},
		TaskCheckInterval: cfg.PollInterval,
		// Retries are scheduled tasks; check for due ones every second rather than asynq's default 5.
		DelayedTaskCheckInterval: time.Second,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		Logger:                   asynqLogger{log},
		LogLevel:                 asynq.WarnLevel,
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			return time.Duration(min(1<<n, 60)) * time.Second
		},
	})
	mux := asynq.NewServeMux()
	stopping := make(chan struct{})
	run := func(op marketplace.Operation, f func(context.Context, int64) error) asynq.HandlerFunc {
		return func(ctx context.Context, t *asynq.Task) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-stopping:
					cancel()
				case <-ctx.Done():
				}
			}()
			var p payload
			if err := json.Unmarshal(t.Payload(), &p); err != nil || p.DeploymentID <= 0 {
				// A malformed task can never succeed: drop it, loudly, instead of retrying or panicking.
				log.Error("dropping malformed task", "type", t.Type(), "payload", string(t.Payload()), "err", err)
				return fmt.Errorf("malformed %s task %q: %w", op, t.Payload(), asynq.SkipRetry)
			}
			if err := f(ctx, p.DeploymentID); err != nil {
				// Not handed to asynq for a retry: a task it archives keeps its id for months and would
				// block the reconciler's re-send. PostgreSQL still says the work is owed, and the
				// reconciler re-queues it once the database answers.
				log.Error("task failed; the reconciler will re-queue it", "type", t.Type(), "deployment", p.DeploymentID, "err", err)
			}
			return nil
		}
	}
	mux.Handle(string(marketplace.OpInstall), run(marketplace.OpInstall, h.Install))
	mux.Handle(string(marketplace.OpUninstall), run(marketplace.OpUninstall, h.Uninstall))
	mux.Handle(string(marketplace.OpUpgrade), run(marketplace.OpUpgrade, h.Upgrade))
	return &Server{srv: srv, mux: mux, stopping: stopping}, nil
}

// Run processes tasks until ctx is done, then stops taking work and lets tasks in flight finish (or
// hands them back) before returning.
func (s *Server) Run(ctx context.Context) error {
	if err := s.srv.Start(s.mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	<-ctx.Done()
	close(s.stopping)
	s.srv.Shutdown()
	return nil
}

// asynqLogger routes asynq's log lines to slog.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Fatal(args ...any) { l.log.Error(fmt.Sprint(args...), "component", "asynq") }
