-- +goose Up
-- The rate a deployment is billed at is the application's rate when the install was accepted, not when a
-- worker finished it: a publisher's change between the two does not reach an accepted deployment.
ALTER TABLE deployments ADD COLUMN hourly_rate numeric(18,6);
UPDATE deployments d SET hourly_rate = a.hourly_rate FROM applications a WHERE a.id = d.application_id;
ALTER TABLE deployments ALTER COLUMN hourly_rate SET NOT NULL;

-- The counting triggers fire on an UPDATE only when a counted column really changes, so updating an
-- application's name or rate neither locks nor rewrites the count rows.
DROP TRIGGER applications_count ON applications;
DROP TRIGGER applications_blocks ON applications;
CREATE TRIGGER applications_count AFTER INSERT OR DELETE ON applications
    FOR EACH ROW EXECUTE FUNCTION application_counts_track();
CREATE TRIGGER applications_count_update AFTER UPDATE ON applications FOR EACH ROW
    WHEN (OLD.publisher_id IS DISTINCT FROM NEW.publisher_id OR OLD.deployment_type IS DISTINCT FROM NEW.deployment_type
          OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION application_counts_track();
CREATE TRIGGER applications_blocks AFTER INSERT OR DELETE ON applications
    FOR EACH ROW EXECUTE FUNCTION application_blocks_track();
CREATE TRIGGER applications_blocks_update AFTER UPDATE ON applications FOR EACH ROW
    WHEN (OLD.publisher_id IS DISTINCT FROM NEW.publisher_id OR OLD.deployment_type IS DISTINCT FROM NEW.deployment_type
          OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION application_blocks_track();

-- +goose Down
DROP TRIGGER applications_count_update ON applications;
DROP TRIGGER applications_blocks_update ON applications;
DROP TRIGGER applications_count ON applications;
DROP TRIGGER applications_blocks ON applications;
CREATE TRIGGER applications_count AFTER INSERT OR DELETE OR UPDATE OF publisher_id, deployment_type, deleted_at
    ON applications FOR EACH ROW EXECUTE FUNCTION application_counts_track();
CREATE TRIGGER applications_blocks AFTER INSERT OR DELETE OR UPDATE OF publisher_id, deployment_type, deleted_at
    ON applications FOR EACH ROW EXECUTE FUNCTION application_blocks_track();
ALTER TABLE deployments DROP COLUMN hourly_rate;
