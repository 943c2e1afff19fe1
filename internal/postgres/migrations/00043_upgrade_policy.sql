-- +goose Up
-- A deployment may follow its application's versions by itself (OLM's automatic approval); manual is the
-- default.
ALTER TABLE deployments ADD COLUMN upgrade_policy text NOT NULL DEFAULT 'manual' CHECK (upgrade_policy IN ('manual', 'auto'));

-- +goose Down
ALTER TABLE deployments DROP COLUMN upgrade_policy;
