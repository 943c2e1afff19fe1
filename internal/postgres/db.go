// Package postgres is the state of record: users, applications, projects, deployments and usage records
// in PostgreSQL through pgx, with the schema in versioned SQL migrations embedded in the binary.
//
// Authorization lives here, not in handlers: every query of projects, deployments and bills is scoped by
// the caller taken from the context (marketplace.CallerFrom), so another tenant's row is simply not found.
// Only the operator's context lifts the scope.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/marketplace/marketplace/internal/marketplace"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the store. It implements the service interfaces of package marketplace.
type DB struct {
	pool *pgxpool.Pool
	// work carries the workers' guarded transitions and lease renewals on connections of their own, so
	// a burst of API requests cannot make a lease renewal wait for a connection until its lease lapses.
	work   *pgxpool.Pool
	quotas marketplace.Quotas
	// now is the clock of billing: usage starts and ends, accruals, metering and period closes read it,
	// never SQL now(), so a test can move time.
	now   func() time.Time
	terms marketplace.BillingTerms
	// computing lets one request at a time compute a search or deep page nobody has kept (catalog_flight.go).
	computing keyFlights
	// sealer seals the targets' credentials (targets.go); nil: no cluster can be registered.
	sealer marketplace.Sealer
}

// Option tunes a DB.
type Option func(*DB)

// WithQuotas bounds what each user may own; without it nothing is bounded.
func WithQuotas(q marketplace.Quotas) Option {
	return func(db *DB) { db.quotas = q }
}

// WithClock makes billing read now instead of the system clock.
func WithClock(now func() time.Time) Option {
	return func(db *DB) { db.now = now }
}

// WithBillingTerms sets the currency and the marketplace's fee; without it, USD and no fee.
func WithBillingTerms(t marketplace.BillingTerms) Option {
	return func(db *DB) { db.terms = t }
}

// WithSealer seals the credentials of registered targets with s (MARKETPLACE_SECRET_KEY); without it a
// cluster cannot be registered by kubeconfig.
func WithSealer(s marketplace.Sealer) Option {
	return func(db *DB) { db.sealer = s }
}

// clock is the billing instant, at PostgreSQL's precision (microseconds) and in UTC.
func (db *DB) clock() time.Time { return db.now().UTC().Truncate(time.Microsecond) }

// Open connects to the database at url, creating the database when it does not exist yet. It does not
// migrate; call Migrate.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgxpool's default (the number of CPUs, at least 4) queues an API's concurrent requests behind
		// each other on a small machine; connections are cheap next to that wait.
		cfg.MaxConns = 16
	}
	if err := createDatabase(ctx, cfg.ConnConfig); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.ConnConfig.Database, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", cfg.ConnConfig.Database, err)
	}
	workCfg := cfg.Copy()
	workCfg.MaxConns, workCfg.MinConns = 4, 0
	work, err := pgxpool.NewWithConfig(ctx, workCfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", cfg.ConnConfig.Database, err)
	}
	db := &DB{pool: pool, work: work, now: time.Now, terms: marketplace.BillingTerms{Currency: "USD"}}
	for _, o := range opts {
		o(db)
	}
	return db, nil
}

// createDatabase creates cfg's database through the postgres maintenance database when it is missing.
func createDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name: no such database
		return fmt.Errorf("connect to %s: %w", cfg.Database, err)
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err = pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to postgres to create %s: %w", cfg.Database, err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: another replica won
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", cfg.Database, err)
	}
	return nil
}

// Migrate applies the embedded migrations that are not applied yet. Replicas starting together take
// turns through an advisory lock.
func (db *DB) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migrations lock: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, sub, goose.WithSessionLocker(locker),
		// Migrations are numbered by range per line of work and land in any order: one with a lower number
		// than the newest applied is applied, not refused.
		goose.WithAllowOutofOrder(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// Close closes every connection.
func (db *DB) Close() {
	db.pool.Close()
	db.work.Close()
}

// InstanceID is this marketplace's identity, made when its database was: what it creates outside the
// database (Kubernetes namespaces) carries it, so nothing of another marketplace is ever adopted.
func (db *DB) InstanceID(ctx context.Context) (string, error) {
	var id string
	if err := db.pool.QueryRow(ctx, `SELECT id::text FROM instance`).Scan(&id); err != nil {
		return "", fmt.Errorf("read the instance id: %w", err)
	}
	return id, nil
}

// WorkerCallSecret is the secret, made with the database, that signs the calls between this
// marketplace's API replicas and workers when none is configured.
func (db *DB) WorkerCallSecret(ctx context.Context) ([]byte, error) {
	var secret string
	if err := db.pool.QueryRow(ctx, `SELECT worker_call_secret FROM instance`).Scan(&secret); err != nil {
		return nil, fmt.Errorf("read the worker call secret: %w", err)
	}
	return []byte(secret), nil
}

// notFound is the one answer for rows that are absent or belong to someone else.
func notFound(what string, id int64) error {
	return marketplace.Errorf(marketplace.ENOTFOUND, "%s %d not found", what, id)
}

// scopeUser returns the user id a query must be limited to, or 0 for the operator (no limit). A caller
// without a user and without operator rights gets -1, which matches nothing.
func scopeUser(ctx context.Context) int64 {
	c := marketplace.CallerFrom(ctx)
	switch {
	case c.Operator:
		return 0
	case c.UserID > 0:
		return c.UserID
	}
	return -1
}
