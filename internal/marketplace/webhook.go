package marketplace

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The events a webhook may subscribe to.
const (
	// EventDeploymentStatusChanged: a deployment took a status (pending on its install request,
	// installing, installed, failed, uninstalling, uninstalled, upgrading).
	EventDeploymentStatusChanged = "deployment.status_changed"
	// EventUpgradeFailed: an upgrade or rollback failed for good; the deployment runs its old revision.
	EventUpgradeFailed = "upgrade.failed"
	// EventInvoiceClosed: a month closed and issued the owner an invoice.
	EventInvoiceClosed = "invoice.closed"
)

// WebhookEvents are the event types a webhook may subscribe to.
func WebhookEvents() []string {
	return []string{EventDeploymentStatusChanged, EventUpgradeFailed, EventInvoiceClosed}
}

// MaxWebhooksPerOwner bounds the webhooks one owner registers, and so the deliveries one event makes.
const MaxWebhooksPerOwner = 10

// Webhook is a URL its owner registered for some event types. Its signing secret is shown once, when it
// is registered, and never stored anywhere it could be read back through the API.
type Webhook struct {
	ID        int64     `json:"id"`
	UserID    int64     `json:"user_id" doc:"the owner: the user whose deployments and invoices it reports"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	CreatedAt time.Time `json:"created_at"`
}

// Validate checks the URL's form (the fetch guard checks its address) and the event types, which it
// sorts and deduplicates.
func (w *Webhook) Validate() error {
	u, err := url.Parse(w.URL)
	switch {
	case len(w.URL) > 2000:
		return Errorf(EINVALID, "url is longer than 2000 characters")
	case err != nil:
		return Errorf(EINVALID, "url %q is not a URL: %v", w.URL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return Errorf(EINVALID, "url %q must be an http or https URL", w.URL)
	case u.Host == "" || u.Hostname() == "":
		return Errorf(EINVALID, "url %q has no host", w.URL)
	case u.Fragment != "":
		return Errorf(EINVALID, "url %q has a fragment (#...), which is never sent: leave it out", w.URL)
	case len(w.Events) == 0:
		return Errorf(EINVALID, "events must name at least one of %s", strings.Join(WebhookEvents(), ", "))
	}
	for _, e := range w.Events {
		if !slices.Contains(WebhookEvents(), e) {
			return Errorf(EINVALID, "events: %q is not an event type; they are %s", e, strings.Join(WebhookEvents(), ", "))
		}
	}
	slices.Sort(w.Events)
	w.Events = slices.Compact(w.Events)
	return nil
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"   // not sent yet, or to be retried at next_attempt_at
	DeliveryDelivered = "delivered" // the receiver answered 2xx
	DeliveryFailed    = "failed"    // every attempt failed; no more are made
)

// WebhookDelivery is one event sent, or to be sent, to one webhook, with the outcome of its latest
// attempt.
type WebhookDelivery struct {
	ID             int64           `json:"id"`
	WebhookID      int64           `json:"webhook_id"`
	MessageID      string          `json:"message_id" doc:"the webhook-id header: the same on every attempt, so a receiver can drop a delivery it already has"`
	EventType      string          `json:"event_type"`
	Payload        json.RawMessage `json:"payload" doc:"the body sent, exactly: {\"type\": ..., \"timestamp\": ..., \"data\": {...}}"`
	OccurredAt     time.Time       `json:"occurred_at"`
	Status         string          `json:"status" enum:"pending,delivered,failed"`
	Attempts       int             `json:"attempts"`
	NextAttemptAt  *time.Time      `json:"next_attempt_at,omitempty" doc:"while pending: when it is sent (again)"`
	LastAttemptAt  *time.Time      `json:"last_attempt_at,omitempty"`
	LastStatusCode *int            `json:"last_status_code,omitempty" doc:"what the receiver answered last; absent when it could not be reached"`
	LastError      string          `json:"last_error,omitempty" doc:"why the last attempt failed"`
	DeliveredAt    *time.Time      `json:"delivered_at,omitempty"`
}

// WebhookService registers webhooks and shows their deliveries; the owner and the operator see a
// webhook, anyone else is told it does not exist.
type WebhookService interface {
	// CreateWebhook stores w with its signing secret; ECONFLICT beyond MaxWebhooksPerOwner.
	CreateWebhook(ctx context.Context, w *Webhook, secret []byte) error
	// FindWebhooks lists a page of the caller's webhooks (all of them for the operator) by id.
	FindWebhooks(ctx context.Context, p Page) ([]*Webhook, int, error)
	// DeleteWebhook removes a webhook and its deliveries: nothing more is sent to it.
	DeleteWebhook(ctx context.Context, id int64) error
	// FindWebhookDeliveries lists a page of a webhook's deliveries, newest first.
	FindWebhookDeliveries(ctx context.Context, webhookID int64, p Page) ([]*WebhookDelivery, int, error)
}

// DueDelivery is a delivery a sender has claimed for one attempt, with what it needs to send it.
type DueDelivery struct {
	ID        int64
	MessageID string
	Attempt   int // this attempt's number, from 1
	EventType string
	Payload   []byte
	URL       string
	Secret    []byte
}

// DeliveryAttempt is the outcome of one attempt of a delivery.
type DeliveryAttempt struct {
	DeliveryID int64
	Attempt    int
	// StatusCode is the receiver's answer, 0 when there was none.
	StatusCode int
	Delivered  bool
	// Error says why it failed, when it did.
	Error string
	// Final ends a failed delivery: no attempt follows. Otherwise the next one is due after RetryAfter.
	Final      bool
	RetryAfter time.Duration
}

// DeliveryQueue is the outbox as senders see it. Claims are exclusive: a claimed delivery is no one
// else's until its attempt is recorded or its lease lapses (the sender died), and a record for an
// attempt that lost its claim changes nothing.
type DeliveryQueue interface {
	ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]*DueDelivery, error)
	RecordDeliveryAttempt(ctx context.Context, a DeliveryAttempt) error
}
