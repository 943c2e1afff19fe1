-- +goose Up
-- Targets: where deployments run, a Kubernetes cluster (kind k8s) or a VM host (kind vm). A registered
-- cluster's kubeconfig is sealed (AES-GCM, package secretbox) in credentials; the default targets come
-- from the processes' own KUBECONFIG and LIBVIRT_URI (from_environment) and hold none. Health and a VM
-- host's size are what a worker last saw. A removed target keeps its row (removed_at), so the
-- deployments it ran still name it; its name is free again and its credentials are gone.
CREATE TABLE targets (
    id                bigserial        PRIMARY KEY,
    kind              text             NOT NULL CHECK (kind IN ('k8s', 'vm')),
    name              text             NOT NULL,
    labels            jsonb            NOT NULL DEFAULT '{}',
    address           text             NOT NULL DEFAULT '',
    credentials       bytea,
    from_environment  boolean          NOT NULL DEFAULT false,
    reachable         boolean          NOT NULL DEFAULT false,
    version           text             NOT NULL DEFAULT '',
    health_error      text             NOT NULL DEFAULT '',
    checked_at        timestamptz,
    cpus              int              CHECK (cpus >= 0),
    memory_mib        bigint           CHECK (memory_mib >= 0),
    cpu_overcommit    double precision CHECK (cpu_overcommit > 0),
    memory_overcommit double precision CHECK (memory_overcommit > 0),
    created_at        timestamptz      NOT NULL DEFAULT now(),
    removed_at        timestamptz,
    CHECK (removed_at IS NULL OR credentials IS NULL)
);
CREATE UNIQUE INDEX targets_kind_name ON targets (kind, name) WHERE removed_at IS NULL;

-- Each kind's default exists from the start: the deployments made before targets run there.
INSERT INTO targets (kind, name, from_environment) VALUES ('k8s', 'default', true), ('vm', 'default', true);

-- A deployment's target, for life. One inserted without one lands on its kind's default.
ALTER TABLE deployments ADD COLUMN target_id bigint REFERENCES targets (id);
UPDATE deployments d SET target_id = t.id FROM targets t WHERE t.kind = d.type AND t.name = 'default' AND t.removed_at IS NULL;
ALTER TABLE deployments ALTER COLUMN target_id SET NOT NULL;

-- +goose StatementBegin
CREATE FUNCTION deployments_default_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.target_id IS NULL THEN
        SELECT id INTO NEW.target_id FROM targets WHERE kind = NEW.type AND name = 'default' AND removed_at IS NULL;
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER deployments_default_target BEFORE INSERT ON deployments
    FOR EACH ROW WHEN (NEW.target_id IS NULL) EXECUTE FUNCTION deployments_default_target();

-- What runs on a target (its removal's check, its capacity's sum).
CREATE INDEX deployments_live_by_target ON deployments (target_id)
    WHERE status <> 'uninstalled' AND (status <> 'failed' OR cleaned_up_at IS NULL);

-- +goose Down
DROP INDEX deployments_live_by_target;
DROP TRIGGER deployments_default_target ON deployments;
DROP FUNCTION deployments_default_target();
ALTER TABLE deployments DROP COLUMN target_id;
DROP TABLE targets;
