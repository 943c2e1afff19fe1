package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// billionLaughs is a YAML document of 9 aliases of 9 aliases … nine levels deep: 400 bytes that
// expand to 9^9 strings (about 390 million) in memory if aliases are expanded without a limit.
func billionLaughs() string {
	var b strings.Builder
	b.WriteString(`a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		b.WriteString(n + ": &" + n + " [" + strings.Repeat("*"+prev+",", 8) + "*" + prev + "]\n")
		prev = n
	}
	return b.String()
}

// TestYAMLBombsAreRefused: a values file or an application file someone hands you that expands its
// aliases into gigabytes is refused as a usage error, before any request.
func TestYAMLBombsAreRefused(t *testing.T) {
	bomb := filepath.Join(t.TempDir(), "bomb.yaml")
	writeTestFile(t, bomb, billionLaughs())
	if _, err := (&inputFlags{values: []string{bomb}}).inputs(nil); err == nil || !strings.Contains(err.Error(), "alias") {
		t.Errorf("--values with a billion laughs: %v, want a refusal that names the aliases", err)
	}
	var stdout, stderr bytes.Buffer
	env := Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
		return map[string]string{"MARKETPLACE_URL": "http://127.0.0.1:1", "HOME": t.TempDir()}[k]
	}}
	if code := Run(context.Background(), []string{"apps", "publish", "-f", bomb}, env); code != ExitUsage || !strings.Contains(stderr.String(), "alias") {
		t.Errorf("apps publish -f with a billion laughs: exit %d, %q; want %d and a refusal that names the aliases", code, stderr.String(), ExitUsage)
	}
}

// TestConfigRewriteIsPrivate: the contexts file holds tokens, so every rewrite leaves it readable by its
// owner only, even when it was readable by others before (written by hand, or copied).
func TestConfigRewriteIsPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeTestFile(t, path, "current-context: a\ncontexts:\n  a: {url: 'http://a.example', token: mpt_a}\n  b: {url: 'http://b.example', token: mpt_b}\n")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	env := Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	if code := Run(context.Background(), []string{"--config", path, "config", "use-context", "b"}, env); code != ExitOK {
		t.Fatalf("config use-context: exit %d: %s", code, stderr.String())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the rewritten contexts file has mode %v, want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "current-context: b") || !strings.Contains(string(b), "mpt_a") {
		t.Errorf("the rewritten contexts file: %s", b)
	}
	// A new one is created in a directory of its owner's only.
	fresh := filepath.Join(dir, "new", "marketplace", "config.yaml")
	if err := saveConfig(fresh, &Config{CurrentContext: "a", Contexts: map[string]*Context{"a": {URL: "http://a.example", Token: "mpt_a"}}}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{fresh: 0o600, filepath.Dir(fresh): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode().Perm(), err, want)
		}
	}
}
