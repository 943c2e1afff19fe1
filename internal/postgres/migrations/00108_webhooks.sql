-- +goose Up
-- Webhooks: an owner registers a URL for some event types; every event of those types writes one
-- delivery per matching webhook into the outbox (webhook_deliveries) from a trigger, in the transaction
-- of the change itself, so an event is never lost (it commits with its cause) nor invented (a rolled
-- back change takes its deliveries with it). Senders claim due deliveries with FOR UPDATE SKIP LOCKED.
CREATE TABLE webhooks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Whose it is: a user. An organization's owner column joins this one later, with a CHECK that
    -- exactly one of them is set, and webhook_enqueue matches either.
    owner_user_id bigint      NOT NULL REFERENCES users (id),
    url           text        NOT NULL,
    events        text[]      NOT NULL,
    -- the signing key (Standard Webhooks), shown once at registration as whsec_<base64>
    secret        bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_by_owner ON webhooks (owner_user_id, id);

CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id       bigint      NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- the webhook-id header: the same on every attempt, so a receiver drops a repeated delivery
    message_id       text        NOT NULL UNIQUE DEFAULT 'msg_' || replace(gen_random_uuid()::text, '-', ''),
    event_type       text        NOT NULL,
    -- the exact body every attempt sends and signs
    payload          text        NOT NULL,
    occurred_at      timestamptz NOT NULL,
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         int         NOT NULL DEFAULT 0,
    -- when a sender may take it: the next retry, or, while an attempt holds it, the end of its lease
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    last_status_code int,
    last_error       text        NOT NULL DEFAULT '',
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);

-- webhook_time is how payloads write an instant: RFC 3339 in UTC, to the microsecond.
CREATE FUNCTION webhook_time(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- webhook_enqueue writes one delivery of an event to each webhook of its owner that subscribes to it.
CREATE FUNCTION webhook_enqueue(for_user bigint, kind text, happened timestamptz, detail jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO webhook_deliveries (webhook_id, event_type, payload, occurred_at)
    SELECT w.id, kind, jsonb_build_object('type', kind, 'timestamp', webhook_time(happened), 'data', detail)::text, happened
    FROM webhooks w WHERE w.owner_user_id = for_user AND kind = ANY (w.events)
$$;

-- Every status a deployment takes (written beside its audit event, by the same kind of trigger, so no
-- transition of any worker, reconciler or request is missed), and an upgrade or rollback that failed for
-- good: upgrading -> installed with a failure reason (the old revision runs on).
-- +goose StatementBegin
CREATE FUNCTION webhook_deployment_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    happened timestamptz := coalesce(nullif(current_setting('marketplace.at', true), '')::timestamptz, now());
BEGIN
    PERFORM webhook_enqueue(NEW.consumer_id, 'deployment.status_changed', happened, jsonb_build_object(
        'deployment_id', NEW.id, 'project_id', NEW.project_id, 'application_id', NEW.application_id,
        'from', CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END, 'to', NEW.status,
        'version', NEW.version, 'attempt', NEW.attempts, 'failure_reason', nullif(NEW.failure_reason, '')));
    IF TG_OP = 'UPDATE' AND OLD.status = 'upgrading' AND NEW.status = 'installed' AND NEW.failure_reason <> '' THEN
        PERFORM webhook_enqueue(NEW.consumer_id, 'upgrade.failed', happened, jsonb_build_object(
            'deployment_id', NEW.id, 'project_id', NEW.project_id, 'application_id', NEW.application_id,
            'version', NEW.version, 'target_version', OLD.target_version, 'failure_reason', NEW.failure_reason));
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER deployments_webhooks_insert AFTER INSERT ON deployments
    FOR EACH ROW EXECUTE FUNCTION webhook_deployment_events();
CREATE TRIGGER deployments_webhooks_status AFTER UPDATE ON deployments
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION webhook_deployment_events();

-- An invoice is issued when its period closes, in the close's transaction.
-- +goose StatementBegin
CREATE FUNCTION webhook_invoice_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_enqueue(NEW.user_id, 'invoice.closed', NEW.issued_at, jsonb_build_object(
        'number', NEW.number, 'user_id', NEW.user_id, 'period', to_char(NEW.period_start AT TIME ZONE 'UTC', 'YYYY-MM'),
        'period_start', webhook_time(NEW.period_start), 'period_end', webhook_time(NEW.period_end),
        'currency', NEW.currency, 'total', NEW.total));
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER invoices_webhooks AFTER INSERT ON invoices
    FOR EACH ROW EXECUTE FUNCTION webhook_invoice_closed();

-- +goose Down
DROP TRIGGER invoices_webhooks ON invoices;
DROP FUNCTION webhook_invoice_closed();
DROP TRIGGER deployments_webhooks_status ON deployments;
DROP TRIGGER deployments_webhooks_insert ON deployments;
DROP FUNCTION webhook_deployment_events();
DROP FUNCTION webhook_enqueue(bigint, text, timestamptz, jsonb);
DROP FUNCTION webhook_time(timestamptz);
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
