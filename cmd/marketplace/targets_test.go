package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// targetsEnv is a marketplace that seals kubeconfigs and checks its targets every half second.
func targetsEnv(t *testing.T, extra map[string]string) map[string]string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MARKETPLACE_SECRET_KEY": base64.StdEncoding.EncodeToString(key), "TARGET_CHECK_INTERVAL": "500ms"}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// targetNamed finds a target of kind by name in GET /api/targets.
func targetNamed(t *testing.T, mp *instance, kind, name string) map[string]any {
	t.Helper()
	var list struct {
		Targets []map[string]any `json:"targets"`
	}
	r := mp.must(t, 200, "GET", "/api/targets", mp.Environ["MARKETPLACE_ADMIN_TOKEN"], nil)
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&list); err != nil {
		t.Fatal(err)
	}
	for _, tg := range list.Targets {
		if tg["kind"] == kind && tg["name"] == name {
			return tg
		}
	}
	return nil
}

// waitReachable waits until a worker has found the target reachable and returns it.
func waitReachable(t *testing.T, mp *instance, kind, name string) map[string]any {
	t.Helper()
	var tg map[string]any
	waitFor(t, 60*time.Second, kind+" target "+name+" to be checked reachable", func() bool {
		tg = targetNamed(t, mp, kind, name)
		h, _ := tg["health"].(map[string]any)
		return h != nil && h["reachable"] == true
	})
	return tg
}

// TestTargetsLocalClusterTwice registers the local cluster a second time under another name, from its
// kubeconfig: the operator lists it with its health (reachable, the API server's version) and never its
// credentials; installs land on default and keep it; default cannot be removed, nor a target with
// deployments, while the second one goes; a user sees no target; mpctl does the same.
func TestTargetsLocalClusterTwice(t *testing.T) {
	mp := startMarketplace(t, "serve", targetsEnv(t, nil))
	op := mp.Environ["MARKETPLACE_ADMIN_TOKEN"]
	kubeconfig := flatKubeconfig(t, tenv.Kubecfg)

	// The default comes from KUBECONFIG; an install made now lands on it.
	def := waitReachable(t, mp, "k8s", "default")
	if def["from_environment"] != true || !strings.HasPrefix(fmt.Sprint(def["address"]), "https://") {
		t.Fatalf("the default cluster target: %v", def)
	}
	_, tok := mp.user(t, "consumer")
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}})
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"}).JSON(t)["id"])
	d := accepted(t, mp, tok, map[string]any{"application_id": 1, "project_id": project})
	if num(t, d["target_id"]) != num(t, def["id"]) {
		t.Fatalf("the install landed on target %v, want the default %v", d["target_id"], def["id"])
	}

	// The same cluster again, under another name, from its kubeconfig.
	second := mp.must(t, 201, "POST", "/api/targets", op, map[string]any{"kind": "k8s", "name": "local-again",
		"labels": map[string]string{"region": "here", "env": "test"}, "kubeconfig": string(kubeconfig)}).JSON(t)
	if second["address"] != def["address"] || second["from_environment"] != false {
		t.Fatalf("registered %v", second)
	}
	again := waitReachable(t, mp, "k8s", "local-again")
	h := again["health"].(map[string]any)
	if v, _ := h["version"].(string); !strings.HasPrefix(v, "v1.") || h["error"] != nil {
		t.Fatalf("health of the second registration: %v", h)
	}
	if def = targetNamed(t, mp, "k8s", "default"); def["health"].(map[string]any)["version"] != h["version"] {
		t.Fatalf("one cluster, two versions: %v and %v", def["health"], h)
	}
	// Its credentials are never shown, listed or not; a name is registered once.
	for _, path := range []string{"/api/targets", fmt.Sprintf("/api/targets/%d", num(t, second["id"]))} {
		body := mp.must(t, 200, "GET", path, op, nil).Body
		for _, secret := range credentialsOf(t, kubeconfig) {
			if strings.Contains(string(body), secret) {
				t.Fatalf("GET %s shows the kubeconfig's credentials: %s", path, body)
			}
		}
	}
	mp.must(t, 409, "POST", "/api/targets", op, map[string]any{"kind": "k8s", "name": "local-again", "kubeconfig": string(kubeconfig)})
	mp.must(t, 422, "POST", "/api/targets", op, map[string]any{"kind": "k8s", "name": "broken", "kubeconfig": "clusters: [nope"})
	// A user sees none and registers none.
	mp.must(t, 404, "GET", "/api/targets", tok, nil)
	mp.must(t, 404, "GET", fmt.Sprintf("/api/targets/%d", num(t, second["id"])), tok, nil)
	mp.must(t, 404, "POST", "/api/targets", tok, map[string]any{"kind": "vm", "name": "mine", "uri": "qemu+tcp://10.1.2.3/system"})

	// Default holds the install: it stays; the second, with nothing on it, goes.
	if n := num(t, targetNamed(t, mp, "k8s", "default")["deployments"]); n != 1 {
		t.Fatalf("the default target counts %d deployments, want 1", n)
	}
	mp.must(t, 409, "DELETE", fmt.Sprintf("/api/targets/%d", num(t, def["id"])), op, nil)
	mp.must(t, 204, "DELETE", fmt.Sprintf("/api/targets/%d", num(t, second["id"])), op, nil)
	mp.must(t, 404, "GET", fmt.Sprintf("/api/targets/%d", num(t, second["id"])), op, nil)
	got := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", num(t, d["id"])), tok, nil).JSON(t)
	if num(t, got["target_id"]) != num(t, def["id"]) {
		t.Fatalf("the deployment moved to target %v", got["target_id"])
	}

	// mpctl, as the operator.
	cli := buildMpctl(t)
	env := []string{"MARKETPLACE_URL=" + mp.URL, "MARKETPLACE_TOKEN=" + op}
	kcFile := t.TempDir() + "/kubeconfig"
	writeFile(t, kcFile, string(kubeconfig))
	if r := cli.run(t, env, "targets", "register", "cli-cluster", "--kubeconfig", kcFile, "--label", "env=test"); r.code != 0 || !strings.Contains(r.stdout, "Registered k8s target") {
		t.Fatalf("mpctl targets register: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	waitReachable(t, mp, "k8s", "cli-cluster")
	if r := cli.run(t, env, "targets", "list"); r.code != 0 || !strings.Contains(r.stdout, "cli-cluster") || !strings.Contains(r.stdout, "env=test") {
		t.Fatalf("mpctl targets list: exit %d %q", r.code, r.stdout)
	}
	cli.expectFailure(t, env, 1, []string{"KUBECONFIG gives"}, "targets", "remove", fmt.Sprint(num(t, def["id"])))
	cli.expectFailure(t, env, 2, []string{"exactly one of --kubeconfig"}, "targets", "register", "x")
}

// accepted installs and reads the deployment accepted.
func accepted(t *testing.T, mp *instance, tok string, install map[string]any) map[string]any {
	t.Helper()
	id := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok, install).JSON(t)["deploymentID"])
	return mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", id), tok, nil).JSON(t)
}

// credentialsOf are the secret values of a kubeconfig (tokens, keys, certificates), as they appear in it.
func credentialsOf(t *testing.T, kubeconfig []byte) []string {
	t.Helper()
	var secrets []string
	for _, line := range strings.Split(string(kubeconfig), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		v = strings.TrimSpace(v)
		if ok && len(v) > 16 && (strings.Contains(k, "token") || strings.Contains(k, "-data") || strings.Contains(k, "password")) {
			secrets = append(secrets, v)
		}
	}
	if len(secrets) == 0 {
		t.Fatalf("the test kubeconfig holds no credentials to look for:\n%s", kubeconfig)
	}
	return secrets
}

// TestTargetsLocalVMHost registers the local VM host under a second name by its socket: a worker finds it
// reachable with libvirt's version and its real CPUs and memory, the default VM host shows the same, and
// what the marketplace placed is counted from the guests it runs there.
func TestTargetsLocalVMHost(t *testing.T) {
	mp := startMarketplace(t, "serve", targetsEnv(t, vmEnv(map[string]string{"VM_CPU_OVERCOMMIT": "2"})))
	op := mp.Environ["MARKETPLACE_ADMIN_TOKEN"]
	cpus, mib := vmNodeInfo(t)
	mp.must(t, 201, "POST", "/api/targets", op, map[string]any{"kind": "vm", "name": "local-socket",
		"labels": map[string]string{"zone": "a"}, "uri": "qemu+unix:///system?socket=" + localLibvirtSocket})
	for _, name := range []string{"local-socket", "default"} {
		tg := waitReachable(t, mp, "vm", name)
		c, _ := tg["capacity"].(map[string]any)
		if c == nil {
			t.Fatalf("VM host %s without capacity: %v", name, tg)
		}
		total := c["total"].(map[string]any)
		if num(t, total["vcpus"]) != int64(cpus) || num(t, total["memory_mib"]) != mib {
			t.Fatalf("VM host %s: total %v, want %d vCPUs and %d MiB (virsh nodeinfo)", name, total, cpus, mib)
		}
		alloc, free, placed := c["allocatable"].(map[string]any), c["free"].(map[string]any), c["placed"].(map[string]any)
		if num(t, alloc["vcpus"]) != int64(2*cpus) || num(t, placed["vcpus"]) != 0 || num(t, free["vcpus"]) != int64(2*cpus) ||
			num(t, free["memory_mib"]) != mib {
			t.Fatalf("VM host %s: capacity %v", name, c)
		}
		if v, _ := tg["health"].(map[string]any)["version"].(string); v == "" || !strings.Contains(v, ".") {
			t.Fatalf("VM host %s: libvirt version %q", name, v)
		}
	}
	// A guest accepted on the default counts there (placed), not on the other registration of the host.
	tok := publishVM(t, mp, "test-guest.qcow2")
	d := accepted(t, mp, tok, map[string]any{"application_id": 1, "project_id": 1})
	def := targetNamed(t, mp, "vm", "default")
	if num(t, d["target_id"]) != num(t, def["id"]) {
		t.Fatalf("the vm install landed on %v, want the default VM host %v", d["target_id"], def["id"])
	}
	placed := def["capacity"].(map[string]any)["placed"].(map[string]any)
	other := targetNamed(t, mp, "vm", "local-socket")["capacity"].(map[string]any)["placed"].(map[string]any)
	if num(t, placed["vcpus"]) != 1 || num(t, placed["memory_mib"]) != 256 || num(t, other["vcpus"]) != 0 {
		t.Fatalf("placed on the default %v, on the other %v; want the guest's 1 vCPU and 256 MiB on the default only", placed, other)
	}
}

// flatKubeconfig is the kubeconfig at path with the files it names inlined (its CA, client certificate
// and key as *-data), as a remote cluster's is handed over.
func flatKubeconfig(t *testing.T, path string) []byte {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		t.Fatal(err)
	}
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
