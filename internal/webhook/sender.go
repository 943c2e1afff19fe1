package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Config tunes a Sender.
type Config struct {
	// Timeout bounds one attempt: connecting, sending and the receiver's answer.
	Timeout time.Duration
	// MaxAttempts is how many attempts a delivery gets before it is failed.
	MaxAttempts int
	// RetryBackoff is the wait after the first failed attempt, doubling after each one up to MaxBackoff.
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// PollInterval is how often an idle sender looks for due deliveries.
	PollInterval time.Duration
	// Concurrency is how many attempts one sender makes at once.
	Concurrency int
}

// maxResponseBytes is how much of a receiver's answer is read: its status is what counts, and a
// receiver must not make the sender read without end.
const maxResponseBytes = 64 << 10

// Sender delivers the outbox's due deliveries. Several senders (one per worker) share one outbox.
type Sender struct {
	queue  marketplace.DeliveryQueue
	client *http.Client
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
}

// NewSender returns a sender that sends through transport: the fetch guard's, which dials no address
// inside the operator's network that MARKETPLACE_FETCH_ALLOW does not allow, whatever a webhook's name
// resolves to by the time it is sent.
func NewSender(queue marketplace.DeliveryQueue, transport http.RoundTripper, cfg Config, log *slog.Logger) *Sender {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 1
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	return &Sender{queue: queue, cfg: cfg, log: log, now: time.Now, client: &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		// A redirect is an answer: the receiver must answer at the URL its owner registered.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// lease is how long a claimed delivery stays its sender's: the attempt's timeout and a margin for
// recording its outcome. A sender that dies holding one leaves it to be sent again after it.
func (s *Sender) lease() time.Duration { return s.cfg.Timeout + 15*time.Second }

// Run sends due deliveries until ctx ends, then lets the attempts in flight finish and record their
// outcome.
func (s *Sender) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, s.cfg.Concurrency)
	freed := make(chan struct{}, 1)
	ticker := time.NewTicker(s.cfg.PollInterval)
	defer ticker.Stop()
	for {
		free := s.cfg.Concurrency - len(slots)
		claimed := 0
		if free > 0 {
			due, err := s.queue.ClaimDeliveries(ctx, free, s.lease())
			if err != nil && ctx.Err() == nil {
				s.log.Warn("claim webhook deliveries", "err", err)
			}
			claimed = len(due)
			for _, d := range due {
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					// An attempt outlives a shutdown: it ends within its timeout and records its outcome.
					s.attempt(context.WithoutCancel(ctx), d)
					<-slots
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
			}
		}
		if claimed > 0 && claimed == free {
			continue // there may be more due now
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-freed:
		}
	}
}

// attempt sends one claimed delivery and records what happened.
func (s *Sender) attempt(ctx context.Context, d *marketplace.DueDelivery) {
	code, err := s.send(ctx, d)
	a := marketplace.DeliveryAttempt{DeliveryID: d.ID, Attempt: d.Attempt, StatusCode: code, Delivered: err == nil}
	if err != nil {
		a.Error = err.Error()
		a.Final = d.Attempt >= s.cfg.MaxAttempts
		if !a.Final {
			a.RetryAfter = Backoff(d.Attempt, s.cfg.RetryBackoff, s.cfg.MaxBackoff)
		}
	}
	if err := s.queue.RecordDeliveryAttempt(ctx, a); err != nil {
		if errors.Is(err, marketplace.ErrClaimLost) {
			s.log.Info("webhook delivery's attempt outlived its claim", "delivery", d.ID, "attempt", d.Attempt)
			return
		}
		s.log.Error("record webhook delivery attempt", "delivery", d.ID, "attempt", d.Attempt, "err", err)
		return
	}
	switch {
	case a.Delivered:
		s.log.Debug("webhook delivered", "delivery", d.ID, "event", d.EventType, "attempt", d.Attempt)
	case a.Final:
		s.log.Warn("webhook delivery failed for good", "delivery", d.ID, "event", d.EventType, "attempts", d.Attempt, "err", a.Error)
	default:
		s.log.Info("webhook delivery attempt failed", "delivery", d.ID, "attempt", d.Attempt, "retry_after", a.RetryAfter, "err", a.Error)
	}
}

// send makes one attempt: a signed POST of the payload. It returns the receiver's status code (0 when
// there was none) and, unless it was 2xx, why the attempt failed, in words that repeat nothing the
// receiver wrote.
func (s *Sender) send(ctx context.Context, d *marketplace.DueDelivery) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return 0, fmt.Errorf("cannot send to %s: %w", d.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "marketplace-webhooks")
	req.Header.Set("webhook-id", d.MessageID)
	at := s.now()
	req.Header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("webhook-signature", Sign(d.Secret, d.MessageID, at, d.Payload))
	resp, err := s.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			if uerr.Timeout() {
				return 0, fmt.Errorf("no answer within %s (WEBHOOK_TIMEOUT)", s.cfg.Timeout)
			}
			err = uerr.Err // without the URL, which the delivery's webhook shows already
		}
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return resp.StatusCode, fmt.Errorf("the receiver answered %d %s: redirects are not followed, register the URL it points to",
			resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return resp.StatusCode, fmt.Errorf("the receiver answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
}

// Backoff is the wait after failed attempt n (from 1): base doubled n-1 times, at most limit, plus up
// to a tenth more at random so that deliveries that failed together do not all come back together.
func Backoff(n int, base, limit time.Duration) time.Duration {
	wait := base
	for i := 1; i < n && wait < limit; i++ {
		wait *= 2
	}
	if limit > 0 && wait > limit {
		wait = limit
	}
	if wait <= 0 {
		return 0
	}
	return wait + rand.N(wait/10+1)
}
