-- +goose Up
-- Signed charts: a publisher's public OpenPGP keys, and what each chart version's provenance was found
-- to be at publish (verified or not, by which key, the archive digest checked, why not).
CREATE TABLE signing_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fingerprint text        NOT NULL,
    identities  text[]      NOT NULL DEFAULT '{}',
    armored     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, fingerprint)
);
ALTER TABLE application_versions ADD COLUMN signature jsonb;

-- +goose Down
ALTER TABLE application_versions DROP COLUMN signature;
DROP TABLE signing_keys;
