package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
	"github.com/marketplace/marketplace/internal/secretbox"
)

const testKubeconfig = `apiVersion: v1
kind: Config
current-context: east
contexts:
- name: east
  context: {cluster: east, user: admin}
clusters:
- name: east
  cluster: {server: "https://east.example:6443", certificate-authority-data: Q0FEQVRB}
users:
- name: admin
  user: {token: sup3r-s3cret-bearer-token}
`

func randomKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func openWithKeys(t *testing.T, url, current string, old ...string) *postgres.DB {
	t.Helper()
	box, err := secretbox.New(current, old)
	if err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(context.Background(), url, postgres.WithSealer(box))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// TestTargetCredentialsSealed: a cluster's kubeconfig is stored sealed (not a byte of its token in the
// row), opens again for the workers, never appears in a target's JSON, and survives a key rotation: the
// new key with the old one listed opens it and seals it again, after which the old key can go.
func TestTargetCredentialsSealed(t *testing.T) {
	f := newFixture(t, marketplace.Quotas{})
	k1, k2 := randomKey(t), randomKey(t)
	db := openWithKeys(t, f.url, k1)

	// Without a key, no cluster is registered; a VM host needs none.
	if _, err := f.db.RegisterTarget(f.ctx, marketplace.TargetInput{Kind: "k8s", Name: "east", Kubeconfig: []byte(testKubeconfig)}); marketplace.ErrorCode(err) != marketplace.ECONFLICT ||
		!strings.Contains(marketplace.ErrorMessage(err), "MARKETPLACE_SECRET_KEY") {
		t.Fatalf("register a cluster without a key: %v, want a conflict naming MARKETPLACE_SECRET_KEY", err)
	}
	target, err := db.RegisterTarget(f.ctx, marketplace.TargetInput{Kind: "k8s", Name: "east",
		Labels: map[string]string{"region": "eu", "env": "prod"}, Kubeconfig: []byte(testKubeconfig)})
	if err != nil {
		t.Fatal(err)
	}
	if target.Address != "https://east.example:6443" || target.Labels["region"] != "eu" || target.FromEnvironment {
		t.Fatalf("registered %+v", target)
	}
	var stored []byte
	f.exec(t, `SELECT credentials FROM targets WHERE id = `+itoa(target.ID), &stored)
	if len(stored) == 0 || bytes.Contains(stored, []byte("sup3r")) || bytes.Contains(stored, []byte("apiVersion")) {
		t.Fatalf("credentials at rest: %q", stored)
	}
	all, err := db.FindTargets(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{target, all} {
		b, _ := json.Marshal(v)
		if bytes.Contains(b, []byte("sup3r")) || bytes.Contains(b, []byte("certificate-authority")) || bytes.Contains(b, []byte("kubeconfig")) {
			t.Fatalf("credentials in a target's JSON: %s", b)
		}
	}

	// The workers' read opens it; a box without the key says so and opens nothing.
	opened := kubeconfigOf(t, db, target.ID)
	if opened != testKubeconfig {
		t.Fatalf("opened %q", opened)
	}
	checks, err := openWithKeys(t, f.url, k2).TargetsToCheck(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.ID == target.ID && (c.Err == nil || c.Kubeconfig != nil) {
			t.Fatalf("opened with a key that did not seal it: %v", c.Err)
		}
	}

	// Rotation: the new key with the old one listed opens it and seals it again under the new key.
	if got := kubeconfigOf(t, openWithKeys(t, f.url, k2, k1), target.ID); got != testKubeconfig {
		t.Fatalf("after rotation: %q", got)
	}
	var resealed []byte
	f.exec(t, `SELECT credentials FROM targets WHERE id = `+itoa(target.ID), &resealed)
	if bytes.Equal(resealed, stored) {
		t.Fatal("not sealed again under the new key")
	}
	if got := kubeconfigOf(t, openWithKeys(t, f.url, k2), target.ID); got != testKubeconfig {
		t.Fatalf("with the new key alone after rotation: %q", got)
	}

	// A user sees no target.
	user := marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: f.user})
	if _, err := db.FindTarget(user, target.ID); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Fatalf("a user reads a target: %v", err)
	}
	if _, err := db.RegisterTarget(user, marketplace.TargetInput{Kind: "vm", Name: "mine", URI: "qemu+tcp://h/system"}); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Fatalf("a user registers a target: %v", err)
	}
	// Bad input changes nothing.
	for _, in := range []marketplace.TargetInput{
		{Kind: "k8s", Name: "east", Kubeconfig: []byte(testKubeconfig)},                            // taken
		{Kind: "k8s", Name: "default", Kubeconfig: []byte(testKubeconfig)},                         // the environment's
		{Kind: "k8s", Name: "Bad Name", Kubeconfig: []byte(testKubeconfig)},                        // name
		{Kind: "k8s", Name: "x", Kubeconfig: []byte("not: [a kubeconfig")},                         // kubeconfig
		{Kind: "vm", Name: "x", URI: "http://h/system"},                                            // scheme
		{Kind: "vm", Name: "x", URI: "qemu+ssh://root:pw@h/system"},                                // password
		{Kind: "vm", Name: "x", URI: "qemu+tcp://h/system", Labels: map[string]string{"a b": "c"}}, // label
	} {
		if _, err := db.RegisterTarget(f.ctx, in); err == nil || marketplace.ErrorCode(err) == marketplace.EINTERNAL {
			t.Errorf("register %+v: %v, want a 4xx", in, err)
		}
	}
	if all, _ := db.FindTargets(f.ctx); len(all) != 3 {
		t.Fatalf("%d targets after refusals, want the two defaults and east", len(all))
	}
}

func kubeconfigOf(t *testing.T, db *postgres.DB, id int64) string {
	t.Helper()
	checks, err := db.TargetsToCheck(marketplace.OperatorContext(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.ID == id {
			if c.Err != nil {
				t.Fatal(c.Err)
			}
			return string(c.Kubeconfig)
		}
	}
	t.Fatalf("target %d not among those to check", id)
	return ""
}

// TestTargetRemovalAndDeployments: a deployment lands on its kind's default and keeps its target; a
// target is removed only when nothing runs on it, the default never; a VM host's capacity counts the
// guests placed on it.
func TestTargetRemovalAndDeployments(t *testing.T) {
	f := newFixture(t, marketplace.Quotas{})
	d, err := f.deploy(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := f.db.FindTargets(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]*marketplace.Target{}
	for _, tg := range all {
		byKind[tg.Kind] = tg
	}
	k8s := byKind["k8s"]
	if len(all) != 2 || k8s == nil || k8s.Name != "default" || !k8s.FromEnvironment || d.TargetID != k8s.ID || k8s.Deployments != 1 {
		t.Fatalf("targets %+v; deployment on %d", all, d.TargetID)
	}
	if err := f.db.RemoveTarget(f.ctx, k8s.ID); marketplace.ErrorCode(err) != marketplace.ECONFLICT {
		t.Fatalf("remove the default: %v", err)
	}

	host, err := f.db.RegisterTarget(f.ctx, marketplace.TargetInput{Kind: "vm", Name: "rack2", URI: "qemu+tcp://10.0.0.2/system"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.RecordTargetHealth(f.ctx, host.ID, marketplace.TargetHealth{Reachable: true, Version: "10.0.0"},
		&marketplace.VMHost{CPUs: 4, MemoryMiB: 8192, CPUOvercommit: 2, MemoryOvercommit: 1}); err != nil {
		t.Fatal(err)
	}
	vmApp := &marketplace.Application{Name: "vm", PublisherID: f.user, HourlyRate: marketplace.MustMoney("1"),
		Deployment: marketplace.DeploymentSpec{Type: "vm", Image: "guest.qcow2", CPU: "2", Memory: "1Gi"}, Inputs: []marketplace.Input{}}
	if err := f.db.CreateApp(f.ctx, vmApp); err != nil {
		t.Fatal(err)
	}
	vm := &marketplace.Deployment{ConsumerID: f.user, ApplicationID: vmApp.ID, ProjectID: f.project}
	if err := f.db.CreateDeployment(f.ctx, vm); err != nil {
		t.Fatal(err)
	}
	if vm.TargetID != byKind["vm"].ID {
		t.Fatalf("a vm deployment on %d, want the vm default %d", vm.TargetID, byKind["vm"].ID)
	}
	// Placed on rack2 (what placement will do in CreateDeployment): its capacity counts it, and it
	// cannot be removed while the guest may run.
	f.exec(t, `UPDATE deployments SET target_id = `+itoa(host.ID)+` WHERE id = `+itoa(vm.ID))
	got, err := f.db.FindTarget(f.ctx, host.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := marketplace.TargetCapacity{Total: marketplace.VMSize{VCPUs: 4, MemoryMiB: 8192}, CPUOvercommit: 2, MemoryOvercommit: 1,
		Allocatable: marketplace.VMSize{VCPUs: 8, MemoryMiB: 8192}, Placed: marketplace.VMSize{VCPUs: 2, MemoryMiB: 1024},
		Free: marketplace.VMSize{VCPUs: 6, MemoryMiB: 7168}}
	if got.Capacity == nil || *got.Capacity != want || !got.Health.Reachable || got.Health.Version != "10.0.0" || got.Deployments != 1 {
		t.Fatalf("rack2: %+v capacity %+v, want %+v", got, got.Capacity, want)
	}
	if err := f.db.RemoveTarget(f.ctx, host.ID); marketplace.ErrorCode(err) != marketplace.ECONFLICT ||
		!strings.Contains(marketplace.ErrorMessage(err), "1 deployments run on target") {
		t.Fatalf("remove a target a guest runs on: %v", err)
	}
	f.exec(t, `UPDATE deployments SET status = 'failed' WHERE id = `+itoa(vm.ID))
	if err := f.db.RemoveTarget(f.ctx, host.ID); marketplace.ErrorCode(err) != marketplace.ECONFLICT {
		t.Fatalf("remove a target a failed guest not cleaned up may run on: %v", err)
	}
	f.exec(t, `UPDATE deployments SET status = 'uninstalled' WHERE id = `+itoa(vm.ID))
	if err := f.db.RemoveTarget(f.ctx, host.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.FindTarget(f.ctx, host.ID); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Fatalf("a removed target: %v", err)
	}
	// The deployment still names it; the name is free again.
	var kept int64
	f.exec(t, `SELECT target_id FROM deployments WHERE id = `+itoa(vm.ID), &kept)
	if kept != host.ID {
		t.Fatalf("the uninstalled deployment's target: %d, want %d", kept, host.ID)
	}
	if _, err := f.db.RegisterTarget(f.ctx, marketplace.TargetInput{Kind: "vm", Name: "rack2", URI: "qemu+tcp://10.0.0.3/system"}); err != nil {
		t.Fatalf("register the name of a removed target again: %v", err)
	}
}

// TestDefaultTargetRegistrationIdempotent: replicas starting at once, and restarts, register each kind's
// default once; the address is the latest one given.
func TestDefaultTargetRegistrationIdempotent(t *testing.T) {
	f := newFixture(t, marketplace.Quotas{})
	d, err := f.deploy(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make([]int64, 8)
	for i := range ids {
		wg.Go(func() {
			db, err := postgres.Open(context.Background(), f.url)
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			tg, err := db.RegisterDefaultTarget(context.Background(), "k8s", "https://127.0.0.1:6443")
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = tg.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != d.TargetID {
			t.Fatalf("default registered as %v; the deployment is on %d", ids, d.TargetID)
		}
	}
	tg, err := f.db.RegisterDefaultTarget(context.Background(), "k8s", "https://127.0.0.1:7443")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	f.exec(t, `SELECT count(*) FROM targets WHERE name = 'default' AND kind = 'k8s'`, &n)
	if n != 1 || tg.ID != d.TargetID || tg.Address != "https://127.0.0.1:7443" || !tg.FromEnvironment {
		t.Fatalf("after a restart: %d defaults, %+v", n, tg)
	}
}
