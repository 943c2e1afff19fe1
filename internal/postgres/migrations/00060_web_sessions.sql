-- +goose Up
-- The storefront's sign-in sessions. A browser holds a random session id in an HttpOnly cookie; only its
-- SHA-256 is stored here, so a leaked table signs nobody in. A user's session belongs to the token it was
-- opened with: revoking that token deletes the row (ON DELETE CASCADE), so the session ends at once on
-- every replica. An operator's session (user_id NULL) keeps the hash of the operator token it was opened
-- with, and the storefront refuses it once the configured token differs.
CREATE TABLE web_sessions (
    id_hash             bytea PRIMARY KEY,
    user_id             bigint REFERENCES users (id) ON DELETE CASCADE,
    token_id            bigint REFERENCES tokens (id) ON DELETE CASCADE,
    operator_token_hash bytea,
    csrf_token          text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    CHECK ((user_id IS NOT NULL AND token_id IS NOT NULL) OR operator_token_hash IS NOT NULL)
);
CREATE INDEX web_sessions_by_token ON web_sessions (token_id);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);

-- +goose Down
DROP TABLE web_sessions;
