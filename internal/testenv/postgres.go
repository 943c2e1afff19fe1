package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Postgres is a PostgreSQL server of a test's own, in a data directory of its own, for a test that stops
// and restarts it: the server at TEST_POSTGRES_URL is shared by every test package running at once.
// A stop is a crash of the server, recovered at the next start from its WAL.
type Postgres struct {
	Port int
	dir  string
	bin  string
	// runAs is the postgres user when the test runs as root, which PostgreSQL refuses to run as.
	runAs *syscall.Credential
}

// StartPostgres makes a cluster (initdb, trust authentication, superuser postgres) in a temporary
// directory and starts it on a free loopback port. Remove stops it and deletes the directory.
func StartPostgres() (*Postgres, error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mp-postgres-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{Port: port, dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, PostgreSQL needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.runAs = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := p.command("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// Loopback only, no Unix socket (its directory would be the system's), and nothing waits for the disk:
	// the operating system keeps what was written through a crash of the server (not of the machine).
	// Commits still wait for their WAL to be written (synchronous_commit), or an immediate stop would
	// lose the last ones: an accepted request that is gone after the restart.
	conf := fmt.Sprintf("\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 200\n"+
		"fsync = off\nfull_page_writes = off\n", port)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := p.Start(); err != nil {
		p.Remove()
		return nil, err
	}
	return p, nil
}

// URL is the URL of database on the server.
func (p *Postgres) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, database)
}

// Start starts the server (again) and waits until it takes connections; after a Stop it first
// recovers from its WAL, as after a crash.
func (p *Postgres) Start() error {
	out, err := p.command("pg_ctl", "start", "-w", "-t", "60", "-D", filepath.Join(p.dir, "data"),
		"-l", filepath.Join(p.dir, "server.log")).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return nil
}

// Stop stops the server the way a crash would (immediate mode: no checkpoint, every connection
// dropped) and waits until it is gone.
func (p *Postgres) Stop() error {
	if out, err := p.command("pg_ctl", "stop", "-w", "-m", "immediate", "-D", filepath.Join(p.dir, "data")).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// Remove stops the server if it runs and deletes its directory.
func (p *Postgres) Remove() {
	p.Stop()
	os.RemoveAll(p.dir)
}

func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	cmd.Env = []string{"PATH=" + p.bin + ":/usr/bin:/bin", "LC_ALL=C"}
	if p.runAs != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.runAs}
	}
	return cmd
}

// postgresBin is the directory of the server's programs (initdb, pg_ctl): PG_BIN, Debian's newest
// /usr/lib/postgresql/<version>/bin, or the directory of initdb on PATH.
func postgresBin() (string, error) {
	if dir := os.Getenv("PG_BIN"); dir != "" {
		return dir, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) < versionOf(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if path, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(path), nil
	}
	return "", fmt.Errorf("no PostgreSQL server programs (initdb, pg_ctl) found: install postgresql or set PG_BIN")
}

// versionOf is the major version in a path /usr/lib/postgresql/<version>/bin.
func versionOf(dir string) float64 {
	v, _ := strconv.ParseFloat(strings.Split(strings.TrimPrefix(dir, "/usr/lib/postgresql/"), "/")[0], 64)
	return v
}
