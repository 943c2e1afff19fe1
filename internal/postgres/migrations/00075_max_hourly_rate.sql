-- +goose Up
-- The highest rate an automatic upgrade may move a deployment to; NULL: the rate it runs at.
ALTER TABLE deployments ADD COLUMN max_hourly_rate numeric(18,6) CHECK (max_hourly_rate >= 0);

-- +goose Down
ALTER TABLE deployments DROP COLUMN max_hourly_rate;
