package workerrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Server answers calls with a worker's own Inspectors.
type Server struct {
	rdb         *redis.Client
	cfg         Config
	requests    string
	store       Store
	inspectors  map[string]marketplace.Inspector
	concurrency int
	log         *slog.Logger
}

// NewServer returns a Server that answers up to concurrency calls at once with inspectors (by deployment
// type), reading what the calls name from store.
func NewServer(cfg Config, store Store, inspectors map[string]marketplace.Inspector, concurrency int, log *slog.Logger) (*Server, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	rdb, err := newRedis(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	return &Server{rdb: rdb, cfg: cfg, requests: requestsKey(cfg.Instance), store: store, inspectors: inspectors,
		concurrency: max(concurrency, 1), log: log.With("component", "workerrpc")}, nil
}

// idleWait bounds one wait for a call, so a stopping worker notices within it; a call that arrives
// during the wait is taken at once.
const idleWait = 2 * time.Second

// Run answers calls until ctx is done, then closes its connections. A Redis that fails is retried
// every second, as the queue's own worker does.
func (s *Server) Run(ctx context.Context) error {
	defer s.rdb.Close()
	var g errgroup.Group
	for range s.concurrency {
		g.Go(func() error {
			for ctx.Err() == nil {
				body, err := s.take(ctx)
				switch {
				case errors.Is(err, redis.Nil):
				case err != nil && ctx.Err() == nil:
					s.log.Warn("cannot wait for calls; trying again in a second", "err", err)
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
				case err == nil:
					s.answer(ctx, body)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// take waits up to idleWait for the next call.
func (s *Server) take(ctx context.Context) ([]byte, error) {
	waitCtx, cancel := context.WithTimeout(ctx, idleWait+2*time.Second)
	defer cancel()
	kv, err := s.rdb.Do(waitCtx, "BRPOP", s.requests, idleWait.Seconds()).StringSlice()
	if err != nil {
		return nil, err
	} else if len(kv) != 2 {
		return nil, fmt.Errorf("BRPOP answered %d values", len(kv))
	} else if len(kv[1]) > maxCallBytes {
		s.log.Warn("dropped a call larger than any API replica sends", "bytes", len(kv[1]))
		return nil, redis.Nil
	}
	return []byte(kv[1]), nil
}

// answer runs one call and pushes its outcome, unless its caller has given up already. A call that is
// not signed with the shared secret is dropped unread: whoever wrote it could write to Redis, nothing
// more.
func (s *Server) answer(ctx context.Context, msg []byte) {
	body, err := open(s.cfg.Secret, scope(s.cfg.Instance, ""), msg)
	if err != nil {
		s.log.Warn("dropped a call", "err", err, "bytes", len(msg))
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		s.log.Warn("dropped a call that does not decode", "err", err)
		return
	}
	if time.Now().After(req.AcceptBy) {
		return
	}
	// A signed call is run once: a copy pushed again (by whoever can write to Redis) is dropped.
	first, err := s.rdb.SetNX(ctx, callKey(s.cfg.Instance, req.ID), 1, time.Until(req.AcceptBy)+time.Minute).Result()
	if err != nil || !first {
		s.log.Warn("dropped a call taken before, or that cannot be marked as taken", "id", req.ID, "err", err)
		return
	}
	key := replyKey(s.cfg.Instance, req.ID)
	s.push(ctx, key, req.ID, reply{Taken: true})
	callCtx, cancel := context.WithDeadline(ctx, req.Deadline)
	defer cancel()
	var r reply
	result, err := s.run(callCtx, req)
	if err == nil {
		if r.Result, err = json.Marshal(result); err != nil {
			err = fmt.Errorf("encode the answer: %w", err)
		} else if len(r.Result) > s.cfg.MaxReplyBytes {
			r.Result, err = nil, fmt.Errorf("the answer is %d bytes, over the cap of %d", len(r.Result), s.cfg.MaxReplyBytes)
		}
	}
	if callCtx.Err() != nil && ctx.Err() == nil {
		return // past the call's deadline: its caller has stopped waiting (and says so itself)
	}
	var domain *marketplace.Error
	switch {
	case errors.As(err, &domain):
		r.Code, r.Message = domain.Code, domain.Message
	case err != nil:
		r.Failure = err.Error()
	}
	s.push(ctx, key, req.ID, r)
}

// run calls the Inspector method req names, reading what it is about as req's caller.
func (s *Server) run(ctx context.Context, req request) (result any, err error) {
	p := s.inspectors[req.Type]
	if p == nil {
		return nil, fmt.Errorf("this worker has no provider of type %q (KUBECONFIG or LIBVIRT_URI)", req.Type)
	}
	h := handler(req.Method)
	if h == nil {
		return nil, fmt.Errorf("this worker does not answer %q (a newer API than worker?)", req.Method)
	}
	// A panic in the provider is a failed call, not a lost worker (as in package deploy).
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("the %s provider panicked: %v", req.Type, v)
		}
	}()
	ctx = marketplace.WithCaller(ctx, marketplace.Caller{UserID: req.Caller.UserID, Operator: req.Caller.Operator})
	return h(ctx, p, s.store, req.Target)
}

// push appends r, signed for call id, to the reply list at key, which expires if its caller is gone.
func (s *Server) push(ctx context.Context, key, id string, r reply) {
	b, err := json.Marshal(r)
	if err != nil {
		s.log.Error("encode a reply", "err", err)
		return
	}
	b = sign(s.cfg.Secret, scope(s.cfg.Instance, id), b)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	pipe := s.rdb.TxPipeline()
	pipe.RPush(ctx, key, b)
	pipe.Expire(ctx, key, replyTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.Warn("cannot reply to a call", "key", key, "err", err)
	}
}
