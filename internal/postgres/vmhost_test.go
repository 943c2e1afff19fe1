package postgres_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// TestVMAdmissionNeverOverBooks: with the VM host recorded (2 CPUs, 1024 MiB, no overcommit), ten
// consumers installing a 1-vCPU guest at once get exactly two admitted; what is not live any more
// (uninstalled, failed with its resources removed) frees its share; an upgrade that grows a guest is
// admitted against the others, and while it runs the guest counts at its larger size.
func TestVMAdmissionNeverOverBooks(t *testing.T) {
	f := newFixture(t, marketplace.Quotas{})
	app := &marketplace.Application{Name: "vm", PublisherID: f.user, HourlyRate: marketplace.MustMoney("1"),
		Deployment: marketplace.DeploymentSpec{Type: "vm", Image: "guest.qcow2", CPU: "1", Memory: "256Mi"}, Inputs: []marketplace.Input{}}
	if err := f.db.CreateApp(f.ctx, app); err != nil {
		t.Fatal(err)
	}
	type consumer struct{ user, project int64 }
	consumers := make([]consumer, 10)
	for i := range consumers {
		u := &marketplace.User{Name: "c"}
		if err := f.db.CreateUser(f.ctx, u, []byte("token "+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
		p := &marketplace.Project{Name: "p", UserID: u.ID}
		if err := f.db.CreateProject(f.ctx, p); err != nil {
			t.Fatal(err)
		}
		consumers[i] = consumer{u.ID, p.ID}
	}
	install := func(c consumer, version int) (*marketplace.Deployment, error) {
		d := &marketplace.Deployment{ConsumerID: c.user, ApplicationID: app.ID, ProjectID: c.project, Version: version}
		return d, f.db.CreateDeployment(f.ctx, d)
	}

	// No worker has recorded the host yet: admitted (the worker checks).
	d, err := install(consumers[0], 0)
	if err != nil {
		t.Fatalf("install before the host is recorded: %v", err)
	}
	f.exec(t, `UPDATE deployments SET status = 'uninstalled' WHERE id = `+itoa(d.ID))

	if err := f.db.RecordVMHost(f.ctx, marketplace.VMHost{Name: "h", CPUs: 2, MemoryMiB: 1024, CPUOvercommit: 1, MemoryOvercommit: 1}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var admitted []*marketplace.Deployment
	for _, c := range consumers {
		wg.Go(func() {
			d, err := install(c, 0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				admitted = append(admitted, d)
			case marketplace.ErrorCode(err) != marketplace.ECONFLICT ||
				!strings.Contains(marketplace.ErrorMessage(err), "needs 1 vCPU and 256 MiB; the VM host has 0 vCPUs and 512 MiB free"):
				t.Errorf("refusal %v: want a conflict naming what is short", err)
			}
		})
	}
	wg.Wait()
	if len(admitted) != 2 {
		t.Fatalf("%d of ten installs at once admitted on a host with room for two", len(admitted))
	}

	// A failed install whose resources are not removed yet still holds its share; once removed, not.
	a, b := admitted[0], admitted[1]
	f.exec(t, `UPDATE deployments SET status = 'failed' WHERE id = `+itoa(a.ID))
	if _, err := install(consumers[5], 0); marketplace.ErrorCode(err) != marketplace.ECONFLICT {
		t.Fatalf("install while a failed guest may still run: %v, want a conflict", err)
	}
	f.exec(t, `UPDATE deployments SET cleaned_up_at = now() WHERE id = `+itoa(a.ID))
	c, err := install(consumers[5], 0)
	if err != nil {
		t.Fatalf("install once the failed guest is removed: %v", err)
	}
	f.exec(t, `UPDATE deployments SET status = 'installed' WHERE id IN (`+itoa(b.ID)+`, `+itoa(c.ID)+`)`)

	// Version 2 takes 2 vCPUs: b cannot grow while c holds the other CPU.
	if err := f.db.CreateVersion(f.ctx, &marketplace.AppVersion{ApplicationID: app.ID, HourlyRate: marketplace.MustMoney("1"),
		Deployment: marketplace.DeploymentSpec{Type: "vm", Image: "guest.qcow2", CPU: "2", Memory: "256Mi"}, Inputs: []marketplace.Input{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.RequestUpgrade(f.ctx, b.ID, 2, nil); marketplace.ErrorCode(err) != marketplace.ECONFLICT ||
		!strings.Contains(marketplace.ErrorMessage(err), "needs 2 vCPUs and 256 MiB; the VM host has 1 vCPU and") {
		t.Fatalf("growing upgrade on a full host: %v, want a conflict naming what is short", err)
	}
	f.exec(t, `UPDATE deployments SET status = 'uninstalled' WHERE id = `+itoa(c.ID))
	if _, err := f.db.RequestUpgrade(f.ctx, b.ID, 2, nil); err != nil {
		t.Fatalf("growing upgrade with room: %v", err)
	}
	// Upgrading, b counts at 2 vCPUs: nothing more fits, not even version 1's single vCPU.
	if _, err := install(consumers[6], 1); marketplace.ErrorCode(err) != marketplace.ECONFLICT {
		t.Fatalf("install beside a growing upgrade: %v, want a conflict", err)
	}
	var live int
	f.exec(t, `SELECT count(*) FROM deployments WHERE status NOT IN ('uninstalled') AND cleaned_up_at IS NULL`, &live)
	if live != 1 {
		t.Fatalf("%d live deployments, want b alone", live)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
