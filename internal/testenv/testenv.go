// Package testenv starts the real components tests run against, once per test binary: a migrated
// template database on the local PostgreSQL (each test gets a copy), a Redis server of the binary's own
// (each test gets its own database number), the local Kubernetes cluster's kubeconfig and the bundled
// chart repository. Nothing here is a fake.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/registry"

	"github.com/marketplace/marketplace/internal/chartrepo"
	"github.com/marketplace/marketplace/internal/postgres"
)

// Env is what one test binary shares.
type Env struct {
	// PostgresURL is the server's URL with no database; Database fills it in.
	PostgresURL string
	template    string
	databases   atomic.Int64

	// Redis is the binary's own Redis server; Redis DB numbers are handed out per test.
	Redis     *Redis
	redisDBs  atomic.Int64
	Root      string // the repository's root
	Kubecfg   string // the local cluster's kubeconfig
	ChartRepo string // URL of the bundled chart repository
	// OCIRepo is an oci:// reference under which a real OCI registry holds the bundled charts
	// (oci://127.0.0.1:PORT/charts/hello-web). The registry speaks plain HTTP.
	OCIRepo string
	// VMDir is the local VM host's directory (images/, pool/, logs/) and VMNetNS the network namespace its
	// guests are reachable from (scripts/vmhost.sh).
	VMDir   string
	VMNetNS string
	// hydra is a real OpenID provider, started by the first test that asks for it (Env.Hydra).
	hydra struct {
		once sync.Once
		h    *Hydra
		err  error
	}

	cleanup []func()
}

// Options choose the heavy parts a binary needs.
type Options struct {
	Cluster  bool // needs the Kubernetes cluster and the chart repository
	Registry bool // needs an OCI registry holding the bundled charts
	VMHost   bool // needs the local VM host (libvirtd + QEMU, the test guest image)
}

// Main starts the environment, runs the tests and tears it down; use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env, testenv.Options{Cluster: true})) }
func Main(m *testing.M, env **Env, opts Options) int {
	e, err := start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		if e != nil {
			e.close()
		}
		return 1
	}
	*env = e
	defer e.close()
	return m.Run()
}

func start(opts Options) (*Env, error) {
	e := &Env{PostgresURL: getenv("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/?sslmode=disable")}
	_, file, _, _ := runtime.Caller(0)
	e.Root = filepath.Join(filepath.Dir(file), "..", "..")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.template = fmt.Sprintf("mp_template_%d_%s", os.Getpid(), randHex(3))
	db, err := postgres.Open(ctx, e.url(e.template))
	if err != nil {
		return e, err
	}
	err = db.Migrate(ctx)
	db.Close()
	e.cleanup = append(e.cleanup, func() { e.dropDatabase(e.template) })
	if err != nil {
		return e, err
	}

	e.Redis, err = StartRedis(0)
	if err != nil {
		return e, err
	}
	e.cleanup = append(e.cleanup, e.Redis.Stop)

	if opts.Cluster {
		e.Kubecfg = os.Getenv("KUBECONFIG")
		if e.Kubecfg == "" {
			e.Kubecfg = filepath.Join(e.Root, ".local", "cluster", "kubeconfig")
		}
		if _, err := os.Stat(e.Kubecfg); err != nil {
			return e, fmt.Errorf("no Kubernetes cluster (%v): run `make cluster` or `make test`", err)
		}
		dir, err := os.MkdirTemp("", "mp-charts-")
		if err != nil {
			return e, err
		}
		e.cleanup = append(e.cleanup, func() { os.RemoveAll(dir) })
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return e, err
		}
		// The shipped charts, and charts only tests use (hostile ones, for instance).
		for _, src := range []string{filepath.Join(e.Root, "charts"), filepath.Join(e.Root, "internal", "testenv", "testdata", "charts")} {
			if err := chartrepo.Build(src, dir); err != nil {
				return e, err
			}
		}
		srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
		go srv.Serve(ln)
		e.cleanup = append(e.cleanup, func() { srv.Close() })
		e.ChartRepo = "http://" + ln.Addr().String()
	}
	if opts.Registry {
		if err := e.startRegistry(); err != nil {
			return e, err
		}
	}
	if opts.VMHost {
		e.VMDir = filepath.Join(e.Root, ".local", "vm")
		e.VMNetNS = getenv("VMHOST_NETNS", "marketplace-vm")
		for _, need := range []string{"/run/libvirt/libvirt-sock", filepath.Join(e.VMDir, "images", "test-guest.qcow2")} {
			if _, err := os.Stat(need); err != nil {
				return e, fmt.Errorf("no local VM host (%v): run `make vmhost` or `make test`", err)
			}
		}
	}
	return e, nil
}

// startRegistry starts the CNCF distribution registry that scripts/registry.sh builds, on a free
// loopback port, and pushes every chart of ./charts to it with Helm's registry client.
func (e *Env) startRegistry() error {
	bin := filepath.Join(getenv("MARKETPLACE_CACHE", filepath.Join(os.Getenv("HOME"), ".cache", "marketplace")), "bin", "registry")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no OCI registry binary (%v): run `make registry` or `make test`", err)
	}
	dir, err := os.MkdirTemp("", "mp-registry-")
	if err != nil {
		return err
	}
	e.cleanup = append(e.cleanup, func() { os.RemoveAll(dir) })
	port, err := FreePort()
	if err != nil {
		return err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), host)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Env = []string{"HOME=" + dir} // the registry reads REGISTRY_* variables as configuration
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start registry: %w", err)
	}
	e.cleanup = append(e.cleanup, func() { cmd.Process.Kill(); cmd.Wait(); logFile.Close() })
	ready := false
	for range 100 {
		if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			ready = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ready {
		return fmt.Errorf("registry on %s did not start; see %s", host, logFile.Name())
	}

	rc, err := registry.NewClient(registry.ClientOptPlainHTTP())
	if err != nil {
		return err
	}
	packaged := filepath.Join(dir, "packaged")
	if err := chartrepo.Build(filepath.Join(e.Root, "charts"), packaged); err != nil {
		return err
	}
	tgzs, _ := filepath.Glob(filepath.Join(packaged, "*.tgz"))
	for _, tgz := range tgzs {
		data, err := os.ReadFile(tgz)
		if err != nil {
			return err
		}
		ch, err := loader.LoadArchive(bytes.NewReader(data))
		if err != nil {
			return err
		}
		ref := fmt.Sprintf("%s/charts/%s:%s", host, ch.Metadata.Name, ch.Metadata.Version)
		if _, err := rc.Push(data, ref); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
	}
	e.OCIRepo = "oci://" + host + "/charts"
	return nil
}

// Hydra returns the binary's OpenID provider, started once by the first test that asks for it and
// stopped when the binary's tests end.
func (e *Env) Hydra(tb testing.TB) *Hydra {
	tb.Helper()
	e.hydra.once.Do(func() { e.hydra.h, e.hydra.err = e.startHydra() })
	if e.hydra.err != nil {
		tb.Fatal(e.hydra.err)
	}
	return e.hydra.h
}

func (e *Env) close() {
	for i := len(e.cleanup) - 1; i >= 0; i-- {
		e.cleanup[i]()
	}
}

func (e *Env) url(database string) string {
	return strings.Replace(e.PostgresURL, "/?", "/"+database+"?", 1)
}

// Database returns the URL of a fresh, migrated database of the test's own, dropped when it ends.
func (e *Env) Database(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("mp_test_%d_%d", os.Getpid(), e.databases.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.url("postgres"))
	if err != nil {
		tb.Fatalf("connect to postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, e.template)); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() { e.dropDatabase(name) })
	// A copy of the template would share its instance id: each test database is a marketplace of its own.
	db, err := pgx.Connect(ctx, e.url(name))
	if err != nil {
		tb.Fatalf("connect to the test database: %v", err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, "UPDATE instance SET id = gen_random_uuid()"); err != nil {
		tb.Fatalf("give the test database an instance id of its own: %v", err)
	}
	return e.url(name)
}

// createDatabase creates an empty database (for a program of its own, such as Hydra).
func (e *Env) createDatabase(name string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.url("postgres"))
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func (e *Env) dropDatabase(name string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.url("postgres"))
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

// RedisURL returns a Redis URL with a database number of the test's own on the binary's Redis.
func (e *Env) RedisURL(tb testing.TB) string {
	n := e.redisDBs.Add(1)
	if n >= redisDatabases {
		tb.Fatalf("more than %d tests asked for a Redis database", redisDatabases-1)
	}
	return e.Redis.URL(int(n))
}

const redisDatabases = 512

// Redis is a redis-server process of the test binary's own.
type Redis struct {
	Port int
	dir  string
	cmd  *exec.Cmd
}

// StartRedis starts a redis-server on port (a free one when 0) that keeps nothing on disk.
func StartRedis(port int) (*Redis, error) {
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "mp-redis-")
	if err != nil {
		return nil, err
	}
	r := &Redis{Port: port, dir: dir}
	return r, r.Start()
}

// Start starts (or restarts) the server on its port and waits until it answers.
func (r *Redis) Start() error {
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--databases", strconv.Itoa(redisDatabases), "--dir", r.dir)
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	for range 100 {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(r.Port)); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on port %d did not start", r.Port)
}

// Stop kills the server and waits until it is gone.
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// URL is the URL of database db.
func (r *Redis) URL(db int) string { return fmt.Sprintf("redis://127.0.0.1:%d/%d", r.Port, db) }

// FreePort returns a TCP port nothing listens on right now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Name returns a short random name for namespaces and the like, unique across runs on one cluster.
func Name(prefix string) string { return prefix + randHex(3) }

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// OperatorCredentials gives the test a fresh HOME whose Docker and Helm credential files hold a password
// for the registry at host, as an operator's machine would, and returns the HOME and what an
// Authorization header carrying that password contains: a registry must never receive it.
func OperatorCredentials(tb testing.TB, host string) (home, secret string) {
	tb.Helper()
	home = tb.TempDir()
	tb.Setenv("HOME", home) // Helm and Docker's credential stores read the process's HOME
	tb.Setenv("DOCKER_CONFIG", "")
	tb.Setenv("HELM_REGISTRY_CONFIG", "")
	tb.Setenv("XDG_CONFIG_HOME", "")
	secret = base64.StdEncoding.EncodeToString([]byte("operator:operator-password"))
	config := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, secret)
	for _, file := range []string{filepath.Join(home, ".docker", "config.json"), filepath.Join(home, ".config", "helm", "registry", "config.json")} {
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return home, secret
}
