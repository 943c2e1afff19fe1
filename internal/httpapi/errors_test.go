package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// A request whose client went away fails with the context's cancellation deep in a query: that is no
// fault of ours, so it is answered 499 and logged as information, not as an internal error; the same
// cancellation while the request's client is still there (a shutdown's, say) is one.
func TestClientCancellationIsNoInternalError(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	err := fmt.Errorf("find projects: %w", context.Canceled)

	if got := problemStatus(gone, log, err); got != statusClientClosedRequest {
		t.Fatalf("status %d for a request whose client went away, want %d", got, statusClientClosedRequest)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("a client's leaving logged as an error: %s", logs.String())
	}
	logs.Reset()
	if got := problemStatus(context.Background(), log, err); got != 500 {
		t.Fatalf("status %d for a cancellation of ours, want 500", got)
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("an internal error not logged as one: %q", logs.String())
	}
}
