package workerrpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Client makes the calls of the forwarding Inspectors (inspector.go).
type Client struct {
	rdb      *redis.Client
	cfg      Config
	requests string
}

// NewClient returns a Client of cfg's Redis; it connects on the first call.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	rdb, err := newRedis(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	return &Client{rdb: rdb, cfg: cfg, requests: requestsKey(cfg.Instance)}, nil
}

// Close closes the connections to Redis.
func (c *Client) Close() error { return c.rdb.Close() }

// call asks a worker to run method of its typ provider on what t names, as ctx's caller, and decodes the answer into result. It
// returns EUNAVAILABLE when no worker takes the call within AcceptTimeout (before ctx's deadline), and
// an error wrapping context.DeadlineExceeded when the answer does not come by ctx's deadline.
func (c *Client) call(ctx context.Context, typ, method string, t target, result any) error {
	now := time.Now()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = now.Add(c.cfg.Timeout)
	}
	acceptBy := now.Add(c.cfg.AcceptTimeout)
	if deadline.Before(acceptBy) {
		acceptBy = deadline
	}
	id := make([]byte, 16)
	rand.Read(id)
	who := marketplace.CallerFrom(ctx)
	req := request{ID: hex.EncodeToString(id), Type: typ, Method: method, Target: t,
		Caller: caller{UserID: who.UserID, Operator: who.Operator}, AcceptBy: acceptBy, Deadline: deadline}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode a call of %s: %w", method, err)
	}
	body = sign(c.cfg.Secret, scope(c.cfg.Instance, ""), body)
	pushCtx, cancel := context.WithDeadline(ctx, deadline)
	err = c.rdb.LPush(pushCtx, c.requests, body).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("ask a worker for %s: %w", method, err)
	}
	key := replyKey(c.cfg.Instance, req.ID)
	r, err := c.pop(ctx, key, req.ID, acceptBy)
	if errors.Is(err, redis.Nil) {
		// Nobody took it: take it back, so no worker starts it after its caller left (a worker also drops
		// a call past AcceptBy, which covers a failed LREM).
		c.rdb.LRem(context.WithoutCancel(ctx), c.requests, 1, body)
		if acceptBy.Before(deadline) {
			return marketplace.Errorf(marketplace.EUNAVAILABLE,
				"no worker took the request within %s: %s is made by a worker (`marketplace worker` or `serve`), and none answers now; try again once one runs",
				c.cfg.AcceptTimeout, describe(method))
		}
		return fmt.Errorf("no worker took the request for %s by its deadline: %w", method, context.DeadlineExceeded)
	} else if err != nil {
		return fmt.Errorf("wait for a worker to take %s: %w", method, err)
	}
	if r.Taken {
		if r, err = c.pop(ctx, key, req.ID, deadline); errors.Is(err, redis.Nil) {
			return fmt.Errorf("a worker took %s but did not answer by its deadline: %w", method, context.DeadlineExceeded)
		} else if err != nil {
			return fmt.Errorf("wait for a worker's answer to %s: %w", method, err)
		}
	}
	switch {
	case r.Code != "":
		return &marketplace.Error{Code: r.Code, Message: r.Message}
	case r.Failure != "":
		return fmt.Errorf("%s on a worker: %s", method, r.Failure)
	}
	if err := json.Unmarshal(r.Result, result); err != nil {
		return fmt.Errorf("decode a worker's answer to %s: %w", method, err)
	}
	return nil
}

// pop waits until `until` for the next reply to call id on key; redis.Nil when none came. A reply that
// is not signed for the call, or is larger than MaxReplyBytes, is an error.
func (c *Client) pop(ctx context.Context, key, id string, until time.Time) (*reply, error) {
	wait := time.Until(until)
	if wait < time.Millisecond {
		return nil, redis.Nil
	}
	// Redis ends the wait itself; the context's deadline is only for a Redis that does not answer.
	ctx, cancel := context.WithDeadline(ctx, until.Add(2*time.Second))
	defer cancel()
	kv, err := c.rdb.Do(ctx, "BLPOP", key, strconv.FormatFloat(wait.Seconds(), 'f', 3, 64)).StringSlice()
	if err != nil {
		return nil, err
	}
	if len(kv) != 2 {
		return nil, fmt.Errorf("BLPOP answered %d values", len(kv))
	} else if len(kv[1]) > c.cfg.MaxReplyBytes+replyOverhead {
		return nil, fmt.Errorf("a reply of %d bytes is over the cap of %d", len(kv[1]), c.cfg.MaxReplyBytes)
	}
	body, err := open(c.cfg.Secret, scope(c.cfg.Instance, id), []byte(kv[1]))
	if err != nil {
		return nil, fmt.Errorf("refused a reply: %w", err)
	}
	var r reply
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode a worker's reply: %w", err)
	}
	return &r, nil
}
