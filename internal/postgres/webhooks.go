package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// The deliveries themselves are written by triggers (migration 00108), in the transaction of the change
// they report: a deployment's status, a failed upgrade, an issued invoice. This file registers webhooks,
// shows deliveries, and is the outbox's queue for senders.

const webhookColumns = `id, owner_user_id, url, events, created_at`

func scanWebhook(row pgx.Row) (*marketplace.Webhook, error) {
	var w marketplace.Webhook
	return &w, row.Scan(&w.ID, &w.UserID, &w.URL, &w.Events, &w.CreatedAt)
}

// CreateWebhook stores one more webhook of a user with its signing secret. The user's row lock makes the
// count and the insert one step, so MaxWebhooksPerOwner holds under concurrent registrations.
func (db *DB) CreateWebhook(ctx context.Context, w *marketplace.Webhook, secret []byte) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, w.UserID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE owner_user_id = $1`, w.UserID).Scan(&n); err != nil {
			return err
		}
		if n >= marketplace.MaxWebhooksPerOwner {
			return marketplace.Errorf(marketplace.ECONFLICT,
				"user %d has %d webhooks, the most one owner may have; delete one first (DELETE /api/webhooks/{id})", w.UserID, n)
		}
		return tx.QueryRow(ctx, `INSERT INTO webhooks (owner_user_id, url, events, secret) VALUES ($1, $2, $3, $4)
RETURNING id, created_at`, w.UserID, w.URL, w.Events, secret).Scan(&w.ID, &w.CreatedAt)
	})
	if err != nil {
		if marketplace.ErrorCode(err) != marketplace.EINTERNAL {
			return err
		}
		return fmt.Errorf("create webhook of user %d: %w", w.UserID, err)
	}
	return nil
}

// FindWebhooks lists a page of the caller's webhooks by id, all of them for the operator.
func (db *DB) FindWebhooks(ctx context.Context, p marketplace.Page) ([]*marketplace.Webhook, int, error) {
	var total int
	ws, err := findPage(ctx, db.pool, `SELECT count(*) FROM webhooks WHERE $1 = 0 OR owner_user_id = $1`,
		`SELECT `+webhookColumns+` FROM webhooks WHERE $1 = 0 OR owner_user_id = $1 ORDER BY id`,
		[]any{scopeUser(ctx)}, p, scanWebhook, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find webhooks: %w", err)
	}
	return ws, total, nil
}

// findWebhook returns one of the caller's webhooks.
func (db *DB) findWebhook(ctx context.Context, id int64) (*marketplace.Webhook, error) {
	w, err := scanWebhook(db.pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks
WHERE id = $1 AND ($2 = 0 OR owner_user_id = $2)`, id, scopeUser(ctx)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("webhook", id)
	} else if err != nil {
		return nil, fmt.Errorf("find webhook %d: %w", id, err)
	}
	return w, nil
}

// DeleteWebhook removes one of the caller's webhooks and its deliveries. An attempt in flight may still
// reach the receiver; its outcome is not recorded.
func (db *DB) DeleteWebhook(ctx context.Context, id int64) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1 AND ($2 = 0 OR owner_user_id = $2)`, id, scopeUser(ctx))
	if err != nil {
		return fmt.Errorf("delete webhook %d: %w", id, err)
	} else if tag.RowsAffected() == 0 {
		return notFound("webhook", id)
	}
	return nil
}

// FindWebhookDeliveries lists a page of the deliveries of one of the caller's webhooks, newest first.
func (db *DB) FindWebhookDeliveries(ctx context.Context, webhookID int64, p marketplace.Page) ([]*marketplace.WebhookDelivery, int, error) {
	if _, err := db.findWebhook(ctx, webhookID); err != nil {
		return nil, 0, err
	}
	var total int
	ds, err := findPage(ctx, db.pool, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1`,
		`SELECT id, webhook_id, message_id, event_type, payload, occurred_at, status, attempts,
  CASE WHEN status = 'pending' THEN next_attempt_at END, last_attempt_at, last_status_code, last_error, delivered_at
FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC`, []any{webhookID}, p,
		func(row pgx.Row) (*marketplace.WebhookDelivery, error) {
			var d marketplace.WebhookDelivery
			var payload string
			err := row.Scan(&d.ID, &d.WebhookID, &d.MessageID, &d.EventType, &payload, &d.OccurredAt, &d.Status, &d.Attempts,
				&d.NextAttemptAt, &d.LastAttemptAt, &d.LastStatusCode, &d.LastError, &d.DeliveredAt)
			d.Payload = []byte(payload)
			return &d, err
		}, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find deliveries of webhook %d: %w", webhookID, err)
	}
	return ds, total, nil
}

// ClaimDeliveries takes up to limit due deliveries for one attempt each and holds them for lease: their
// next attempt is moved to the lease's end, so another sender takes one only once the lease lapses (its
// sender died before it recorded the outcome). FOR UPDATE SKIP LOCKED lets senders of several replicas
// claim side by side without waiting for, or taking, each other's rows.
func (db *DB) ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]*marketplace.DueDelivery, error) {
	rows, _ := db.pool.Query(ctx, `WITH due AS (
  SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
  ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = now() + $2::interval, last_attempt_at = now()
FROM due, webhooks w WHERE d.id = due.id AND w.id = d.webhook_id
RETURNING d.id, d.message_id, d.attempts, d.event_type, d.payload, w.url, w.secret`, limit, lease)
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*marketplace.DueDelivery, error) {
		var d marketplace.DueDelivery
		var payload string
		err := row.Scan(&d.ID, &d.MessageID, &d.Attempt, &d.EventType, &payload, &d.URL, &d.Secret)
		d.Payload = []byte(payload)
		return &d, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", err)
	}
	return ds, nil
}

// RecordDeliveryAttempt records the outcome of a claimed attempt: delivered, due again after its
// backoff, or failed for good. An attempt whose claim was lost (its lease lapsed and another sender took
// the delivery, or the webhook was deleted) changes nothing and is marketplace.ErrClaimLost.
func (db *DB) RecordDeliveryAttempt(ctx context.Context, a marketplace.DeliveryAttempt) error {
	status := marketplace.DeliveryPending
	switch {
	case a.Delivered:
		status = marketplace.DeliveryDelivered
	case a.Final:
		status = marketplace.DeliveryFailed
	}
	var code *int
	if a.StatusCode != 0 {
		code = &a.StatusCode
	}
	tag, err := db.pool.Exec(ctx, `UPDATE webhook_deliveries
SET status = $3, last_status_code = $4, last_error = $5, next_attempt_at = now() + $6::interval,
    delivered_at = CASE WHEN $3 = 'delivered' THEN now() END
WHERE id = $1 AND attempts = $2 AND status = 'pending'`, a.DeliveryID, a.Attempt, status, code, a.Error, a.RetryAfter)
	if err != nil {
		return fmt.Errorf("record attempt %d of webhook delivery %d: %w", a.Attempt, a.DeliveryID, err)
	} else if tag.RowsAffected() == 0 {
		return fmt.Errorf("record attempt %d of webhook delivery %d: %w", a.Attempt, a.DeliveryID, marketplace.ErrClaimLost)
	}
	return nil
}
