package webhook_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
	"github.com/marketplace/marketplace/internal/testenv"
	"github.com/marketplace/marketplace/internal/webhook"
)

var tenv *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &tenv, testenv.Options{})) }

// hookReceiver answers with the statuses of answers in turn (then 204), verifying every signature.
type hookReceiver struct {
	t       *testing.T
	srv     *httptest.Server
	key     []byte
	mu      sync.Mutex
	answers []int
	ids     []string
}

func newHookReceiver(t *testing.T, answers ...int) *hookReceiver {
	r := &hookReceiver{t: t, answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := webhook.Verify(r.key, id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body, time.Now()); err != nil {
			t.Errorf("delivery %s: %v", id, err)
		}
		r.ids = append(r.ids, id)
		status := http.StatusNoContent
		if len(r.answers) > 0 {
			status, r.answers = r.answers[0], r.answers[1:]
		}
		if status == http.StatusFound {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

// TestSenderRetriesAndRecords runs a sender against real PostgreSQL and receivers: one that fails
// twice before it answers 204, one that redirects, and one the fetch guard refuses to dial (its address
// is not allowed: what a webhook whose name came to resolve inside the network would meet).
func TestSenderRetriesAndRecords(t *testing.T) {
	ctx := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(ctx, tenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	u := &marketplace.User{Name: "u"}
	if err := db.CreateUser(ctx, u, []byte("hash")); err != nil {
		t.Fatal(err)
	}
	flaky, redirecting, refused := newHookReceiver(t, 503, 500), newHookReceiver(t, http.StatusFound, http.StatusFound, http.StatusFound), newHookReceiver(t)
	hooks := map[*hookReceiver]int64{}
	for _, r := range []*hookReceiver{flaky, redirecting, refused} {
		key, _ := webhook.NewSecret()
		r.key = key
		w := &marketplace.Webhook{UserID: u.ID, URL: r.srv.URL + "/hook", Events: []string{marketplace.EventDeploymentStatusChanged}}
		if err := db.CreateWebhook(ctx, w, key); err != nil {
			t.Fatal(err)
		}
		hooks[r] = w.ID
	}
	app := &marketplace.Application{Name: "a", PublisherID: u.ID, HourlyRate: marketplace.MustMoney("1"),
		Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}, Inputs: []marketplace.Input{}}
	if err := db.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	p := &marketplace.Project{Name: "p", UserID: u.ID}
	if err := db.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDeployment(ctx, &marketplace.Deployment{ApplicationID: app.ID, ProjectID: p.ID, ConsumerID: u.ID}); err != nil {
		t.Fatal(err)
	}

	host := func(r *hookReceiver) string { h, _ := url.Parse(r.srv.URL); return h.Host }
	guard, err := fetch.New(ctx, fetch.Config{Allow: host(flaky) + "," + host(redirecting)})
	if err != nil {
		t.Fatal(err)
	}
	sender := webhook.NewSender(db, guard.Transport(), webhook.Config{Timeout: 5 * time.Second, MaxAttempts: 3,
		RetryBackoff: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond, Concurrency: 4},
		slog.New(slog.DiscardHandler))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sender.Run(runCtx) }()
	delivery := func(r *hookReceiver) *marketplace.WebhookDelivery {
		ds, _, err := db.FindWebhookDeliveries(ctx, hooks[r], marketplace.Page{Number: 1, Limit: 10})
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries of webhook %d: %v %v", hooks[r], ds, err)
		}
		return ds[0]
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, r := range []*hookReceiver{flaky, redirecting, refused} {
		for delivery(r).Status == marketplace.DeliveryPending {
			if time.Now().After(deadline) {
				t.Fatalf("delivery to %s still pending: %+v", r.srv.URL, delivery(r))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	d := delivery(flaky)
	if ids := flaky.received(); d.Status != marketplace.DeliveryDelivered || d.Attempts != 3 || *d.LastStatusCode != 204 || d.LastError != "" ||
		len(ids) != 3 || ids[0] != d.MessageID || ids[1] != d.MessageID || ids[2] != d.MessageID {
		t.Errorf("flaky receiver: %+v, received %v; want delivered at attempt 3 with one webhook-id", d, ids)
	}
	d = delivery(redirecting)
	if d.Status != marketplace.DeliveryFailed || d.Attempts != 3 || *d.LastStatusCode != 302 || !strings.Contains(d.LastError, "redirects are not followed") {
		t.Errorf("redirecting receiver: %+v, want failed after 3 attempts, 302 not followed", d)
	}
	if n := len(redirecting.received()); n != 3 {
		t.Errorf("the redirecting receiver got %d requests, want 3 (the redirect never followed)", n)
	}
	d = delivery(refused)
	if d.Status != marketplace.DeliveryFailed || d.Attempts != 3 || d.LastStatusCode != nil || !strings.Contains(d.LastError, "does not fetch from") {
		t.Errorf("receiver the guard refuses: %+v, want failed after 3 attempts, refused at the dial", d)
	}
	if n := len(refused.received()); n != 0 {
		t.Errorf("the receiver the guard refuses got %d requests", n)
	}
}
