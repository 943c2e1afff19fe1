package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// CreateToken stores one more token of a user, by its hash. The user's row lock makes the count and the
// insert one step, so MaxTokensPerUser holds under concurrent rotations.
func (db *DB) CreateToken(ctx context.Context, userID int64, tokenHash []byte) (*marketplace.Token, error) {
	t := &marketplace.Token{UserID: userID}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM tokens WHERE user_id = $1`, userID).Scan(&n); err != nil {
			return fmt.Errorf("count tokens of user %d: %w", userID, err)
		}
		if n >= marketplace.MaxTokensPerUser {
			return marketplace.Errorf(marketplace.ECONFLICT,
				"user %d has %d tokens, the most a user may hold; revoke one first (DELETE /api/users/%d/tokens/{tokenID})",
				userID, n, userID)
		}
		return tx.QueryRow(ctx, `INSERT INTO tokens (user_id, hash) VALUES ($1, $2) RETURNING id, created_at`,
			userID, tokenHash).Scan(&t.ID, &t.CreatedAt)
	})
	if err != nil {
		if marketplace.ErrorCode(err) != marketplace.EINTERNAL {
			return nil, err
		}
		return nil, fmt.Errorf("create token of user %d: %w", userID, err)
	}
	return t, nil
}

// FindTokens lists a user's tokens by id (at most MaxTokensPerUser); another user's are not found.
func (db *DB) FindTokens(ctx context.Context, userID int64) ([]*marketplace.Token, error) {
	if _, err := db.FindUserByID(ctx, userID); err != nil {
		return nil, err
	}
	rows, _ := db.pool.Query(ctx, `SELECT id, user_id, created_at, last_used_at FROM tokens WHERE user_id = $1 ORDER BY id`, userID)
	tokens, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*marketplace.Token, error) {
		var t marketplace.Token
		return &t, row.Scan(&t.ID, &t.UserID, &t.CreatedAt, &t.LastUsedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("find tokens of user %d: %w", userID, err)
	}
	return tokens, nil
}

// DeleteToken revokes one of a user's tokens. Once it returns, the token authenticates nothing: there
// is no cache of valid tokens anywhere to outlive the row.
func (db *DB) DeleteToken(ctx context.Context, userID, tokenID int64) error {
	if !marketplace.CallerFrom(ctx).Owns(userID) {
		return notFound("user", userID)
	}
	tag, err := db.pool.Exec(ctx, `DELETE FROM tokens WHERE id = $1 AND user_id = $2`, tokenID, userID)
	if err != nil {
		return fmt.Errorf("revoke token %d of user %d: %w", tokenID, userID, err)
	} else if tag.RowsAffected() == 0 {
		return notFound("token", tokenID)
	}
	return nil
}
