package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// liveOnTarget is what holds resources on a target: a deployment not uninstalled, nor failed and
// cleaned up (the partial index deployments_live_by_target).
const liveOnTarget = `status <> 'uninstalled' AND (status <> 'failed' OR cleaned_up_at IS NULL)`

const targetColumns = `t.id, t.kind, t.name, t.labels, t.address, t.from_environment, t.reachable, t.version, t.health_error,
t.checked_at, t.cpus, t.memory_mib, t.cpu_overcommit, t.memory_overcommit, t.created_at,
(SELECT count(*) FROM deployments d WHERE d.target_id = t.id AND d.` + liveOnTarget + `)`

// scanTarget reads targetColumns, then extra, and the VM host's size the target records (nil if none).
func scanTarget(row pgx.Row, extra ...any) (*marketplace.Target, *marketplace.VMHost, error) {
	var t marketplace.Target
	var cpus *int
	var mib *int64
	var cpuRatio, memRatio *float64
	if err := row.Scan(append([]any{&t.ID, &t.Kind, &t.Name, &t.Labels, &t.Address, &t.FromEnvironment, &t.Health.Reachable,
		&t.Health.Version, &t.Health.Error, &t.Health.CheckedAt, &cpus, &mib, &cpuRatio, &memRatio, &t.CreatedAt, &t.Deployments},
		extra...)...); err != nil {
		return nil, nil, err
	}
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	if t.Kind != marketplace.TypeVM || cpus == nil || mib == nil || cpuRatio == nil || memRatio == nil {
		return &t, nil, nil
	}
	return &t, &marketplace.VMHost{CPUs: *cpus, MemoryMiB: *mib, CPUOvercommit: *cpuRatio, MemoryOvercommit: *memRatio}, nil
}

// withCapacity sets a VM host's capacity: its size less what the marketplace placed on it.
func withCapacity(ctx context.Context, q querier, t *marketplace.Target, host *marketplace.VMHost) error {
	if host == nil {
		return nil
	}
	placed, err := liveVMs(ctx, q, 0, t.ID)
	if err != nil {
		return err
	}
	t.Capacity = marketplace.NewTargetCapacity(*host, placed)
	return nil
}

// sealContext binds a sealed kubeconfig to its target: a value copied to another row does not open.
func sealContext(kind, name string) []byte { return []byte("target:" + kind + "/" + name) }

func operatorOnly(ctx context.Context) error {
	if !marketplace.CallerFrom(ctx).Operator {
		return marketplace.Errorf(marketplace.ENOTFOUND, "targets are the operator's")
	}
	return nil
}

// RegisterTarget adds a cluster (its kubeconfig sealed) or a VM host; the operator's only.
func (db *DB) RegisterTarget(ctx context.Context, in marketplace.TargetInput) (*marketplace.Target, error) {
	if err := operatorOnly(ctx); err != nil {
		return nil, err
	}
	address, err := in.Validate()
	if err != nil {
		return nil, err
	}
	var sealed []byte
	if in.Kind == marketplace.TypeK8s {
		if db.sealer == nil {
			return nil, marketplace.Errorf(marketplace.ECONFLICT,
				"this marketplace keeps no credentials: set MARKETPLACE_SECRET_KEY (openssl rand -base64 32) on every process, then register the cluster")
		}
		if sealed, err = db.sealer.Seal(in.Kubeconfig, sealContext(in.Kind, in.Name)); err != nil {
			return nil, fmt.Errorf("register target %s: %w", in.Name, err)
		}
	}
	labels := in.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	var id int64
	err = db.pool.QueryRow(ctx, `INSERT INTO targets (kind, name, labels, address, credentials) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		in.Kind, in.Name, labels, address, sealed).Scan(&id)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return nil, marketplace.Errorf(marketplace.ECONFLICT, "a %s target named %q is registered already", in.Kind, in.Name)
	} else if err != nil {
		return nil, fmt.Errorf("register target %s: %w", in.Name, err)
	}
	return db.FindTarget(ctx, id)
}

// FindTargets lists the targets not removed, by kind and name; the operator's only.
func (db *DB) FindTargets(ctx context.Context) ([]*marketplace.Target, error) {
	if err := operatorOnly(ctx); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT `+targetColumns+` FROM targets t WHERE t.removed_at IS NULL ORDER BY t.kind, t.name`)
	if err != nil {
		return nil, fmt.Errorf("find targets: %w", err)
	}
	var targets []*marketplace.Target
	var hosts []*marketplace.VMHost
	for rows.Next() {
		t, host, err := scanTarget(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("find targets: %w", err)
		}
		targets, hosts = append(targets, t), append(hosts, host)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find targets: %w", err)
	}
	// The capacities are summed once the list is read (one connection, one result set at a time).
	for i, t := range targets {
		if err := withCapacity(ctx, db.pool, t, hosts[i]); err != nil {
			return nil, fmt.Errorf("find targets: %w", err)
		}
	}
	return targets, nil
}

// FindTarget is one target not removed; the operator's only.
func (db *DB) FindTarget(ctx context.Context, id int64) (*marketplace.Target, error) {
	if err := operatorOnly(ctx); err != nil {
		return nil, err
	}
	t, host, err := scanTarget(db.pool.QueryRow(ctx, `SELECT `+targetColumns+` FROM targets t WHERE t.id = $1 AND t.removed_at IS NULL`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("target", id)
	}
	if err == nil {
		err = withCapacity(ctx, db.pool, t, host)
	}
	if err != nil {
		return nil, fmt.Errorf("find target %d: %w", id, err)
	}
	return t, nil
}

// RemoveTarget removes a target nothing runs on: its row stays for the deployments it ran, without its
// credentials, and its name is free. The row lock orders it against a placement on it.
func (db *DB) RemoveTarget(ctx context.Context, id int64) error {
	if err := operatorOnly(ctx); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var kind, name string
		var env bool
		err := tx.QueryRow(ctx, `SELECT kind, name, from_environment FROM targets WHERE id = $1 AND removed_at IS NULL FOR UPDATE`, id).
			Scan(&kind, &name, &env)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("target", id)
		} else if err != nil {
			return fmt.Errorf("remove target %d: %w", id, err)
		}
		if env {
			return marketplace.Errorf(marketplace.ECONFLICT, "target %d is the %s default, which %s gives: it stays", id, kind,
				map[string]string{marketplace.TypeK8s: "KUBECONFIG", marketplace.TypeVM: "LIBVIRT_URI"}[kind])
		}
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM deployments WHERE target_id = $1 AND `+liveOnTarget, id).Scan(&live); err != nil {
			return fmt.Errorf("remove target %d: %w", id, err)
		}
		if live > 0 {
			return marketplace.Errorf(marketplace.ECONFLICT, "%d deployments run on target %d (%s): uninstall them first", live, id, name)
		}
		if _, err := tx.Exec(ctx, `UPDATE targets SET removed_at = now(), credentials = NULL WHERE id = $1`, id); err != nil {
			return fmt.Errorf("remove target %d: %w", id, err)
		}
		return nil
	})
}

// RegisterDefaultTarget registers kind's default target, or updates its address: what every process
// configured with KUBECONFIG or LIBVIRT_URI does at start, any number of times, at once or not.
func (db *DB) RegisterDefaultTarget(ctx context.Context, kind, address string) (*marketplace.Target, error) {
	var id int64
	err := db.pool.QueryRow(ctx, `INSERT INTO targets (kind, name, address, from_environment) VALUES ($1, $2, $3, true)
ON CONFLICT (kind, name) WHERE removed_at IS NULL DO UPDATE SET address = EXCLUDED.address, from_environment = true
RETURNING id`, kind, marketplace.DefaultTarget, address).Scan(&id)
	if err != nil {
		return nil, fmt.Errorf("register the default %s target: %w", kind, err)
	}
	return db.FindTarget(marketplace.OperatorContext(ctx), id)
}

// TargetsToCheck are the targets with their kubeconfigs opened. A kubeconfig still sealed under an old
// key is sealed again under the current one on the way (key rotation, README "Targets").
func (db *DB) TargetsToCheck(ctx context.Context) ([]marketplace.TargetCheck, error) {
	type sealedTarget struct {
		t      *marketplace.Target
		sealed []byte
	}
	rows, err := db.pool.Query(ctx, `SELECT `+targetColumns+`, t.credentials FROM targets t WHERE t.removed_at IS NULL ORDER BY t.id`)
	if err != nil {
		return nil, fmt.Errorf("targets to check: %w", err)
	}
	var all []sealedTarget
	for rows.Next() {
		var s sealedTarget
		var err error
		if s.t, _, err = scanTarget(rows, &s.sealed); err != nil {
			rows.Close()
			return nil, fmt.Errorf("targets to check: %w", err)
		}
		all = append(all, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("targets to check: %w", err)
	}
	checks := make([]marketplace.TargetCheck, 0, len(all))
	for _, s := range all {
		c := marketplace.TargetCheck{TargetAccess: marketplace.TargetAccess{Target: *s.t}}
		if s.sealed != nil {
			c.Kubeconfig, c.Err = db.openCredentials(ctx, s.t, s.sealed)
		}
		checks = append(checks, c)
	}
	return checks, nil
}

// openCredentials opens a target's sealed kubeconfig and, when an old key sealed it, seals it again
// under the current one (only if nobody changed it meanwhile).
func (db *DB) openCredentials(ctx context.Context, t *marketplace.Target, sealed []byte) ([]byte, error) {
	if db.sealer == nil {
		return nil, errors.New("its kubeconfig is sealed and this worker has no MARKETPLACE_SECRET_KEY")
	}
	aad := sealContext(t.Kind, t.Name)
	plain, err := db.sealer.Open(sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("its kubeconfig: %w", err)
	}
	if !db.sealer.Current(sealed) {
		resealed, err := db.sealer.Seal(plain, aad)
		if err != nil {
			return nil, fmt.Errorf("seal target %d's kubeconfig again: %w", t.ID, err)
		}
		if _, err := db.pool.Exec(ctx, `UPDATE targets SET credentials = $2 WHERE id = $1 AND credentials = $3`, t.ID, resealed, sealed); err != nil {
			return nil, fmt.Errorf("seal target %d's kubeconfig again: %w", t.ID, err)
		}
	}
	return plain, nil
}

// RecordTargetHealth stores what a worker saw of a target and, for a VM host it reached, its size.
func (db *DB) RecordTargetHealth(ctx context.Context, id int64, h marketplace.TargetHealth, host *marketplace.VMHost) error {
	var cpus *int
	var mib *int64
	var cpuRatio, memRatio *float64
	if host != nil {
		cpus, mib, cpuRatio, memRatio = &host.CPUs, &host.MemoryMiB, &host.CPUOvercommit, &host.MemoryOvercommit
	}
	if _, err := db.pool.Exec(ctx, `UPDATE targets SET reachable = $2, version = $3, health_error = $4, checked_at = now(),
  cpus = coalesce($5, cpus), memory_mib = coalesce($6, memory_mib),
  cpu_overcommit = coalesce($7, cpu_overcommit), memory_overcommit = coalesce($8, memory_overcommit)
WHERE id = $1`, id, h.Reachable, h.Version, h.Error, cpus, mib, cpuRatio, memRatio); err != nil {
		return fmt.Errorf("record target %d's health: %w", id, err)
	}
	return nil
}
