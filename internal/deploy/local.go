package deploy

import (
	"context"
	"sync"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// slots bounds the attempts one process runs at once (Config.Concurrency), whether the queue handed them
// to it or it started them itself (RunLocal).
type slots chan struct{}

// local is the worker of a process that also answers the API (the serve role): a request its API has
// just recorded starts at once, in a free slot, rather than when the worker next polls the queue (asynq
// sleeps 25–75 ms between polls at the default QUEUE_POLL_INTERVAL, more than a tenth of an uninstall).
// The queue still carries the task: when no slot is free the queue brings it, and the attempt that claims
// the deployment first does the work while the other finds nothing to claim and does nothing (the
// database decides, as for any duplicate task).
type local struct {
	mu  sync.Mutex
	ctx context.Context // while RunLocal runs; nil otherwise
	wg  sync.WaitGroup  // the attempts started here
}

// RunLocal starts, until ctx ends, the attempts this process's own API rings for, and returns once every
// attempt it started has returned (an attempt cut short by ctx hands its deployment back, as a queued
// one does). It does nothing without Config.Concurrency.
func (s *Runner) RunLocal(ctx context.Context) error {
	if s.slots == nil {
		return nil
	}
	s.local.mu.Lock()
	s.local.ctx = ctx
	s.local.mu.Unlock()
	<-ctx.Done()
	s.local.mu.Lock()
	s.local.ctx = nil
	s.local.mu.Unlock()
	s.local.wg.Wait()
	return nil
}

// startLocally runs task t's attempt now, in this process, if RunLocal runs and a slot is free.
func (s *Runner) startLocally(t marketplace.Task) {
	if s.slots == nil || !t.NotBefore.IsZero() {
		return
	}
	s.local.mu.Lock()
	defer s.local.mu.Unlock()
	ctx := s.local.ctx
	if ctx == nil || ctx.Err() != nil {
		return
	}
	select {
	case s.slots <- struct{}{}:
	default:
		return // every slot is busy: the queue brings the task
	}
	s.local.wg.Add(1)
	go func() {
		defer s.local.wg.Done()
		defer func() { <-s.slots }()
		if err := s.attempt(ctx, t.DeploymentID, t.Op); err != nil {
			s.log.Error("attempt failed; the queued task or the reconciler brings it again", "task", t.ID(), "err", err)
		}
	}()
}

// queued runs the attempt of a task the queue delivered, once a slot is free.
func (s *Runner) queued(ctx context.Context, id int64, op marketplace.Operation) error {
	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		case <-ctx.Done():
			// The worker is stopping before the attempt began: nothing is claimed, and the reconciler
			// sends the task again.
			return nil
		}
	}
	return s.attempt(ctx, id, op)
}
