-- +goose Up
-- The metering pass rewrites every open record's amount and metered_at, neither of them indexed: room
-- left in each page lets PostgreSQL update in place (HOT) instead of touching all four indexes.
ALTER TABLE usage_records SET (fillfactor = 50);

-- +goose Down
ALTER TABLE usage_records RESET (fillfactor);
