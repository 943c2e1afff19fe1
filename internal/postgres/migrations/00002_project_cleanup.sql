-- +goose Up
-- When a deleted project's provider resources (its namespace) were removed; NULL while still owed.
ALTER TABLE projects ADD COLUMN resources_removed_at timestamptz;
CREATE INDEX projects_cleanup_owed ON projects (id) WHERE deleted_at IS NOT NULL AND resources_removed_at IS NULL;

-- +goose Down
ALTER TABLE projects DROP COLUMN resources_removed_at;
