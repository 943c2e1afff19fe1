package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/testenv"
)

// imageServer serves image files by name on loopback, as a publisher's web server would; more adds
// handlers of its own. fetchAllow is MARKETPLACE_FETCH_ALLOW with it allowed.
func imageServer(t *testing.T, files map[string]string, more map[string]http.HandlerFunc) (srv *httptest.Server, fetchAllow string) {
	t.Helper()
	mux := http.NewServeMux()
	for name, path := range files {
		mux.HandleFunc("/"+name, func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, path) })
	}
	for name, h := range more {
		mux.HandleFunc("/"+name, h)
	}
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, testRepositories() + "," + srv.Listener.Addr().String()
}

// qemuImg runs qemu-img create with args; "{}" stands for path.
func qemuImg(t *testing.T, path string, args ...string) {
	t.Helper()
	for i, a := range args {
		if a == "{}" {
			args[i] = path
		}
	}
	if out, err := exec.Command("qemu-img", append([]string{"create", "-q"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create %v: %v: %s", args, err, out)
	}
}

// vmPrefix is the prefix of everything mp's marketplace names on the VM host: "mp-<instance12>-".
func vmPrefix(t *testing.T, mp *instance) string {
	var instance string
	query(t, mp.DatabaseURL, `SELECT replace(id::text, '-', '') FROM instance`, nil, &instance)
	return "mp-" + instance[:12] + "-"
}

// publishImage publishes a vm application of image with the publisher's token; it returns its id.
func publishImage(t *testing.T, mp *instance, tok, name, image string) int64 {
	t.Helper()
	return num(t, mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": name, "hourly_rate": 1,
		"deployment": map[string]any{"type": "vm", "image": image, "cpu": "1", "memory": "256Mi"}}).JSON(t)["id"])
}

// installApp installs an application into a new project of tok's user; it returns the deployment's id.
func installApp(t *testing.T, mp *instance, tok string, app int64) int64 {
	t.Helper()
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": fmt.Sprintf("p%d", app)}).JSON(t)["id"])
	return num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok,
		map[string]any{"application_id": app, "project_id": project}).JSON(t)["deploymentID"])
}

// fileSHA256 is the hex digest of a file, which names its downloaded copy (image-<digest>.<format>).
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestVMImageRefused plays issue 17's attack and its relatives: images whose header makes QEMU (root on
// the VM host) open a host file, a file next to the image (another tenant's seed), an external data
// file, an image larger than VM_MAX_DISK and one of another format, each downloaded from a URL and some
// as files of the image directory. Each deployment ends failed at its first attempt with a reason naming
// the problem; none has a domain or a volume, and no refused image was kept in the downloads pool.
func TestVMImageRefused(t *testing.T) {
	dir := t.TempDir()
	images := filepath.Join(tenv.VMDir, "images")
	// A file next to downloaded images (the work pool, where downloads were kept) named like a seed.
	victim := testenv.Name("victim-") + "-seed.img"
	for _, pool := range []string{"pool", "downloads"} {
		os.MkdirAll(filepath.Join(tenv.VMDir, pool), 0o755)
		victimPath := filepath.Join(tenv.VMDir, pool, victim)
		if err := os.WriteFile(victimPath, []byte("another tenant's secret\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(victimPath) })
	}
	dataFile := filepath.Join(dir, "data.raw")
	type image struct{ name, want string }
	cases := []image{
		{"absolute-backing.qcow2", "backing file"},
		{"relative-backing.qcow2", "backing file"},
		{"data-file.qcow2", "external data file"},
		{"too-large.qcow2", "VM_MAX_DISK"},
		{"disk.vmdk", "vmdk"},
	}
	makeImage := func(path, name string) {
		switch name {
		case "absolute-backing.qcow2":
			qemuImg(t, path, "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", "{}")
		case "relative-backing.qcow2":
			qemuImg(t, path, "-f", "qcow2", "-u", "-F", "raw", "-b", victim, "{}", "16M")
		case "data-file.qcow2":
			qemuImg(t, path, "-f", "qcow2", "-o", "data_file="+dataFile, "{}", "16M")
		case "too-large.qcow2":
			qemuImg(t, path, "-f", "qcow2", "{}", "100G")
		case "disk.vmdk":
			qemuImg(t, path, "-f", "vmdk", "{}", "16M")
		}
	}
	served := map[string]string{}
	for _, c := range cases {
		path := filepath.Join(dir, c.name)
		makeImage(path, c.name)
		served[c.name] = path
	}
	// The same attacks as files the operator copied into the image directory.
	local := map[string]string{}
	for _, name := range []string{"absolute-backing.qcow2", "data-file.qcow2", "too-large.qcow2"} {
		local[name] = testenv.Name("refused-") + "-" + name
		path := filepath.Join(images, local[name])
		makeImage(path, name)
		t.Cleanup(func() { os.Remove(path) })
	}
	srv, allow := imageServer(t, served, nil)
	mp := startMarketplace(t, "serve", vmEnv(map[string]string{"MARKETPLACE_FETCH_ALLOW": allow, "VM_BOOT_TIMEOUT": "10s"}))
	_, pub := mp.user(t, "publisher")
	_, con := mp.user(t, "consumer")
	prefix := vmPrefix(t, mp)
	t.Cleanup(func() { mp.stop(); removeVMs(t, prefix) })

	type install struct {
		what, want, digest string
		id                 int64
	}
	var installs []install
	for _, c := range cases {
		app := publishImage(t, mp, pub, c.name, srv.URL+"/"+c.name)
		installs = append(installs, install{what: "URL " + c.name, want: c.want, digest: fileSHA256(t, served[c.name]), id: installApp(t, mp, con, app)})
	}
	for name, file := range local {
		want := map[string]string{"absolute-backing.qcow2": "backing file", "data-file.qcow2": "external data file", "too-large.qcow2": "VM_MAX_DISK"}[name]
		app := publishImage(t, mp, pub, name, file)
		installs = append(installs, install{what: "image directory " + name, want: want, id: installApp(t, mp, con, app)})
	}
	for _, in := range installs {
		d := mp.waitForStatus(t, con, in.id, "failed", 2*time.Minute)
		reason, _ := d["failure_reason"].(string)
		t.Logf("%s: %s", in.what, reason)
		if !strings.Contains(reason, "refused") || !strings.Contains(reason, in.want) || !strings.Contains(reason, "install attempt 1 of") {
			t.Errorf("%s: failure reason %q: want a refusal at the first attempt naming %q", in.what, reason, in.want)
		}
		vm := fmt.Sprintf("%sd%d", prefix, in.id)
		if domainExists(t, vm) {
			t.Errorf("%s: domain %s exists", in.what, vm)
		}
		if vols, _ := filepath.Glob(filepath.Join(tenv.VMDir, "pool", vm+"*")); len(vols) != 0 {
			t.Errorf("%s: volumes %v exist", in.what, vols)
		}
		if in.digest != "" {
			if kept, _ := filepath.Glob(filepath.Join(tenv.VMDir, "*", "image-"+in.digest+".*")); len(kept) != 0 {
				t.Errorf("%s: the refused image was kept as %v", in.what, kept)
			}
		}
	}
}

// testGuest is the test guest image, whose guests boot in seconds.
func testGuest() string { return filepath.Join(tenv.VMDir, "images", "test-guest.qcow2") }

// TestVMDownloadedImageCollected downloads an image for an install into the downloads pool (not the
// work pool with tenants' volumes); while a deployment runs it the image stays, even once its
// application is retired; once the deployment is deleted, no application version names it and it is
// deleted.
func TestVMDownloadedImageCollected(t *testing.T) {
	srv, allow := imageServer(t, map[string]string{"guest.qcow2": testGuest()}, nil)
	mp := startMarketplace(t, "serve", vmEnv(map[string]string{"MARKETPLACE_FETCH_ALLOW": allow, "VM_IMAGE_GC_INTERVAL": "500ms"}))
	_, pub := mp.user(t, "publisher")
	_, con := mp.user(t, "consumer")
	t.Cleanup(func() { prefix := vmPrefix(t, mp); mp.stop(); removeVMs(t, prefix) })
	app := publishImage(t, mp, pub, "guest", srv.URL+"/guest.qcow2")
	id := installApp(t, mp, con, app)
	mp.waitForStatus(t, con, id, "installed", 3*time.Minute)

	downloaded := filepath.Join(tenv.VMDir, "downloads", "image-"+fileSHA256(t, testGuest())+".qcow2")
	if _, err := os.Stat(downloaded); err != nil {
		t.Fatalf("the downloaded image is not in the downloads pool: %v", err)
	}
	if kept, _ := filepath.Glob(filepath.Join(tenv.VMDir, "pool", "image-*")); len(kept) != 0 {
		t.Fatalf("downloaded images in the work pool beside tenants' volumes: %v", kept)
	}
	mp.must(t, 200, "POST", fmt.Sprintf("/api/apps/%d/retire", app), pub, nil)
	time.Sleep(3 * time.Second) // several collections
	if _, err := os.Stat(downloaded); err != nil {
		t.Fatalf("the image of a running deployment was deleted: %v", err)
	}
	mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", id), con, nil)
	mp.waitForStatus(t, con, id, "uninstalled", 2*time.Minute)
	waitFor(t, 30*time.Second, "the image no version names to be deleted", func() bool {
		_, err := os.Stat(downloaded)
		return os.IsNotExist(err)
	})
}

// TestVMDownloadedImageVanished: the downloaded image's file is deleted behind libvirt's back (a disk
// clean-up on the host) while the pool still lists it; the next install downloads it again instead of
// making its disk on a file that is gone, and is installed.
func TestVMDownloadedImageVanished(t *testing.T) {
	srv, allow := imageServer(t, map[string]string{"guest.qcow2": testGuest()}, nil)
	mp := startMarketplace(t, "serve", vmEnv(map[string]string{"MARKETPLACE_FETCH_ALLOW": allow}))
	_, pub := mp.user(t, "publisher")
	_, con := mp.user(t, "consumer")
	t.Cleanup(func() { prefix := vmPrefix(t, mp); mp.stop(); removeVMs(t, prefix) })
	app := publishImage(t, mp, pub, "guest", srv.URL+"/guest.qcow2")
	first := installApp(t, mp, con, app)
	mp.waitForStatus(t, con, first, "installed", 3*time.Minute)
	mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", first), con, nil)
	mp.waitForStatus(t, con, first, "uninstalled", 2*time.Minute)

	downloaded := filepath.Join(tenv.VMDir, "downloads", "image-"+fileSHA256(t, testGuest())+".qcow2")
	if err := os.Remove(downloaded); err != nil {
		t.Fatalf("the downloaded image is not in the downloads pool: %v", err)
	}
	second := installApp(t, mp, con, app)
	mp.waitForStatus(t, con, second, "installed", 3*time.Minute)
	if _, err := os.Stat(downloaded); err != nil {
		t.Fatalf("the image was not downloaded again: %v", err)
	}
}

// TestVMImageQuota: a publisher's downloaded images count against VM_IMAGE_QUOTA_BYTES. Their second
// image would exceed it: its install fails naming the quota and boots nothing; another publisher's
// install of that same image gets past the download (its overlay is made).
func TestVMImageQuota(t *testing.T) {
	guest := testGuest()
	st, err := os.Stat(guest)
	if err != nil {
		t.Fatal(err)
	}
	// Another image: the test guest with bytes after its end, which QEMU ignores.
	bigger := filepath.Join(t.TempDir(), "bigger.qcow2")
	b, _ := os.ReadFile(guest)
	if err := os.WriteFile(bigger, append(b, make([]byte, 4096)...), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, allow := imageServer(t, map[string]string{"guest.qcow2": guest, "bigger.qcow2": bigger}, nil)
	mp := startMarketplace(t, "serve", vmEnv(map[string]string{"MARKETPLACE_FETCH_ALLOW": allow,
		"VM_IMAGE_QUOTA_BYTES": fmt.Sprint(st.Size() * 3 / 2)}))
	_, pub := mp.user(t, "publisher")
	_, other := mp.user(t, "other publisher")
	_, con := mp.user(t, "consumer")
	prefix := vmPrefix(t, mp)
	t.Cleanup(func() { mp.stop(); removeVMs(t, prefix) })
	// An overlay is made once its image was downloaded and kept: no need to wait for the guest to boot.
	overlayMade := func(id int64) {
		waitFor(t, 3*time.Minute, fmt.Sprintf("the overlay of deployment %d", id), func() bool {
			_, err := os.Stat(filepath.Join(tenv.VMDir, "pool", fmt.Sprintf("%sd%d.qcow2", prefix, id)))
			return err == nil
		})
	}

	overlayMade(installApp(t, mp, con, publishImage(t, mp, pub, "first", srv.URL+"/guest.qcow2")))
	second := installApp(t, mp, con, publishImage(t, mp, pub, "second", srv.URL+"/bigger.qcow2"))
	d := mp.waitForStatus(t, con, second, "failed", 2*time.Minute)
	if reason, _ := d["failure_reason"].(string); !strings.Contains(reason, "quota") || !strings.Contains(reason, "VM_IMAGE_QUOTA_BYTES") {
		t.Fatalf("failure reason %q: want the publisher's quota (VM_IMAGE_QUOTA_BYTES)", reason)
	}
	if vm := fmt.Sprintf("%sd%d", prefix, second); domainExists(t, vm) {
		t.Fatalf("domain %s exists", vm)
	}
	overlayMade(installApp(t, mp, con, publishImage(t, mp, other, "third", srv.URL+"/bigger.qcow2")))
}

// TestVMImageTrickle: a server that sends an image a byte a second fails its install once
// VM_IMAGE_RATE_WINDOW has passed below VM_IMAGE_MIN_RATE; another URL's download starts while the
// trickle goes on, and its install goes through.
func TestVMImageTrickle(t *testing.T) {
	var trickling, startedDuring atomic.Bool
	started := make(chan struct{}, 1)
	trickle := func(w http.ResponseWriter, r *http.Request) {
		trickling.Store(true)
		defer trickling.Store(false)
		w.Header().Set("Content-Length", "1073741824")
		w.WriteHeader(200)
		select {
		case started <- struct{}{}:
		default:
		}
		for {
			if _, err := w.Write([]byte{0}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
	guest := func(w http.ResponseWriter, r *http.Request) {
		startedDuring.Store(trickling.Load())
		http.ServeFile(w, r, testGuest())
	}
	srv, allow := imageServer(t, nil, map[string]http.HandlerFunc{"trickle.raw": trickle, "guest.qcow2": guest})
	mp := startMarketplace(t, "serve", vmEnv(map[string]string{"MARKETPLACE_FETCH_ALLOW": allow,
		"VM_IMAGE_RATE_WINDOW": "10s", "DEPLOY_MAX_ATTEMPTS": "1"}))
	_, pub := mp.user(t, "publisher")
	_, con := mp.user(t, "consumer")
	t.Cleanup(func() { prefix := vmPrefix(t, mp); mp.stop(); removeVMs(t, prefix) })

	slow := installApp(t, mp, con, publishImage(t, mp, pub, "slow", srv.URL+"/trickle.raw"))
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatal("the trickling image was never requested")
	}
	fine := installApp(t, mp, con, publishImage(t, mp, pub, "fine", srv.URL+"/guest.qcow2"))
	mp.waitForStatus(t, con, fine, "installed", 3*time.Minute)
	if !startedDuring.Load() {
		t.Fatal("the second image's download did not start while the first trickled")
	}
	d := mp.waitForStatus(t, con, slow, "failed", time.Minute)
	if reason, _ := d["failure_reason"].(string); !strings.Contains(reason, "too slowly") || !strings.Contains(reason, "VM_IMAGE_MIN_RATE") {
		t.Fatalf("failure reason %q: want that the image came too slowly (VM_IMAGE_MIN_RATE)", reason)
	}
}

// TestVMUpgradeToRefusedImage: an upgrade to a version whose image names a backing file (a host file)
// is refused at its first attempt before anything changes: the previous version runs on, its domain
// never stopped, and no overlay of the refused image was made.
func TestVMUpgradeToRefusedImage(t *testing.T) {
	attack := filepath.Join(t.TempDir(), "attack.qcow2")
	qemuImg(t, attack, "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", "{}")
	srv, allow := imageServer(t, map[string]string{"attack.qcow2": attack}, nil)
	mp := startMarketplace(t, "serve", vmEnv(map[string]string{"MARKETPLACE_FETCH_ALLOW": allow}))
	tok := publishVM(t, mp, "test-guest.qcow2")
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	d := mp.waitForStatus(t, tok, 1, "installed", 3*time.Minute)
	vm := d["placement"].(map[string]any)["vm_name"].(string)
	started := domainStarted(t, vm)

	mp.must(t, 201, "POST", "/api/apps/1/versions", tok, map[string]any{"hourly_rate": 3,
		"deployment": map[string]any{"type": "vm", "image": srv.URL + "/attack.qcow2", "cpu": "1", "memory": "256Mi"}})
	mp.must(t, 202, "POST", "/api/deployments/1/upgrade", tok, map[string]any{"version": 2})
	waitFor(t, 2*time.Minute, "the refused upgrade to be recorded", func() bool {
		d = mp.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t)
		return d["status"] == "installed" && d["failure_reason"] != nil && d["failure_reason"] != ""
	})
	reason := d["failure_reason"].(string)
	if !strings.Contains(reason, "backing file") || !strings.Contains(reason, "upgrade attempt 1 of") || num(t, d["version"]) != 1 {
		t.Fatalf("after the upgrade: version %v, failure reason %q; want version 1 and a refusal naming the backing file", d["version"], reason)
	}
	if again := domainStarted(t, vm); again != started {
		t.Fatalf("the domain was restarted (%s, then %s)", started, again)
	}
	if vols, _ := filepath.Glob(filepath.Join(tenv.VMDir, "pool", vm+"-b*")); len(vols) != 0 {
		t.Fatalf("volumes of the refused revision: %v", vols)
	}
}

// domainStarted identifies a domain's current run: its QEMU process id (libvirt's pid file).
func domainStarted(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/run/libvirt/qemu", name+".pid"))
	if err != nil {
		t.Fatalf("domain %s is not running: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}
