package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRedisDatabaseHasOneMarketplace: a second marketplace (another PostgreSQL database) pointed at the Redis
// database of a running one refuses to start, saying why, instead of taking its tasks; another process of the
// same marketplace shares it as before.
func TestRedisDatabaseHasOneMarketplace(t *testing.T) {
	first := startMarketplace(t, "serve", nil)
	startMarketplace(t, "worker", map[string]string{"DATABASE_URL": first.DatabaseURL, "REDIS_URL": first.Environ["REDIS_URL"]})

	other := map[string]string{}
	for k, v := range first.Environ {
		other[k] = v
	}
	other["DATABASE_URL"] = tenv.Database(t)
	other["MARKETPLACE_ADDR"] = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"marketplace", "serve"}, func(k string) string { return other[k] }, testLog{t})
	if err == nil || !strings.Contains(err.Error(), "carries the queues of another marketplace") {
		t.Fatalf("a second marketplace on the same Redis database: %v, want a refusal", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the second marketplace ran instead of refusing at start")
	}

	// The first one still works: a user can be created and the queue answers.
	_, token := first.user(t, "still-here")
	first.must(t, 200, "GET", "/api/apps", token, nil)
}
