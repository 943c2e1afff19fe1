package workerrpc

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/testenv"
)

var tenv *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &tenv, testenv.Options{})) }

// previewer answers previews by what the deployment's inputs ask: an echo of them, a domain error, an
// error of another kind, or no answer until its deadline. (The provider code of the real types is
// exercised end to end in cmd/marketplace's TestAPIOnlyBuildAsksAWorker; this is the transport.)
type previewer struct{ marketplace.Inspector }

func (previewer) Preview(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (*marketplace.Preview, error) {
	switch d.Inputs["answer"] {
	case "invalid":
		return nil, marketplace.Errorf(marketplace.EINVALID, "replicaCount %v is more than 20", d.Inputs["replicaCount"])
	case "broken":
		return nil, errors.New("the chart repository hung up")
	case "big":
		return &marketplace.Preview{Manifest: strings.Repeat("x", 2<<10)}, nil
	case "slow":
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &marketplace.Preview{Manifest: app.Name + " " + d.Inputs["replicaCount"].(string), HourlyRate: app.HourlyRate}, nil
}

func (p previewer) PreviewUpgrade(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (*marketplace.Preview, error) {
	return p.Preview(ctx, d, app)
}

// store stands in for PostgreSQL: one application version, 1 of application 7, and no deployments.
type store struct{}

func (store) FindDeploymentByID(_ context.Context, id int64) (*marketplace.Deployment, error) {
	return nil, marketplace.Errorf(marketplace.ENOTFOUND, "deployment %d not found", id)
}

func (store) FindAppVersion(_ context.Context, appID int64, version int) (*marketplace.Application, error) {
	if appID != 7 || version != 1 {
		return nil, marketplace.Errorf(marketplace.ENOTFOUND, "application %d version %d not found", appID, version)
	}
	return &marketplace.Application{ID: 7, Version: 1, Name: "web"}, nil
}

// TestCalls runs calls through a real Redis: answers, domain errors with their code and message, other
// errors as text, a deadline the worker does not meet, and a call no worker takes.
func TestCalls(t *testing.T) {
	cfg := Config{RedisURL: tenv.RedisURL(t), Instance: "test", AcceptTimeout: 300 * time.Millisecond,
		Secret: []byte("a secret of the test's"), MaxReplyBytes: 1 << 10}
	client, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	remote := client.Inspector("k8s")
	app := &marketplace.Application{ID: 7, Version: 1, Name: "web", HourlyRate: marketplace.Money{}}
	preview := func(ctx context.Context, inputs map[string]any) (*marketplace.Preview, error) {
		return remote.Preview(ctx, &marketplace.Deployment{Inputs: inputs}, app)
	}

	// No worker yet: refused with EUNAVAILABLE, and the call is not left for a worker to take later.
	_, err = preview(context.Background(), map[string]any{"replicaCount": "3"})
	if marketplace.ErrorCode(err) != marketplace.EUNAVAILABLE || !strings.Contains(marketplace.ErrorMessage(err), "no worker took") {
		t.Fatalf("with no worker: %v, want unavailable", err)
	}
	if n, err := client.rdb.LLen(context.Background(), requestsKey("test")).Result(); err != nil || n != 0 {
		t.Fatalf("%d calls left queued (%v), want none", n, err)
	}

	server, err := NewServer(cfg, store{}, map[string]marketplace.Inspector{"k8s": previewer{}}, 2, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- server.Run(ctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	p, err := preview(context.Background(), map[string]any{"replicaCount": "3"})
	if err != nil || p.Manifest != "web 3" {
		t.Fatalf("preview %+v, %v; want the worker's answer", p, err)
	}
	_, err = preview(context.Background(), map[string]any{"answer": "invalid", "replicaCount": "50"})
	var domain *marketplace.Error
	if !errors.As(err, &domain) || domain.Code != marketplace.EINVALID || domain.Message != "replicaCount 50 is more than 20" {
		t.Errorf("a domain error came back as %#v", err)
	}
	_, err = preview(context.Background(), map[string]any{"answer": "broken"})
	if marketplace.ErrorCode(err) != marketplace.EINTERNAL || !strings.Contains(err.Error(), "the chart repository hung up") {
		t.Errorf("another error came back as %v", err)
	}
	deadline, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err = preview(deadline, map[string]any{"answer": "slow"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a call past its deadline: %v, want context.DeadlineExceeded", err)
	}
	// An answer over MaxReplyBytes is an error, not a reply that large.
	if _, err = preview(context.Background(), map[string]any{"answer": "big"}); err == nil || !strings.Contains(err.Error(), "over the cap") {
		t.Errorf("an answer over the cap: %v", err)
	}
	// A caller with another secret is not answered: no worker took its call, as far as it can tell.
	stranger := cfg
	stranger.Secret = []byte("another secret, not the worker's")
	other, err := NewClient(stranger)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = other.Inspector("k8s").Preview(context.Background(), &marketplace.Deployment{}, app)
	if marketplace.ErrorCode(err) != marketplace.EUNAVAILABLE {
		t.Errorf("a call signed with another secret: %v, want no worker taking it", err)
	}
	// A type the worker has no provider for is an error the API shows as internal (it never asks: its
	// providers mirror the worker's).
	if _, err = client.Inspector("vm").Health(context.Background(), &marketplace.Deployment{}); err == nil ||
		!strings.Contains(err.Error(), `no provider of type "vm"`) {
		t.Errorf("a call for a type the worker lacks: %v", err)
	}
}
