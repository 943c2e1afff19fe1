-- +goose Up
-- What a version's package says about itself (icon, README rendered and sanitised, maintainers, links),
-- read when it is published: NULL until then. Only an application's page reads it, never the catalog.
ALTER TABLE application_versions ADD COLUMN about jsonb;

-- Icons, re-encoded as PNG and kept under their SHA-256, so every API replica serves them from here and
-- a storefront page never loads an image from elsewhere. Versions share one row per distinct icon.
CREATE TABLE icons (
    sha256     text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    png        bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE icons;
ALTER TABLE application_versions DROP COLUMN about;
