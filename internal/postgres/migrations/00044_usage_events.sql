-- +goose Up
-- A usage record links to the audit events that opened and closed it (the deployment becoming installed,
-- its uninstall being requested, an upgrade completing). Not indexed: the metering pass stays HOT.
ALTER TABLE usage_records ADD COLUMN opened_event_id bigint, ADD COLUMN closed_event_id bigint;

-- +goose Down
ALTER TABLE usage_records DROP COLUMN opened_event_id, DROP COLUMN closed_event_id;
