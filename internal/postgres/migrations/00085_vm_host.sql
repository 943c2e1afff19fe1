-- +goose Up
-- The VM host's capacity, as the worker connected to it last saw it (libvirt's node info) with the
-- overcommit ratios it runs with. The API role has no connection to the host: an install or upgrade of a
-- vm deployment locks this row and sums what the live vm deployments take, so concurrent requests never
-- book more than the host has. A marketplace has one VM host (LIBVIRT_URI): one row.
CREATE TABLE vm_host (
    one               boolean          PRIMARY KEY DEFAULT true CHECK (one),
    name              text             NOT NULL,
    cpus              int              NOT NULL CHECK (cpus >= 0),
    memory_mib        bigint           NOT NULL CHECK (memory_mib >= 0),
    cpu_overcommit    double precision NOT NULL CHECK (cpu_overcommit > 0),
    memory_overcommit double precision NOT NULL CHECK (memory_overcommit > 0),
    refreshed_at      timestamptz      NOT NULL DEFAULT now()
);
-- The vm deployments that may hold a guest on the host (the admission's sum).
CREATE INDEX deployments_live_vms ON deployments (id)
    WHERE type = 'vm' AND status <> 'uninstalled' AND (status <> 'failed' OR cleaned_up_at IS NULL);

-- +goose Down
DROP INDEX deployments_live_vms;
DROP TABLE vm_host;
