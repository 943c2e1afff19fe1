-- +goose Up
-- A user holds several tokens, so one can be rotated in before the old one is revoked. Revoking deletes
-- the row: authentication looks the hash up on every request, through the unique index, so a revoked token
-- is refused at once by every replica.
CREATE TABLE tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id),
    hash         bytea       NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Written at most once a minute per token, so authentication stays a read almost always.
    last_used_at timestamptz
);
CREATE INDEX tokens_by_user ON tokens (user_id, id);

INSERT INTO tokens (user_id, hash, created_at) SELECT id, token_hash, created_at FROM users ORDER BY id;
ALTER TABLE users DROP COLUMN token_hash;

-- +goose Down
ALTER TABLE users ADD COLUMN token_hash bytea;
UPDATE users u SET token_hash = (SELECT hash FROM tokens t WHERE t.user_id = u.id ORDER BY id LIMIT 1);
-- A user whose every token was revoked gets one nobody knows.
UPDATE users SET token_hash = sha256(('revoked ' || id || ' ' || random())::bytea) WHERE token_hash IS NULL;
ALTER TABLE users ALTER COLUMN token_hash SET NOT NULL, ADD UNIQUE (token_hash);
DROP TABLE tokens;
