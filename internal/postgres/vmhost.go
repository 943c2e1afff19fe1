package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// RecordVMHost stores the VM host's capacity as a worker sees it now, with the overcommit ratios it runs
// with. It waits for the admissions in flight, which hold the row.
func (db *DB) RecordVMHost(ctx context.Context, h marketplace.VMHost) error {
	if _, err := db.work.Exec(ctx, `INSERT INTO vm_host (name, cpus, memory_mib, cpu_overcommit, memory_overcommit, refreshed_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (one) DO UPDATE SET name = EXCLUDED.name, cpus = EXCLUDED.cpus, memory_mib = EXCLUDED.memory_mib,
  cpu_overcommit = EXCLUDED.cpu_overcommit, memory_overcommit = EXCLUDED.memory_overcommit, refreshed_at = now()`,
		h.Name, h.CPUs, h.MemoryMiB, h.CPUOvercommit, h.MemoryOvercommit); err != nil {
		return fmt.Errorf("record the VM host's capacity: %w", err)
	}
	return nil
}

// admitVM refuses (ECONFLICT, naming what is short) a guest of size need when, with what the live vm
// deployments other than except take, the VM host has no room for it. It locks the host's row for the
// rest of tx, so that admissions are one at a time and each sees the ones before it: it must be the last
// lock tx takes. With no row (no worker has connected to the VM host yet) it admits: the worker refuses
// what does not fit when it defines the guest.
func admitVM(ctx context.Context, tx pgx.Tx, need marketplace.VMSize, except int64) error {
	var h marketplace.VMHost
	err := tx.QueryRow(ctx, `SELECT name, cpus, memory_mib, cpu_overcommit, memory_overcommit, refreshed_at FROM vm_host FOR UPDATE`).
		Scan(&h.Name, &h.CPUs, &h.MemoryMiB, &h.CPUOvercommit, &h.MemoryOvercommit, &h.RefreshedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	} else if err != nil {
		return fmt.Errorf("lock the VM host's capacity: %w", err)
	}
	used, err := liveVMs(ctx, tx, except, 0)
	if err != nil {
		return err
	}
	return h.Admit(used, need)
}

// liveVMs sums what the vm deployments that may hold a guest take: every one not uninstalled nor failed
// with its resources removed; one upgrading takes the larger of its version's size and its target's.
// on other than 0 sums only the deployments placed on that VM host.
func liveVMs(ctx context.Context, q querier, except, on int64) (marketplace.VMSize, error) {
	rows, _ := q.Query(ctx, `SELECT v.deployment, t.deployment FROM deployments d
JOIN application_versions v ON v.application_id = d.application_id AND v.version = d.version
LEFT JOIN application_versions t ON t.application_id = d.application_id AND t.version = d.target_version
WHERE d.type = 'vm' AND d.status <> 'uninstalled' AND (d.status <> 'failed' OR d.cleaned_up_at IS NULL) AND d.id <> $1
  AND ($2::bigint = 0 OR d.target_id = $2)`, except, on)
	var used marketplace.VMSize
	var spec marketplace.DeploymentSpec
	var target *marketplace.DeploymentSpec
	_, err := pgx.ForEachRow(rows, []any{&spec, &target}, func() error {
		size, err := spec.Size()
		if err != nil {
			return err
		}
		if target != nil {
			next, err := target.Size()
			if err != nil {
				return err
			}
			size = size.Max(next)
		}
		used = used.Add(size)
		spec = marketplace.DeploymentSpec{} // JSON decoding fills what it finds: the next row starts empty
		return nil
	})
	if err != nil {
		return used, fmt.Errorf("sum the live virtual machines: %w", err)
	}
	return used, nil
}

// admitVMUpgrade admits the upgrade of a vm deployment to version: while it runs, and after, the guest
// takes the larger of both sizes. An upgrade that grows the guest in neither resource is always admitted.
func admitVMUpgrade(ctx context.Context, tx pgx.Tx, d *marketplace.Deployment, version int) error {
	var cur, next marketplace.DeploymentSpec
	err := tx.QueryRow(ctx, `SELECT c.deployment, n.deployment FROM application_versions c, application_versions n
WHERE c.application_id = $1 AND c.version = $2 AND n.application_id = $1 AND n.version = $3`,
		d.ApplicationID, d.Version, version).Scan(&cur, &next)
	if err != nil {
		return fmt.Errorf("sizes of deployment %d's versions: %w", d.ID, err)
	}
	from, err := cur.Size()
	if err != nil {
		return err
	}
	to, err := next.Size()
	if err != nil {
		return err
	}
	if to.Fits(from) {
		return nil
	}
	return admitVM(ctx, tx, from.Max(to), d.ID)
}
