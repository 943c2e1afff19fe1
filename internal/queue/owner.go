package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ownerKey holds the instance id of the marketplace whose queues this Redis database carries.
const ownerKey = "marketplace:owner"

// ownerTTL is how long a claim outlives its last renewal: a database is free again this long after the
// last process of its marketplace stopped.
const ownerTTL = time.Minute

// Owner is a marketplace's claim on its Redis database. Two marketplaces (two PostgreSQL databases) on one
// Redis database would take each other's tasks: a worker finds no such deployment in its own database and
// drops the task, and the install waits for its own reconciler to send it again (seen as installs taking
// 5 s instead of 0.3 s). Every process of a marketplace renews the claim; one of another marketplace
// refuses to start.
type Owner struct {
	rdb      redis.UniversalClient
	db       int // the database's number, for messages
	instance string
	log      *slog.Logger
}

// ClaimDatabase claims the Redis database of redisURL for instance (the PostgreSQL database's instance
// id). It refuses one claimed by another instance. Redis being down is not an error here: the queues
// survive an outage, and Run claims the database when it is back.
func ClaimDatabase(ctx context.Context, redisURL, instance string, log *slog.Logger) (*Owner, error) {
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	rdb, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("REDIS_URL: not a Redis client configuration")
	}
	o := &Owner{rdb: rdb, instance: instance, log: log}
	if c, ok := opt.(asynq.RedisClientOpt); ok {
		o.db = c.DB
	}
	if err := o.renew(ctx); err != nil {
		var taken *takenError
		if errors.As(err, &taken) {
			rdb.Close()
			return nil, fmt.Errorf("configuration: %w", err)
		}
		log.Warn("cannot claim the Redis database yet", "err", err)
	}
	return o, nil
}

// Run renews the claim until ctx ends.
func (o *Owner) Run(ctx context.Context) error {
	tick := time.NewTicker(ownerTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := o.renew(ctx); err != nil && ctx.Err() == nil {
				o.log.Error("Redis database claim", "err", err)
			}
		}
	}
}

// Close closes the claim's connection; the claim itself lapses after ownerTTL.
func (o *Owner) Close() error { return o.rdb.Close() }

// renew takes the claim when it is free and extends it when it is ours.
func (o *Owner) renew(ctx context.Context) error {
	ok, err := o.rdb.SetNX(ctx, ownerKey, o.instance, ownerTTL).Result()
	if err != nil || ok {
		return err
	}
	holder, err := o.rdb.Get(ctx, ownerKey).Result()
	if errors.Is(err, redis.Nil) {
		return o.renew(ctx) // lapsed between the two commands
	}
	if err != nil {
		return err
	}
	if holder != o.instance {
		return &takenError{holder: holder, db: o.db}
	}
	return o.rdb.Expire(ctx, ownerKey, ownerTTL).Err()
}

// takenError is a Redis database claimed by another marketplace.
type takenError struct {
	holder string
	db     int
}

func (e *takenError) Error() string {
	return fmt.Sprintf("Redis database %d carries the queues of another marketplace (instance %s): give each marketplace (each DATABASE_URL) a Redis database of its own in REDIS_URL, or wait %s after that marketplace stopped",
		e.db, e.holder, ownerTTL)
}
