-- +goose Up
-- An application has versions; its row keeps the latest one's spec (what the catalog shows), and a
-- deployment pins the version it was accepted with, so nothing a publisher does later changes what it
-- installs.
CREATE TABLE application_versions (
    application_id bigint        NOT NULL REFERENCES applications (id),
    version        int           NOT NULL CHECK (version >= 1),
    hourly_rate    numeric(18,6) NOT NULL CHECK (hourly_rate >= 0),
    deployment     jsonb         NOT NULL,
    inputs         jsonb         NOT NULL DEFAULT '[]',
    changelog      text          NOT NULL DEFAULT '',
    deprecated_at  timestamptz,
    created_at     timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, version)
);
INSERT INTO application_versions (application_id, version, hourly_rate, deployment, inputs, created_at)
SELECT id, 1, hourly_rate, deployment, inputs, updated_at FROM applications;
ALTER TABLE applications ADD COLUMN version int NOT NULL DEFAULT 1;
ALTER TABLE deployments ADD COLUMN version int NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE deployments DROP COLUMN version;
ALTER TABLE applications DROP COLUMN version;
DROP TABLE application_versions;
