package apiclient

import (
	"bytes"
	"os"
	"testing"

	"github.com/marketplace/marketplace/internal/httpapi"
)

// TestDocumentIsCurrent fails when the handlers no longer generate the committed openapi.yaml, from which
// the client was generated: the client would have drifted from the server.
func TestDocumentIsCurrent(t *testing.T) {
	committed, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	current, err := httpapi.OpenAPI().DowngradeYAML()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, current) {
		t.Fatalf("internal/cli/apiclient/openapi.yaml differs from what the handlers of internal/httpapi generate "+
			"(first difference at line %d): run `go generate ./...` and commit openapi.yaml and client.gen.go", firstDifferentLine(committed, current))
	}
}

func firstDifferentLine(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(la), len(lb)) {
		if !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}
