-- +goose Up
-- An application its publisher deleted while deployments of it were live is retired: deleted_at is set
-- (it leaves the catalog and its counts) and retired_at too (it stays readable by id for the deployments
-- that still run it, and takes no new installs).
ALTER TABLE applications ADD COLUMN retired_at timestamptz;

-- Quotas count a user's live deployments under a lock on the user: this keeps the count to the live ones.
CREATE INDEX deployments_live_by_consumer ON deployments (consumer_id) WHERE status <> 'uninstalled';

-- +goose Down
DROP INDEX deployments_live_by_consumer;
ALTER TABLE applications DROP COLUMN retired_at;
