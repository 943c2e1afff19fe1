package main

import (
	"fmt"
	"strings"
	"testing"
)

// terminalAttack is what a publisher can name an application to act on the terminal of whoever lists
// it (in the 100 characters a name may have): clear the screen, write the clipboard (OSC 52), hide a
// link (OSC 8), overwrite the line, a C1 CSI, reverse the text (U+202E), and a newline that forges a row.
const terminalAttack = "Hostile\x1b[2J\x1b]52;c;ZXZpbA==\x07\x1b]8;;http://e.x\x1b\\app\x1b]8;;\x1b\\\r\u009b31m\u202eexe.txt\n1  forged  k8s"

// TestCLIShowsHostileTextAsText: the real mpctl prints a publisher's hostile application name and
// description as text in every format (table, JSON, YAML) and in its messages: nothing a terminal would
// act on reaches it.
func TestCLIShowsHostileTextAsText(t *testing.T) {
	mp := startMarketplace(t, "api", nil)
	cli := buildMpctl(t)
	_, pubToken := mp.user(t, "Hostile publisher")
	app := mp.must(t, 201, "POST", "/api/apps/new", pubToken, map[string]any{
		"name": terminalAttack, "description": terminalAttack, "hourly_rate": 0.5,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "greeting", "type": "string", "default": terminalAttack, "description": terminalAttack}},
	}).JSON(t)
	id := fmt.Sprint(num(t, app["id"]))
	_, token := mp.user(t, "Consumer at a terminal")
	cli.must(t, "login", "--url", mp.URL, "--token", token)
	cli.must(t, "projects", "create", "p")
	for _, args := range [][]string{{"apps", "list"}, {"apps", "list", "-o", "json"}, {"apps", "list", "-o", "yaml"},
		{"apps", "show", id}, {"apps", "show", id, "-o", "yaml"}, {"apps", "versions", id},
		{"install", id, "--project", "p"}, {"deployments", "list"}} {
		r := cli.run(t, nil, args...)
		if r.code != 0 {
			t.Errorf("mpctl %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		for _, c := range []string{"\x1b", "\x07", "\r", "\u009b", "\u202e"} {
			if strings.Contains(r.stdout+r.stderr, c) {
				t.Errorf("mpctl %s prints %q to the terminal", strings.Join(args, " "), c)
			}
		}
		if args[len(args)-1] == "list" && args[0] == "apps" && strings.Contains(r.stdout, "\n1  forged") {
			t.Errorf("mpctl apps list prints a forged row:\n%s", r.stdout)
		}
	}
}
