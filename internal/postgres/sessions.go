package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// SessionsPerUser is how many storefront sessions one user (or the operator) keeps: a new one past it
// ends the oldest, so signing in in a loop cannot grow the table without bound.
const SessionsPerUser = 10

// CreateSession opens a storefront session for the owner of a token, tied to that token so that revoking
// it ends the session. Expired sessions are swept on the way, so the table holds live ones only, and the
// user's sessions past SessionsPerUser end, the oldest first.
func (db *DB) CreateSession(ctx context.Context, idHash, tokenHash []byte, s *marketplace.Session) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `WITH swept AS (DELETE FROM web_sessions WHERE expires_at < now())
INSERT INTO web_sessions (id_hash, user_id, token_id, csrf_token, expires_at)
SELECT $1, user_id, id, $3, $4 FROM tokens WHERE hash = $2
RETURNING user_id`, idHash, tokenHash, s.CSRFToken, s.ExpiresAt).Scan(&s.UserID)
		if errors.Is(err, pgx.ErrNoRows) {
			return marketplace.Errorf(marketplace.EUNAUTHORIZED, "this token is not valid: paste the token shown when your user was created")
		} else if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE user_id = $1 AND id_hash NOT IN (
  SELECT id_hash FROM web_sessions WHERE user_id = $1 ORDER BY expires_at DESC, id_hash LIMIT $2)`, s.UserID, SessionsPerUser); err != nil {
			return fmt.Errorf("end sessions past %d: %w", SessionsPerUser, err)
		}
		return nil
	})
}

// CreateOperatorSession opens the operator's session; the operator's sessions past SessionsPerUser end.
func (db *DB) CreateOperatorSession(ctx context.Context, idHash []byte, s *marketplace.Session) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO web_sessions (id_hash, operator_token_hash, csrf_token, expires_at)
VALUES ($1, $2, $3, $4)`, idHash, s.OperatorTokenHash, s.CSRFToken, s.ExpiresAt); err != nil {
			return fmt.Errorf("create operator session: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE operator_token_hash IS NOT NULL AND id_hash NOT IN (
  SELECT id_hash FROM web_sessions WHERE operator_token_hash IS NOT NULL ORDER BY expires_at DESC, id_hash LIMIT $1)`, SessionsPerUser); err != nil {
			return fmt.Errorf("end operator sessions past %d: %w", SessionsPerUser, err)
		}
		return nil
	})
}

// FindSession returns a live session by the hash of its id: one lookup through the primary key.
func (db *DB) FindSession(ctx context.Context, idHash []byte) (*marketplace.Session, error) {
	var s marketplace.Session
	var userID *int64
	err := db.pool.QueryRow(ctx, `SELECT user_id, operator_token_hash, csrf_token, expires_at FROM web_sessions
WHERE id_hash = $1 AND expires_at > now()`, idHash).Scan(&userID, &s.OperatorTokenHash, &s.CSRFToken, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, marketplace.Errorf(marketplace.EUNAUTHORIZED, "the session has ended: sign in again")
	} else if err != nil {
		return nil, fmt.Errorf("find session: %w", err)
	}
	if userID != nil {
		s.UserID = *userID
	}
	return &s, nil
}

// DeleteSession ends a session (signing out).
func (db *DB) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM web_sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
