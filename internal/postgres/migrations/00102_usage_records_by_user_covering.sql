-- +goose Up
-- A consumer's statement sums every record of the range on every page (its totals) and walks them in id
-- order to the page: with what it reads in the index, both are index-only scans of the consumer's entries
-- instead of a visit to a heap page per record (a consumer's records are spread over the whole table, as
-- they were written over time). The columns it carries never change once a record is written, except
-- ended_at when it closes: metering (amount, metered_at) and the close (invoiced_*) stay HOT updates.
CREATE INDEX usage_records_by_user_covering ON usage_records (user_id, id)
    INCLUDE (deployment_id, application_id, hourly_rate, started_at, ended_at);
DROP INDEX usage_records_by_user;

-- +goose Down
CREATE INDEX usage_records_by_user ON usage_records (user_id, id);
DROP INDEX usage_records_by_user_covering;
