-- +goose Up
-- One row: this marketplace's identity. The Kubernetes provider labels what it creates with it, so a
-- namespace made by another marketplace (or by hand) with a name like ours is never adopted or deleted.
CREATE TABLE instance (
    id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    singleton boolean NOT NULL DEFAULT true UNIQUE CHECK (singleton)
);
INSERT INTO instance DEFAULT VALUES;

-- When a failed install's resources were removed; NULL while removal is still owed.
ALTER TABLE deployments ADD COLUMN cleaned_up_at timestamptz;
CREATE INDEX deployments_cleanup_owed ON deployments (id) WHERE status = 'failed' AND cleaned_up_at IS NULL;

-- +goose Down
DROP INDEX deployments_cleanup_owed;
ALTER TABLE deployments DROP COLUMN cleaned_up_at;
DROP TABLE instance;
