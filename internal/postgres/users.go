package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// CreateUser stores u with the hash of its first token, in one statement, and fills in its id and
// creation time.
func (db *DB) CreateUser(ctx context.Context, u *marketplace.User, tokenHash []byte) error {
	err := db.pool.QueryRow(ctx, `WITH u AS (INSERT INTO users (name) VALUES ($1) RETURNING id, created_at),
t AS (INSERT INTO tokens (user_id, hash, created_at) SELECT id, $2, created_at FROM u)
SELECT id, created_at FROM u`, u.Name, tokenHash).Scan(&u.ID, &u.CreatedAt)
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

// FindUserByTokenHash returns the owner of a token; it is how every request is authenticated. It is one
// lookup through the unique index on the hash, also for an unknown token, and records the use at most
// once a minute.
func (db *DB) FindUserByTokenHash(ctx context.Context, tokenHash []byte) (*marketplace.User, error) {
	var u marketplace.User
	err := db.pool.QueryRow(ctx, `WITH t AS (SELECT id, user_id, last_used_at FROM tokens WHERE hash = $1),
used AS (UPDATE tokens SET last_used_at = now() FROM t
         WHERE tokens.id = t.id AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'))
SELECT u.id, u.name, u.created_at FROM t JOIN users u ON u.id = t.user_id`, tokenHash).
		Scan(&u.ID, &u.Name, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, marketplace.Errorf(marketplace.EUNAUTHORIZED, "the bearer token is not valid")
	} else if err != nil {
		return nil, fmt.Errorf("find user by token: %w", err)
	}
	return &u, nil
}

// FindUserByID returns a user the caller may see: itself, or anyone for the operator.
func (db *DB) FindUserByID(ctx context.Context, id int64) (*marketplace.User, error) {
	if !marketplace.CallerFrom(ctx).Owns(id) {
		return nil, notFound("user", id)
	}
	var u marketplace.User
	err := db.pool.QueryRow(ctx, `SELECT id, name, created_at FROM users WHERE id = $1`, id).
		Scan(&u.ID, &u.Name, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("user", id)
	} else if err != nil {
		return nil, fmt.Errorf("find user %d: %w", id, err)
	}
	return &u, nil
}

// FindUsers lists a page of every user for the operator, and only the caller for anyone else.
func (db *DB) FindUsers(ctx context.Context, p marketplace.Page) ([]*marketplace.User, int, error) {
	var total int
	users, err := findPage(ctx, db.pool, `SELECT count(*) FROM users WHERE $1 = 0 OR id = $1`,
		`SELECT id, name, created_at FROM users WHERE $1 = 0 OR id = $1 ORDER BY id`, []any{scopeUser(ctx)}, p,
		func(row pgx.Row) (*marketplace.User, error) {
			var u marketplace.User
			return &u, row.Scan(&u.ID, &u.Name, &u.CreatedAt)
		}, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("find users: %w", err)
	}
	return users, total, nil
}

// lockUser takes a user's row for the rest of tx, so that counting what the user owns and adding to it
// are one step: two creations for the same user wait for each other, and a quota cannot be overrun by
// requests racing on several replicas. FOR NO KEY UPDATE leaves the foreign-key checks of other inserts
// referencing the user unblocked. A user the caller may not act for is not found.
func lockUser(ctx context.Context, tx pgx.Tx, userID int64) error {
	if !marketplace.CallerFrom(ctx).Owns(userID) {
		return notFound("user", userID)
	}
	err := tx.QueryRow(ctx, `SELECT true FROM users WHERE id = $1 FOR NO KEY UPDATE`, userID).Scan(new(bool))
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound("user", userID)
	} else if err != nil {
		return fmt.Errorf("lock user %d: %w", userID, err)
	}
	return nil
}

// checkQuota counts, with countSQL (whose one parameter is the user id), what a locked user owns, and
// refuses one more when limit (not 0) is reached. setting names what the operator changes to allow more.
func checkQuota(ctx context.Context, tx pgx.Tx, userID int64, limit int, what, setting, countSQL string) error {
	if limit <= 0 {
		return nil
	}
	var n int
	if err := tx.QueryRow(ctx, countSQL, userID).Scan(&n); err != nil {
		return fmt.Errorf("count %s of user %d: %w", what, userID, err)
	}
	if n >= limit {
		return marketplace.Errorf(marketplace.ECONFLICT,
			"user %d has %d %s, the most one user may have (%s=%d); remove one first, or ask the operator to raise %s",
			userID, n, what, setting, limit, setting)
	}
	return nil
}
