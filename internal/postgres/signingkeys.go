package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

const signingKeyColumns = `id, user_id, fingerprint, identities, armored, created_at`

func scanSigningKey(row pgx.Row) (*marketplace.SigningKey, error) {
	var k marketplace.SigningKey
	return &k, row.Scan(&k.ID, &k.UserID, &k.Fingerprint, &k.Identities, &k.Armored, &k.CreatedAt)
}

// CreateSigningKey stores one more public key of a user (the user itself or the operator), at most
// MaxSigningKeys of them; a key registered twice is refused.
func (db *DB) CreateSigningKey(ctx context.Context, k *marketplace.SigningKey) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, k.UserID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM signing_keys WHERE user_id = $1`, k.UserID).Scan(&n); err != nil {
			return fmt.Errorf("count signing keys of user %d: %w", k.UserID, err)
		}
		if n >= marketplace.MaxSigningKeys {
			return marketplace.Errorf(marketplace.ECONFLICT, "user %d has %d signing keys, the most a user may register; delete one first", k.UserID, n)
		}
		created, err := scanSigningKey(tx.QueryRow(ctx, `INSERT INTO signing_keys (user_id, fingerprint, identities, armored)
VALUES ($1, $2, coalesce($3::text[], '{}'), $4) ON CONFLICT (user_id, fingerprint) DO NOTHING RETURNING `+signingKeyColumns,
			k.UserID, k.Fingerprint, k.Identities, k.Armored))
		if errors.Is(err, pgx.ErrNoRows) {
			return marketplace.Errorf(marketplace.ECONFLICT, "key %s is registered already", k.Fingerprint)
		} else if err != nil {
			return fmt.Errorf("create signing key of user %d: %w", k.UserID, err)
		}
		*k = *created
		return nil
	})
}

// FindSigningKeys lists a user's keys, oldest first: the user's own or, for the operator, anyone's;
// another user's are not found.
func (db *DB) FindSigningKeys(ctx context.Context, userID int64) ([]*marketplace.SigningKey, error) {
	if !marketplace.CallerFrom(ctx).Owns(userID) {
		return nil, notFound("user", userID)
	}
	rows, _ := db.pool.Query(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys
WHERE user_id = $1 AND ($2 = 0 OR user_id = $2) ORDER BY id`, userID, scopeUser(ctx))
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*marketplace.SigningKey, error) { return scanSigningKey(row) })
	if err != nil {
		return nil, fmt.Errorf("find signing keys of user %d: %w", userID, err)
	}
	return keys, nil
}

// DeleteSigningKey deletes one of a user's keys: versions verified with it stay verified (what was
// checked at publish is recorded), new ones are no longer.
func (db *DB) DeleteSigningKey(ctx context.Context, userID, id int64) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM signing_keys WHERE id = $1 AND user_id = $2 AND ($3 = 0 OR user_id = $3)`,
		id, userID, scopeUser(ctx))
	if err != nil {
		return fmt.Errorf("delete signing key %d of user %d: %w", id, userID, err)
	} else if tag.RowsAffected() == 0 {
		return notFound("signing key", id)
	}
	return nil
}
