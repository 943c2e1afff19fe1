-- +goose Up
-- Upgrades and rollbacks: a deployment moves installed -> upgrading -> installed, towards a target version
-- and inputs; each revision it ran is kept. A deployment's bill is split at every completed upgrade, so it
-- has one open usage record at a time rather than one record in all.
ALTER TABLE deployments DROP CONSTRAINT deployments_status_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_status_check CHECK (status IN
    ('pending', 'installing', 'installed', 'failed', 'uninstalling', 'uninstalled', 'upgrading'));
ALTER TABLE deployments ADD COLUMN target_version int, ADD COLUMN target_inputs jsonb;

ALTER TABLE usage_records DROP CONSTRAINT usage_records_deployment_id_key;
CREATE UNIQUE INDEX usage_records_open_per_deployment ON usage_records (deployment_id) WHERE ended_at IS NULL;
CREATE INDEX usage_records_by_deployment ON usage_records (deployment_id);

CREATE TABLE deployment_revisions (
    deployment_id bigint      NOT NULL REFERENCES deployments (id),
    revision      int         NOT NULL,
    version       int         NOT NULL,
    inputs        jsonb       NOT NULL,
    chart_version text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (deployment_id, revision)
);
INSERT INTO deployment_revisions (deployment_id, revision, version, inputs, chart_version, created_at)
SELECT id, 1, version, inputs, chart_version, updated_at FROM deployments WHERE status IN ('installed', 'uninstalling', 'uninstalled');

-- +goose Down
DROP TABLE deployment_revisions;
DROP INDEX usage_records_by_deployment;
DROP INDEX usage_records_open_per_deployment;
ALTER TABLE usage_records ADD CONSTRAINT usage_records_deployment_id_key UNIQUE (deployment_id);
ALTER TABLE deployments DROP COLUMN target_version, DROP COLUMN target_inputs;
ALTER TABLE deployments DROP CONSTRAINT deployments_status_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_status_check CHECK (status IN
    ('pending', 'installing', 'installed', 'failed', 'uninstalling', 'uninstalled'));
