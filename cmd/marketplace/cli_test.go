package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mpctl is the real mpctl binary, built for a test, run with a contexts file of the test's own.
type mpctl struct {
	bin, home string
}

// buildMpctl builds cmd/mpctl into the test's temporary directory.
func buildMpctl(t *testing.T) *mpctl {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "mpctl")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/marketplace/marketplace/cmd/mpctl").CombinedOutput()
	if err != nil {
		t.Fatalf("go build mpctl: %v\n%s", err, out)
	}
	return &mpctl{bin: bin, home: filepath.Join(dir, "home")}
}

// result is what one run of mpctl printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

// run runs mpctl with args and extra environment (NAME=value), in an environment with nothing of the
// developer's (its own HOME and XDG_CONFIG_HOME).
func (m *mpctl) run(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	return m.runWithStdin(t, "", extraEnv, args...)
}

// runWithStdin is run with stdin on mpctl's standard input.
func (m *mpctl) runWithStdin(t *testing.T, stdin string, extraEnv []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(m.bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + m.home, "XDG_CONFIG_HOME=" + filepath.Join(m.home, "config")}, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("mpctl %v: %v", args, err)
	}
	t.Logf("$ mpctl %s  → %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// must runs mpctl and fails the test unless it exits 0.
func (m *mpctl) must(t *testing.T, args ...string) string {
	t.Helper()
	r := m.run(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("mpctl %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// expectFailure runs mpctl and checks its exit code and that stderr says each of want.
func (m *mpctl) expectFailure(t *testing.T, extraEnv []string, code int, want []string, args ...string) {
	t.Helper()
	r := m.run(t, extraEnv, args...)
	if r.code != code {
		t.Errorf("mpctl %s: exit %d, want %d\n%s%s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("mpctl %s: stderr %q does not say %q", strings.Join(args, " "), r.stderr, w)
		}
	}
}

// TestCLIWorkflow drives the real mpctl binary against a real marketplace as a user would: login,
// publish from a YAML file, install with --set and --wait, list as a table and as JSON, the statement
// as CSV, delete; and the exit codes and messages of a wrong token, an unknown app and a failed install.
func TestCLIWorkflow(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"DEPLOY_MAX_ATTEMPTS": "2", "DEPLOY_RETRY_BACKOFF": "200ms"})
	cli := buildMpctl(t)
	_, token := mp.user(t, "cli user")

	// A wrong token is refused and saves nothing.
	cli.expectFailure(t, nil, 3, []string{"Unauthorized", "token"}, "login", "--url", mp.URL, "--token", "mpt_wrong")
	if _, err := os.Stat(filepath.Join(cli.home, "config", "marketplace", "config.yaml")); err == nil {
		t.Error("a refused login saved a context")
	}
	// The token can come from standard input (out of the process list and the shell's history).
	if r := cli.runWithStdin(t, token+"\n", nil, "login", "--url", mp.URL, "--token", "-", "--name", "piped"); r.code != 0 || !strings.Contains(r.stdout, "as user 1 (cli user)") {
		t.Errorf("login --token - with the token on stdin: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if out := cli.must(t, "login", "--url", mp.URL, "--token", token); !strings.Contains(out, "as user 1 (cli user)") {
		t.Errorf("login says %q", out)
	}
	cfg, err := os.Stat(filepath.Join(cli.home, "config", "marketplace", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode().Perm() != 0o600 {
		t.Errorf("the contexts file has mode %v, want 0600: it holds a token", cfg.Mode().Perm())
	}

	appFile := filepath.Join(t.TempDir(), "app.yaml")
	writeFile(t, appFile, fmt.Sprintf(`name: CLI App
description: hello-web, published from a file
hourly_rate: 0.125001
deployment:
  type: k8s
  repoURL: %s
  chartName: hello-web
inputs:
  - name: replicaCount
    type: integer
    default: 1
`, tenv.ChartRepo))
	if out := cli.must(t, "apps", "publish", "-f", appFile); !strings.Contains(out, "Published application 1 (CLI App)") {
		t.Errorf("publish says %q", out)
	}
	cli.must(t, "projects", "create", "p1")

	// Install by names, with --set, and watch it to the end.
	out := cli.must(t, "install", "CLI App", "--project", "p1", "--set", "replicaCount=2", "--wait")
	for _, want := range []string{"Deployment 1 of CLI App into project 1: pending", "deployment 1: installed"} {
		if !strings.Contains(out, want) {
			t.Errorf("install --wait printed %q, without %q", out, want)
		}
	}
	if got := mp.must(t, 200, "GET", "/api/deployments/1", token, nil).JSON(t)["inputs"].(map[string]any)["replicaCount"]; fmt.Sprint(got) != "2" {
		t.Errorf("--set replicaCount=2 installed with replicaCount %v", got)
	}

	// The list as a table: a header and aligned columns.
	lines := strings.Split(strings.TrimRight(cli.must(t, "deployments", "list"), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID ") {
		t.Fatalf("deployments list: %q, want a header and one row", lines)
	}
	col := strings.Index(lines[0], "STATUS")
	if col < 0 || !strings.HasPrefix(lines[1][col:], "installed") {
		t.Errorf("the STATUS column is not aligned with its values:\n%s\n%s", lines[0], lines[1])
	}
	// ... and as JSON: the API's own fields, the rate with its exact digits.
	raw := cli.must(t, "deployments", "list", "-o", "json")
	var listed []map[string]any
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&listed); err != nil {
		t.Fatalf("deployments list -o json: %v\n%s", err, raw)
	}
	if len(listed) != 1 || listed[0]["status"] != "installed" || listed[0]["hourly_rate"] != json.Number("0.125001") {
		t.Errorf("deployments list -o json: %v", listed)
	}
	if out := cli.must(t, "deployments", "show", "1", "-o", "yaml"); !strings.Contains(out, "hourly_rate: 0.125001") || !strings.Contains(out, "status: installed") {
		t.Errorf("deployments show -o yaml: %s", out)
	}

	// The statement as CSV: the server's document, with the running deployment's line.
	rows, err := csv.NewReader(strings.NewReader(cli.must(t, "bills", "statement", "--csv"))).ReadAll()
	if err != nil {
		t.Fatalf("bills statement --csv is not CSV: %v", err)
	}
	if len(rows) != 3 || rows[0][3] != "deployment_id" || rows[1][3] != "1" || rows[1][5] != "0.125001" || rows[2][2] != "total" {
		t.Errorf("bills statement --csv: %q", rows)
	}

	// Errors: an unknown application, a wrong token, an install that fails.
	cli.expectFailure(t, nil, 3, []string{`no application named "No Such App"`}, "install", "No Such App", "--project", "p1")
	cli.expectFailure(t, nil, 3, []string{"Not Found", "application 99"}, "apps", "show", "99")
	cli.expectFailure(t, []string{"MARKETPLACE_TOKEN=mpt_wrong"}, 3, []string{"Unauthorized: the bearer token is not valid"}, "deployments", "list")
	cli.expectFailure(t, nil, 2, []string{"--set \"replicaCount\": want name=value"}, "install", "CLI App", "--project", "p1", "--set", "replicaCount")
	writeFile(t, appFile, fmt.Sprintf("name: Missing Chart\nhourly_rate: 1\ndeployment: {type: k8s, repoURL: %q, chartName: no-such-chart}\n", tenv.ChartRepo))
	cli.must(t, "apps", "publish", "-f", appFile)
	cli.expectFailure(t, nil, 4, []string{"deployment 2 failed", "attempt 2 of 2", `chart "no-such-chart"`}, "install", "Missing Chart", "--project", "p1", "--wait")

	// Delete, and watch the uninstall.
	if out := cli.must(t, "deployments", "delete", "1", "--wait"); !strings.Contains(out, "deployment 1: uninstalled") {
		t.Errorf("delete --wait printed %q", out)
	}
	if out := cli.must(t, "deployments", "list", "--status", "uninstalled", "-o", "json"); !strings.Contains(out, `"id": 1`) {
		t.Errorf("deployment 1 is not listed as uninstalled: %s", out)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
