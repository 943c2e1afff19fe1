-- +goose Up
-- A sign-in ends the user's sessions past the limit (postgres.SessionsPerUser), oldest first.
CREATE INDEX web_sessions_by_user ON web_sessions (user_id, expires_at);

-- +goose Down
DROP INDEX web_sessions_by_user;
