package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// CreateUser stores u with the hash of its token and fills in its id and creation time.
func (db *DB) CreateUser(ctx context.Context, u *marketplace.User, tokenHash []byte) error {
	err := db.pool.QueryRow(ctx,
		`INSERT INTO users (name, token_hash) VALUES ($1, $2) RETURNING id, created_at`,
		u.Name, tokenHash).Scan(&u.ID, &u.CreatedAt)
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

// FindUserByTokenHash returns the owner of a token; it is how every request is authenticated.
func (db *DB) FindUserByTokenHash(ctx context.Context, tokenHash []byte) (*marketplace.User, error) {
	var u marketplace.User
	err := db.pool.QueryRow(ctx, `SELECT id, name, created_at FROM users WHERE token_hash = $1`, tokenHash).
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

// FindUsers lists every user for the operator and only the caller for anyone else.
func (db *DB) FindUsers(ctx context.Context) ([]*marketplace.User, error) {
	rows, _ := db.pool.Query(ctx,
		`SELECT id, name, created_at FROM users WHERE $1 = 0 OR id = $1 ORDER BY id`, scopeUser(ctx))
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*marketplace.User, error) {
		var u marketplace.User
		return &u, row.Scan(&u.ID, &u.Name, &u.CreatedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("find users: %w", err)
	}
	return users, nil
}
