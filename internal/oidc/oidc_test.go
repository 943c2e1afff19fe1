package oidc

import (
	"fmt"
	"testing"
)

func TestParseGroupRoles(t *testing.T) {
	got, err := ParseGroupRoles(" platform-admins=platform:admin, devs=team:x:deployer,,")
	if err != nil || fmt.Sprint(got) != "[{platform-admins {platform admin}} {devs {team:x deployer}}]" {
		t.Fatalf("ParseGroupRoles: %v %v", got, err)
	}
	for _, bad := range []string{"devs", "devs=platform", "devs=platform:owner", "=platform:admin", "devs=:admin"} {
		if _, err := ParseGroupRoles(bad); err == nil {
			t.Errorf("ParseGroupRoles(%q) accepted", bad)
		}
	}
	p := &Provider{cfg: Config{GroupRoles: got}}
	if g := p.grants([]string{"devs", "other"}); fmt.Sprint(g) != "[{team:x deployer}]" {
		t.Errorf("grants of devs: %v", g)
	}
}
