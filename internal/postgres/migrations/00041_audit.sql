-- +goose Up
-- The audit trail: every change, appended, never updated. API requests that change something are
-- written by the API; every status a deployment takes is written by a trigger, so no transition of any
-- worker, reconciler or request can be missed.
CREATE TABLE audit_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    -- who: user:<id>, operator, anonymous, or marketplace (a worker, the reconciler, a request's effect)
    actor      text        NOT NULL,
    -- whose resource it is: the user who sees the event (the operator sees all); NULL for the operator only
    owner_id   bigint,
    request_id text        NOT NULL DEFAULT '',
    action     text        NOT NULL,
    resource   text        NOT NULL DEFAULT '',
    detail     jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_by_owner ON audit_events (owner_id, id);
CREATE INDEX audit_events_by_resource ON audit_events (resource, id);

-- +goose StatementBegin
CREATE FUNCTION audit_deployment_status() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER deployments_audit_insert AFTER INSERT ON deployments
    FOR EACH ROW EXECUTE FUNCTION audit_deployment_status();
CREATE TRIGGER deployments_audit_status AFTER UPDATE ON deployments
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION audit_deployment_status();

-- +goose Down
DROP TRIGGER deployments_audit_status ON deployments;
DROP TRIGGER deployments_audit_insert ON deployments;
DROP FUNCTION audit_deployment_status();
DROP TABLE audit_events;
