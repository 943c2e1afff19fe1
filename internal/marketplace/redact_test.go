package marketplace_test

import (
	"strings"
	"testing"

	"github.com/marketplace/marketplace/internal/marketplace"
)

func TestSpecRedacted(t *testing.T) {
	spec := marketplace.DeploymentSpec{Type: "vm", Image: "https://alice:pw@images.example.com/x.qcow2", CPU: "1", Memory: "1Gi",
		RepoURL: "https://bob:pw2@charts.example.com/"}
	got := spec.Redacted()
	if got.Image != "https://REDACTED@images.example.com/x.qcow2" || got.RepoURL != "https://REDACTED@charts.example.com/" {
		t.Errorf("Redacted() = %+v", got)
	}
	if spec.Image != "https://alice:pw@images.example.com/x.qcow2" {
		t.Errorf("Redacted() changed the spec it was called on: %+v", spec)
	}
}

func TestKeepStoredCredentials(t *testing.T) {
	stored := marketplace.DeploymentSpec{Type: "vm", Image: "https://alice:pw@images.example.com/x.qcow2",
		RepoURL: "https://bob:pw2@charts.example.com/"}
	for _, tc := range []struct{ sent, want string }{
		{"https://REDACTED@images.example.com/x.qcow2", stored.Image},                                    // sent back as shown: kept
		{"https://alice:new@images.example.com/x.qcow2", "https://alice:new@images.example.com/x.qcow2"}, // new credentials
		{"https://REDACTED@images.example.com/y.qcow2", "https://REDACTED@images.example.com/y.qcow2"},   // another image: not the stored credentials
		{"https://REDACTED@other.example.com/x.qcow2", "https://REDACTED@other.example.com/x.qcow2"},     // another host: never
		{"https://images.example.com/x.qcow2", "https://images.example.com/x.qcow2"},                     // credentials dropped
		{"test-guest.qcow2", "test-guest.qcow2"},
	} {
		sent := marketplace.DeploymentSpec{Type: "vm", Image: tc.sent, RepoURL: "https://REDACTED@charts.example.com/"}
		sent.KeepStoredCredentials(stored)
		if sent.Image != tc.want {
			t.Errorf("image %q sent back: kept %q, want %q", tc.sent, sent.Image, tc.want)
		}
		if sent.RepoURL != stored.RepoURL {
			t.Errorf("repoURL sent back as shown: kept %q, want the stored one", sent.RepoURL)
		}
	}
}

// TestSSHKeysAreTheConsumers checks a vm application's publisher cannot choose the SSH keys its guests
// authorize: no default for ssh_authorized_keys, nothing declared under it, no other type; and an
// application stored before with a default does not apply it.
func TestSSHKeysAreTheConsumers(t *testing.T) {
	app := func(typ string, inputs ...marketplace.Input) *marketplace.Application {
		spec := marketplace.DeploymentSpec{Type: "vm", Image: "test-guest.qcow2", CPU: "1", Memory: "256Mi"}
		if typ == "k8s" {
			spec = marketplace.DeploymentSpec{Type: "k8s", RepoURL: "https://charts.example.com", ChartName: "c"}
		}
		return &marketplace.Application{Name: "a", HourlyRate: marketplace.MustMoney("1"), Deployment: spec, Inputs: inputs}
	}
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPublisherKey publisher@laptop"
	for _, tc := range []struct {
		name string
		app  *marketplace.Application
		want string // "" when valid
	}{
		{"declared to describe it", app("vm", marketplace.Input{Name: "ssh_authorized_keys", Description: "your keys"}), ""},
		{"declared required", app("vm", marketplace.Input{Name: "ssh_authorized_keys", Required: true}), ""},
		{"a default", app("vm", marketplace.Input{Name: "ssh_authorized_keys", Default: key}), "ssh_authorized_keys must not have a default"},
		{"an empty default", app("vm", marketplace.Input{Name: "ssh_authorized_keys", Default: ""}), "ssh_authorized_keys must not have a default"},
		{"nested under it", app("vm", marketplace.Input{Name: "ssh_authorized_keys.extra", Default: key}), "ssh_authorized_keys"},
		{"another type", app("vm", marketplace.Input{Name: "ssh_authorized_keys", Type: "integer"}), "ssh_authorized_keys"},
		{"a chart's value of that name", app("k8s", marketplace.Input{Name: "ssh_authorized_keys", Default: key}), ""},
	} {
		err := tc.app.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", tc.name, err)
		case tc.want != "" && (marketplace.ErrorCode(err) != marketplace.EINVALID || !strings.Contains(marketplace.ErrorMessage(err), tc.want)):
			t.Errorf("%s: %v, want EINVALID saying %q", tc.name, err, tc.want)
		}
	}

	stored := app("vm", marketplace.Input{Name: "ssh_authorized_keys", Type: "string", Default: key}, marketplace.Input{Name: "greeting", Type: "string", Default: "hi"})
	values, err := stored.Values(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := values["ssh_authorized_keys"]; ok || values["greeting"] != "hi" {
		t.Errorf("values of an application stored with a default for the keys: %v; want greeting only", values)
	}
	values, _ = stored.Values(map[string]any{"ssh_authorized_keys": "ssh-ed25519 AAAAconsumer"})
	if values["ssh_authorized_keys"] != "ssh-ed25519 AAAAconsumer" {
		t.Errorf("the consumer's keys: %v", values)
	}
}
