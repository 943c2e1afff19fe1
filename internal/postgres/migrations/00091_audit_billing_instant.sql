-- +goose Up
-- A status change that opens or closes a usage record (installed, uninstalling, an upgrade completing)
-- happens at the billing clock's instant, and its audit event says so: the store sets marketplace.at for
-- the transaction, and the record's start or end is that same instant. now() is the start of the
-- transaction, milliseconds before the store reads its clock, so a bill recomputed from the audit trail
-- could differ from the record's by a whole second (rate / 3600) where the two straddled a second.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_deployment_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_events (at, actor, owner_id, action, resource, detail)
    VALUES (coalesce(nullif(current_setting('marketplace.at', true), '')::timestamptz, now()),
            'marketplace', NEW.consumer_id, 'deployment.' || NEW.status, 'deployment:' || NEW.id,
            jsonb_build_object('from', CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END, 'to', NEW.status,
                               'attempt', NEW.attempts, 'version', NEW.version,
                               'failure_reason', nullif(NEW.failure_reason, ''),
                               'application_id', NEW.application_id, 'project_id', NEW.project_id));
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_deployment_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_events (actor, owner_id, action, resource, detail)
    VALUES ('marketplace', NEW.consumer_id, 'deployment.' || NEW.status, 'deployment:' || NEW.id,
            jsonb_build_object('from', CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END, 'to', NEW.status,
                               'attempt', NEW.attempts, 'version', NEW.version,
                               'failure_reason', nullif(NEW.failure_reason, ''),
                               'application_id', NEW.application_id, 'project_id', NEW.project_id));
    RETURN NULL;
END $$;
-- +goose StatementEnd
