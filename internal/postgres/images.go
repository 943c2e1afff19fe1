package postgres

import (
	"context"
	"fmt"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// ImageURLsInUse returns the image URLs (http and https) that VM application versions name: every
// version of an application not deleted, and every version of a deleted (retired) one that still has a
// deployment (which may upgrade or roll back to any of them). A downloaded image of any other URL may
// be deleted. Only the operator may read them: they are every publisher's URLs, credentials included.
func (db *DB) ImageURLsInUse(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT v.deployment->>'image'
FROM application_versions v JOIN applications a ON a.id = v.application_id
WHERE $1 = 0 AND a.deployment_type = 'vm'
  AND (v.deployment->>'image' LIKE 'http://%' OR v.deployment->>'image' LIKE 'https://%')
  AND (a.deleted_at IS NULL OR EXISTS (
      SELECT 1 FROM deployments d WHERE d.application_id = a.id AND d.status <> 'uninstalled'))`, scopeUser(ctx))
	if err != nil {
		return nil, fmt.Errorf("image URLs in use: %w", err)
	}
	defer rows.Close()
	var urls []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("image URLs in use: %w", err)
		}
		urls = append(urls, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("image URLs in use: %w", err)
	}
	if scopeUser(ctx) != 0 {
		return nil, marketplace.Errorf(marketplace.EUNAUTHORIZED, "only the operator reads the image URLs in use")
	}
	return urls, nil
}
