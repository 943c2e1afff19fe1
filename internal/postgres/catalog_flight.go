package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// A search or a deep page that is not kept for the catalog as it is now is computed by one reader while
// the others wait for its kept answer, instead of every concurrent reader computing the same answer
// (issue #23: 32 readers of a page nobody had kept each computed it, and each computation waited behind
// the others'). In a process, the readers of one key take turns through keyFlights; across replicas,
// through a transaction-level advisory lock on the key's hash, taken before the statement that computes:
// that statement's snapshot comes after the lock, so it sees the answer kept by whoever held it before.

// errNotKept is a lookup's answer when the page is not kept for the catalog its statement saw.
var errNotKept = errors.New("the answer is not kept")

// keptLockSpace is the first key of the advisory locks of catalog computations (the second is the hash
// of what is computed): a space of its own, apart from closeLock.
const keptLockSpace = 7_230_070

// computeKept computes and keeps the answer of a search or a deep page and hands its rows to each,
// unless another reader is computing the same one: then it waits for that one to end and returns
// errNotKept, so that the caller looks the answer up again.
func (db *DB) computeKept(ctx context.Context, check catalogCheck, f marketplace.AppFilter, cols string, each func(rows pgx.Rows, first int) error) error {
	key := keptKey(f)
	done, wait := db.computing.join(key)
	if done == nil {
		select {
		case <-wait:
			return errNotKept
		case <-ctx.Done():
			return fmt.Errorf("find applications: %w", ctx.Err())
		}
	}
	defer done()
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// JIT off for the statement that computes: a browsed page, planned without statistics, may be
		// estimated past jit_above_cost (migration 00071 says why that costs seconds).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2), set_config('jit', 'off', true)`, int32(keptLockSpace), int32(keptHash(key))); err != nil {
			return fmt.Errorf("find applications: %w", err)
		}
		sql, args := catalogStatement(check, f, cols, true)
		return runCatalog(ctx, tx, check, sql, args, each)
	})
}

// keyFlights lets one caller at a time work on a key, and the others wait for it. The zero value is
// ready to use.
type keyFlights struct {
	mu      sync.Mutex
	running map[string]chan struct{}
}

// join returns done when the caller leads the work on key (it must call done when finished), or else
// wait, closed when the work in progress ends.
func (k *keyFlights) join(key string) (done func(), wait <-chan struct{}) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if ch, ok := k.running[key]; ok {
		return nil, ch
	}
	if k.running == nil {
		k.running = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	k.running[key] = ch
	return func() {
		k.mu.Lock()
		delete(k.running, key)
		k.mu.Unlock()
		close(ch)
	}, nil
}
