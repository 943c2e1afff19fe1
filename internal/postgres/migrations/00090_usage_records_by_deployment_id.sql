-- +goose Up
-- A deployment's bill is read a page at a time, newest first: the page comes off this index in order
-- instead of sorting every record of the deployment.
CREATE INDEX usage_records_by_deployment_id ON usage_records (deployment_id, id);
DROP INDEX IF EXISTS usage_records_by_deployment;

-- +goose Down
CREATE INDEX usage_records_by_deployment ON usage_records (deployment_id);
DROP INDEX usage_records_by_deployment_id;
