-- +goose Up
-- A user's statement leaves out its organizations' records (organization_id IS NULL): the covering index
-- of 00102 carries the column too, so the statement is still read from the index alone.
CREATE INDEX usage_records_by_user_covering_org ON usage_records (user_id, id)
    INCLUDE (deployment_id, application_id, hourly_rate, started_at, ended_at, organization_id);
DROP INDEX usage_records_by_user_covering;
ALTER INDEX usage_records_by_user_covering_org RENAME TO usage_records_by_user_covering;

-- +goose Down
CREATE INDEX usage_records_by_user_covering_old ON usage_records (user_id, id)
    INCLUDE (deployment_id, application_id, hourly_rate, started_at, ended_at);
DROP INDEX usage_records_by_user_covering;
ALTER INDEX usage_records_by_user_covering_old RENAME TO usage_records_by_user_covering;
