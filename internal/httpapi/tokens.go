package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// tokenCache remembers which user a token hash belongs to for a short while, so an authenticated
// request costs one database round trip (its own query), not two. Users and tokens are never changed
// or revoked, so a stale entry cannot grant what the database would refuse; the TTL bounds memory and
// keeps each replica's copy young. It is a cache: every replica rebuilds it from the database.
type tokenCache struct {
	users marketplace.UserService
	ttl   time.Duration
	max   int

	mu      sync.Mutex
	entries map[string]tokenEntry
}

type tokenEntry struct {
	userID  int64
	expires time.Time
}

func newTokenCache(users marketplace.UserService, ttl time.Duration, max int) *tokenCache {
	return &tokenCache{users: users, ttl: ttl, max: max, entries: map[string]tokenEntry{}}
}

// userID returns the id of the user whose token has this hash, or the store's error (EUNAUTHORIZED for
// an unknown token, which is not cached).
func (c *tokenCache) userID(ctx context.Context, hash []byte) (int64, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[string(hash)]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.userID, nil
	}
	u, err := c.users.FindUserByTokenHash(ctx, hash)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	if len(c.entries) >= c.max { // full: start over rather than track recency
		clear(c.entries)
	}
	c.entries[string(hash)] = tokenEntry{userID: u.ID, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return u.ID, nil
}
