// Package workerrpc lets a process that holds no cluster or VM host credentials (an `api` replica) call
// the read-only methods of the providers (previews, health, VM consoles) on a worker, which holds them:
// a request/reply over the Redis the queues already use.
//
// A call is one JSON request pushed on the instance's request list, which a few goroutines of every
// worker wait on (BRPOP); the worker that takes it answers on a list of the call's own, keyed by a random
// id, which the caller waits on (BLPOP) until its deadline. Both waits wake the moment something
// arrives: nothing polls. The worker first says it took the call, so a caller that finds no worker up
// knows within Config.AcceptTimeout instead of its whole deadline.
//
// The stand-ins of provider.go implement the optional provider interfaces of package marketplace by
// calling a worker; Server answers them with the worker's own providers, the code `serve` calls in
// process. Domain errors (*marketplace.Error) cross with their code and message; any other error
// crosses as its text.
package workerrpc

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is where calls go: the Redis of the queues, and the marketplace instance whose calls they are
// (the database's instance id), so two marketplaces sharing a Redis never answer each other.
type Config struct {
	RedisURL string
	Instance string
	// AcceptTimeout bounds how long a call waits for a worker to take it (default 5s); Timeout is the
	// deadline of a call whose context has none (default 1m).
	AcceptTimeout time.Duration
	Timeout       time.Duration
}

// request is one call.
type request struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`   // the deployment type whose provider answers
	Method   string          `json:"method"` // a key of methods (provider.go)
	Args     json.RawMessage `json:"args"`
	AcceptBy time.Time       `json:"accept_by"` // after it the caller has given up waiting for a worker
	Deadline time.Time       `json:"deadline"`
}

// reply is what a worker pushes on the call's reply list: first Taken, then the outcome.
type reply struct {
	Taken  bool            `json:"taken,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	// Code and Message are a *marketplace.Error's; Failure is any other error's text.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Failure string `json:"failure,omitempty"`
}

// replyTTL is how long a reply list outlives its last push, should its caller be gone.
const replyTTL = time.Minute

func requestsKey(instance string) string { return "marketplace:" + instance + ":worker-calls" }
func replyKey(instance, id string) string {
	return "marketplace:" + instance + ":worker-reply:" + id
}

// newRedis opens a client for blocking commands: no read timeout of its own, the deadline of each
// command's context instead (a BLPOP waits longer than any fixed read timeout).
func newRedis(redisURL string) (*redis.Client, error) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	opt.ReadTimeout, opt.ContextTimeoutEnabled = -1, true
	return redis.NewClient(opt), nil
}
