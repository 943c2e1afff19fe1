package kubernetes

import (
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
)

// TestLastRan finds the revision to return to before an upgrade is tried again: the deployed one, or,
// after an attempt killed between Helm marking the old revision superseded and the new one deployed
// (seen in the chaos test: every retry then failed with "has no deployed releases"), the newest
// superseded one.
func TestLastRan(t *testing.T) {
	for _, c := range []struct {
		name     string
		statuses []common.Status // of revisions 1, 2, ...
		want     int
	}{
		{"deployed, then an upgrade left pending", []common.Status{common.StatusSuperseded, common.StatusDeployed, common.StatusPendingUpgrade}, 2},
		{"killed between superseded and deployed", []common.Status{common.StatusSuperseded, common.StatusSuperseded, common.StatusPendingUpgrade}, 2},
		{"a failed revision is not one that ran", []common.Status{common.StatusSuperseded, common.StatusFailed, common.StatusPendingUpgrade}, 1},
		{"nothing ran", []common.Status{common.StatusPendingInstall}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := &action.Configuration{Releases: storage.Init(driver.NewMemory())}
			for i, s := range c.statuses {
				r := &releasev1.Release{Name: "deployment-1", Namespace: "ns", Version: i + 1, Info: &releasev1.Info{Status: s}}
				if err := cfg.Releases.Create(r); err != nil {
					t.Fatal(err)
				}
			}
			got, err := lastRan(cfg, "deployment-1")
			if c.want == 0 {
				if err == nil {
					t.Errorf("lastRan = %d, want an error", got)
				}
			} else if err != nil || got != c.want {
				t.Errorf("lastRan = %d, %v; want %d", got, err, c.want)
			}
		})
	}
}
