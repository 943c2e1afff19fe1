// Package workerrpc lets a process that holds no cluster or VM host credentials (an `api` replica) call
// the read side of the providers (marketplace.Inspector: previews, health, values schemas, VM consoles)
// on a worker, which holds them: a request/reply over the Redis the queues already use.
//
// A call names what it is about by ids (a deployment, an application version) and carries only what the
// caller adds to it (a preview's inputs): the worker reads the deployment and the application, their
// credentials included, from PostgreSQL, so nothing secret crosses Redis and a message cannot make a
// worker act on something its caller could not. Every request and reply is signed with a secret the API
// replicas and workers share (MARKETPLACE_RPC_SECRET, or the database's own), so whoever can write to
// Redis can neither ask a worker for anything nor answer in a worker's place; a reply is capped in size.
//
// A call is one JSON request pushed on the instance's request list, which a few goroutines of every
// worker wait on (BRPOP); the worker that takes it answers on a list of the call's own, keyed by a random
// id, which the caller waits on (BLPOP) until its deadline. Both waits wake the moment something
// arrives: nothing polls. The worker first says it took the call, so a caller that finds no worker up
// knows within Config.AcceptTimeout instead of its whole deadline.
//
// Inspector (inspector.go) is one forwarding marketplace.Inspector per deployment type; Server answers
// its calls with the worker's own Inspectors, the code `serve` calls in process. Domain errors
// (*marketplace.Error) cross with their code and message; any other error crosses as its text.
package workerrpc

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/marketplace/marketplace/internal/marketplace"
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
	// Secret signs every request and reply (at least 16 bytes); a message without its signature is
	// dropped unread.
	Secret []byte
	// MaxReplyBytes caps an answer (default 8 MiB): a worker answers a larger one with an error, and a
	// caller refuses one.
	MaxReplyBytes int
}

// check validates cfg and fills in its defaults.
func (cfg *Config) check() error {
	if len(cfg.Secret) < 16 {
		return errors.New("worker calls: the shared secret (MARKETPLACE_RPC_SECRET) must be at least 16 bytes")
	}
	if cfg.AcceptTimeout <= 0 {
		cfg.AcceptTimeout = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	if cfg.MaxReplyBytes <= 0 {
		cfg.MaxReplyBytes = 8 << 20
	}
	return nil
}

// request is one call.
type request struct {
	ID     string `json:"id"`
	Type   string `json:"type"`   // the deployment type whose provider answers
	Method string `json:"method"` // a method of handler (inspector.go)
	Target target `json:"target"`
	// Caller is who asked: the worker reads what Target names as them, so it finds only their own.
	Caller   caller    `json:"caller"`
	AcceptBy time.Time `json:"accept_by"` // after it the caller has given up waiting for a worker
	Deadline time.Time `json:"deadline"`
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

// target is what a call is about, by id; the worker reads the rest from PostgreSQL.
type target struct {
	DeploymentID  int64 `json:"deployment_id,omitempty"` // 0: a deployment not recorded yet (an install's preview)
	ApplicationID int64 `json:"application_id,omitempty"`
	Version       int   `json:"version,omitempty"`
	ProjectID     int64 `json:"project_id,omitempty"` // of a deployment not recorded yet
	// Inputs are a preview's inputs, which the caller gives and nothing records yet.
	Inputs   map[string]any `json:"inputs,omitempty"`
	MaxBytes int64          `json:"max_bytes,omitempty"` // of a console read
	// Spec and Keys are a chart verification's: the spec of a version not stored yet, the publisher's
	// armored public keys.
	Spec *marketplace.DeploymentSpec `json:"spec,omitempty"`
	Keys []string                    `json:"keys,omitempty"`
}

// caller is marketplace.Caller on the wire (a token not yet looked up never crosses).
type caller struct {
	UserID   int64 `json:"user_id,omitempty"`
	Operator bool  `json:"operator,omitempty"`
}

// sign returns body signed for scope (the instance and the call's id; a request's id is ""): the hex
// HMAC-SHA256 of scope and body, a dot, and body. The instance keeps one marketplace's calls from being
// moved to another's list (two may share a Redis and a secret); the id binds a reply to its call.
func sign(secret []byte, scope string, body []byte) []byte {
	return append(append(mac(secret, scope, body), '.'), body...)
}

// open checks a message signed by sign and returns its body.
func open(secret []byte, scope string, msg []byte) ([]byte, error) {
	sig, body, ok := bytes.Cut(msg, []byte("."))
	if !ok || !hmac.Equal(sig, mac(secret, scope, body)) {
		return nil, errors.New("the message is not signed with this marketplace's worker-call secret")
	}
	return body, nil
}

func mac(secret []byte, scope string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(scope + "\n"))
	h.Write(body)
	return hex.AppendEncode(nil, h.Sum(nil))
}

// scope is what a message of instance's call id is signed for.
func scope(instance, id string) string { return instance + "\n" + id }

// maxCallBytes bounds a request a worker reads: ids, a caller and a preview's inputs, which the API
// bounds far below this. Anything larger was not sent by an API replica.
const maxCallBytes = 4 << 20

// replyOverhead is what a reply adds to its result: the signature and the reply's other fields.
const replyOverhead = 4 << 10

// replyTTL is how long a reply list outlives its last push, should its caller be gone.
const replyTTL = time.Minute

func requestsKey(instance string) string { return "marketplace:" + instance + ":worker-calls" }

// callKey marks a call as taken, so a copy pushed again is not run again.
func callKey(instance, id string) string { return "marketplace:" + instance + ":worker-call:" + id }

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
