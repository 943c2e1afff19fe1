package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// SaveAbout keeps what a version of one of the caller's applications says about itself, its icon (by
// SHA-256) and, when the version was published without a changelog, changes as its changelog.
func (db *DB) SaveAbout(ctx context.Context, appID int64, version int, about *marketplace.About, icon []byte, changes string) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if icon != nil {
			sum := sha256.Sum256(icon)
			about.Icon = "/icons/" + hex.EncodeToString(sum[:]) + ".png"
			if _, err := tx.Exec(ctx, `INSERT INTO icons (sha256, png) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING`,
				hex.EncodeToString(sum[:]), icon); err != nil {
				return fmt.Errorf("keep the icon of application %d version %d: %w", appID, version, err)
			}
		}
		// A vm application's icon is its publisher's upload (SaveIcon): a version read without one keeps
		// the one its application had.
		tag, err := tx.Exec(ctx, `UPDATE application_versions v
SET about = CASE WHEN a.deployment_type = 'vm' AND NOT ($4::jsonb ? 'icon')
    THEN $4::jsonb || coalesce((SELECT jsonb_build_object('icon', p.about->'icon') FROM application_versions p
      WHERE p.application_id = v.application_id AND p.version <= v.version AND p.about ? 'icon' ORDER BY p.version DESC LIMIT 1), '{}')
    ELSE $4::jsonb END,
  changelog = CASE WHEN v.changelog = '' THEN $5 ELSE v.changelog END
FROM applications a
WHERE v.application_id = $1 AND v.version = $2 AND a.id = v.application_id AND a.deleted_at IS NULL
  AND ($3 = 0 OR a.publisher_id = $3)`, appID, version, scopeUser(ctx), about, changes)
		if err != nil {
			return fmt.Errorf("keep what application %d version %d says about itself: %w", appID, version, err)
		}
		if tag.RowsAffected() == 0 {
			return marketplace.Errorf(marketplace.ENOTFOUND, "application %d has no version %d of yours", appID, version)
		}
		return nil
	})
}

// FindAbout returns what a version of a catalog (or retired) application says about itself, nil when
// it has not been read.
func (db *DB) FindAbout(ctx context.Context, appID int64, version int) (*marketplace.About, error) {
	var about *marketplace.About
	err := db.pool.QueryRow(ctx, `SELECT v.about FROM application_versions v JOIN applications a ON a.id = v.application_id
WHERE v.application_id = $1 AND v.version = $2 AND (a.deleted_at IS NULL OR a.retired_at IS NOT NULL) AND `+visibleTo("$3"),
		appID, version, scopeUser(ctx)).Scan(&about)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, marketplace.Errorf(marketplace.ENOTFOUND, "application %d has no version %d", appID, version)
	} else if err != nil {
		return nil, fmt.Errorf("find what application %d version %d says about itself: %w", appID, version, err)
	}
	return about, nil
}

// FindIcon returns the PNG whose SHA-256 is sha (64 lowercase hex digits).
func (db *DB) FindIcon(ctx context.Context, sha string) ([]byte, error) {
	if len(sha) != 64 || strings.Trim(sha, "0123456789abcdef") != "" {
		return nil, marketplace.Errorf(marketplace.ENOTFOUND, "no icon %q", sha)
	}
	var png []byte
	// Served to whoever sees an application one of whose versions shows it.
	err := db.pool.QueryRow(ctx, `SELECT png FROM icons WHERE sha256 = $1 AND EXISTS (
  SELECT FROM application_versions v JOIN applications a ON a.id = v.application_id
  WHERE v.about ? 'icon' AND v.about ->> 'icon' = '/icons/' || $1 || '.png' AND (a.deleted_at IS NULL OR a.retired_at IS NOT NULL) AND `+visibleTo("$2")+`)`,
		sha, scopeUser(ctx)).Scan(&png)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, marketplace.Errorf(marketplace.ENOTFOUND, "no icon %s", sha)
	} else if err != nil {
		return nil, fmt.Errorf("find icon %s: %w", sha, err)
	}
	return png, nil
}

// SaveIcon keeps png (an icon the marketplace re-encoded) as the icon of one of the caller's vm
// applications, on its latest version, which the versions after it keep; it returns the icon's path.
func (db *DB) SaveIcon(ctx context.Context, appID int64, png []byte) (string, error) {
	sum := sha256.Sum256(png)
	sha := hex.EncodeToString(sum[:])
	path := "/icons/" + sha + ".png"
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var typ string
		err := tx.QueryRow(ctx, `SELECT deployment_type FROM applications
WHERE id = $1 AND deleted_at IS NULL AND ($2 = 0 OR publisher_id = $2) FOR UPDATE`, appID, scopeUser(ctx)).Scan(&typ)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("application", appID)
		} else if err != nil {
			return fmt.Errorf("set the icon of application %d: %w", appID, err)
		}
		if typ != marketplace.TypeVM {
			return marketplace.Errorf(marketplace.EINVALID, "application %d is a %s application: its icon is its chart's (Chart.yaml's icon), read when a version is published", appID, typ)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO icons (sha256, png) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING`, sha, png); err != nil {
			return fmt.Errorf("keep the icon of application %d: %w", appID, err)
		}
		_, err = tx.Exec(ctx, `UPDATE application_versions v
SET about = coalesce(v.about, jsonb_build_object('read_at', now())) || jsonb_build_object('icon', $2::text)
FROM applications a WHERE a.id = $1 AND v.application_id = a.id AND v.version = a.version`, appID, path)
		if err != nil {
			return fmt.Errorf("set the icon of application %d: %w", appID, err)
		}
		return nil
	})
	return path, err
}
