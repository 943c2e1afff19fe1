-- +goose Up
CREATE TABLE users (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL,
    token_hash bytea       NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE applications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    publisher_id    bigint        NOT NULL REFERENCES users (id),
    name            text          NOT NULL,
    description     text          NOT NULL DEFAULT '',
    hourly_rate     numeric(18,6) NOT NULL CHECK (hourly_rate >= 0),
    deployment_type text          NOT NULL CHECK (deployment_type IN ('k8s', 'vm')),
    deployment      jsonb         NOT NULL,
    inputs          jsonb         NOT NULL DEFAULT '[]',
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    -- Deleted applications stay for the history of their deployments and usage records.
    deleted_at      timestamptz
);
CREATE INDEX applications_catalog ON applications (id) WHERE deleted_at IS NULL;
CREATE INDEX applications_by_publisher ON applications (publisher_id, id) WHERE deleted_at IS NULL;
CREATE INDEX applications_by_type ON applications (deployment_type, id) WHERE deleted_at IS NULL;

-- The catalog's total_items without counting the catalog on every request: a trigger keeps one row per
-- (publisher, type), so any filter's total is a sum over a handful of rows.
CREATE TABLE application_counts (
    publisher_id    bigint NOT NULL,
    deployment_type text   NOT NULL,
    n               bigint NOT NULL,
    PRIMARY KEY (publisher_id, deployment_type)
);

-- +goose StatementBegin
CREATE FUNCTION application_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.deleted_at IS NULL THEN
        UPDATE application_counts SET n = n - 1
        WHERE publisher_id = OLD.publisher_id AND deployment_type = OLD.deployment_type;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.deleted_at IS NULL THEN
        INSERT INTO application_counts (publisher_id, deployment_type, n)
        VALUES (NEW.publisher_id, NEW.deployment_type, 1)
        ON CONFLICT (publisher_id, deployment_type) DO UPDATE SET n = application_counts.n + 1;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER applications_count AFTER INSERT OR DELETE OR UPDATE OF publisher_id, deployment_type, deleted_at
    ON applications FOR EACH ROW EXECUTE FUNCTION application_counts_track();

CREATE TABLE projects (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id),
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX projects_by_user ON projects (user_id, id) WHERE deleted_at IS NULL;

CREATE TABLE deployments (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id   bigint      NOT NULL REFERENCES applications (id),
    project_id       bigint      NOT NULL REFERENCES projects (id),
    consumer_id      bigint      NOT NULL REFERENCES users (id),
    type             text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN
                         ('pending', 'installing', 'installed', 'failed', 'uninstalling', 'uninstalled')),
    inputs           jsonb       NOT NULL DEFAULT '{}',
    namespace        text        NOT NULL DEFAULT '',
    release_name     text        NOT NULL DEFAULT '',
    chart_version    text        NOT NULL DEFAULT '',
    vm_name          text        NOT NULL DEFAULT '',
    ip_address       text        NOT NULL DEFAULT '',
    failure_reason   text        NOT NULL DEFAULT '',
    -- attempts counts the claims of the current operation; a claim holds the deployment until
    -- lease_expires_at, and the next attempt is due at next_attempt_at.
    attempts         int         NOT NULL DEFAULT 0,
    lease_expires_at timestamptz,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deployments_by_consumer ON deployments (consumer_id, id);
CREATE INDEX deployments_by_project ON deployments (project_id, id);
CREATE INDEX deployments_by_application ON deployments (application_id) WHERE status <> 'uninstalled';
CREATE INDEX deployments_owed ON deployments (next_attempt_at)
    WHERE status IN ('pending', 'installing', 'uninstalling');

-- usage_amount is the one billing formula: the rate times the whole seconds used, per hour, to 6 places.
CREATE FUNCTION usage_amount(rate numeric, started timestamptz, ended timestamptz) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN round(rate * greatest(floor(extract(epoch FROM ended - started)), 0) / 3600, 6);

CREATE TABLE usage_records (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment_id  bigint        NOT NULL UNIQUE REFERENCES deployments (id),
    user_id        bigint        NOT NULL REFERENCES users (id),
    application_id bigint        NOT NULL REFERENCES applications (id),
    hourly_rate    numeric(18,6) NOT NULL,
    started_at     timestamptz   NOT NULL DEFAULT now(),
    ended_at       timestamptz,
    amount         numeric(30,6) NOT NULL DEFAULT 0,
    metered_at     timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX usage_records_by_user ON usage_records (user_id, id);
CREATE INDEX usage_records_open ON usage_records (id) WHERE ended_at IS NULL;

-- +goose Down
DROP TABLE usage_records, deployments, projects, application_counts, applications, users;
DROP FUNCTION usage_amount, application_counts_track;
