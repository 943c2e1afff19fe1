package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// outboxFixture is a fresh database with a consumer who registered a webhook for every event, and
// another user with a webhook of its own.
type outboxFixture struct {
	db                  *postgres.DB
	url                 string
	ctx                 context.Context // the operator's
	consumer, other     int64
	hook, otherHook     int64
	app, project        int64
	asConsumer, asOther context.Context
}

func newOutbox(t *testing.T) *outboxFixture {
	t.Helper()
	f := &outboxFixture{ctx: marketplace.OperatorContext(context.Background()), url: tenv.Database(t)}
	var err error
	if f.db, err = postgres.Open(f.ctx, f.url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.db.Close)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	u, o := &marketplace.User{Name: "consumer"}, &marketplace.User{Name: "other"}
	must(f.db.CreateUser(f.ctx, u, []byte("hash-u")))
	must(f.db.CreateUser(f.ctx, o, []byte("hash-o")))
	f.consumer, f.other = u.ID, o.ID
	f.asConsumer = marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: u.ID})
	f.asOther = marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: o.ID})
	w := &marketplace.Webhook{UserID: u.ID, URL: "https://hooks.example.com/a", Events: marketplace.WebhookEvents()}
	must(f.db.CreateWebhook(f.asConsumer, w, []byte("key-u")))
	f.hook = w.ID
	ow := &marketplace.Webhook{UserID: o.ID, URL: "https://hooks.example.com/b", Events: marketplace.WebhookEvents()}
	must(f.db.CreateWebhook(f.asOther, ow, []byte("key-o")))
	f.otherHook = ow.ID
	app := &marketplace.Application{Name: "a", PublisherID: o.ID, HourlyRate: marketplace.MustMoney("1.5"),
		Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}, Inputs: []marketplace.Input{}}
	must(f.db.CreateApp(f.ctx, app))
	p := &marketplace.Project{Name: "p", UserID: u.ID}
	must(f.db.CreateProject(f.ctx, p))
	f.app, f.project = app.ID, p.ID
	return f
}

// events lists the payloads of a webhook's deliveries, oldest first.
func (f *outboxFixture) events(t *testing.T, ctx context.Context, hook int64) []map[string]any {
	t.Helper()
	ds, _, err := f.db.FindWebhookDeliveries(ctx, hook, marketplace.Page{Number: 1, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, d := range slices.Backward(ds) {
		var m map[string]any
		if err := json.Unmarshal(d.Payload, &m); err != nil {
			t.Fatalf("payload %s: %v", d.Payload, err)
		}
		if m["type"] != d.EventType {
			t.Errorf("payload type %v of a %s delivery", m["type"], d.EventType)
		}
		out = append(out, m)
	}
	return out
}

// TestOutboxWrittenWithTheChange checks that every deployment status, a failed upgrade and an issued
// invoice write a delivery to their owner's webhook (and nobody else's) in the change's own
// transaction: a change rolled back leaves none.
func TestOutboxWrittenWithTheChange(t *testing.T) {
	t.Parallel()
	f := newOutbox(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	d := &marketplace.Deployment{ApplicationID: f.app, ProjectID: f.project, ConsumerID: f.consumer}
	must(f.db.CreateDeployment(f.ctx, d))
	c, err := f.db.ClaimInstall(f.ctx, d.ID, time.Minute, 5)
	if err != nil || c == nil {
		t.Fatalf("claim: %v %v", c, err)
	}
	must(f.db.CompleteInstall(f.ctx, d.ID, c.Attempts, marketplace.Placement{Namespace: "ns"}))
	// An upgrade to version 2 that fails for good: the deployment stays installed at version 1.
	must(f.db.CreateVersion(f.ctx, &marketplace.AppVersion{ApplicationID: f.app, HourlyRate: marketplace.MustMoney("2"),
		Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}, Inputs: []marketplace.Input{}}))
	if _, err := f.db.RequestUpgrade(f.ctx, d.ID, 2, nil); err != nil {
		t.Fatal(err)
	}
	c, err = f.db.ClaimUpgrade(f.ctx, d.ID, time.Minute, 5)
	if err != nil || c == nil {
		t.Fatalf("claim upgrade: %v %v", c, err)
	}
	must(f.db.FailAttempt(f.ctx, d.ID, marketplace.OpUpgrade, c.Attempts, marketplace.AttemptFailure{Reason: "chart c 2 not found", Final: true}))

	// A status change that is rolled back writes nothing.
	conn, err := pgx.Connect(context.Background(), f.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(context.Background())
	must(err)
	_, err = tx.Exec(context.Background(), `UPDATE deployments SET status = 'failed' WHERE id = $1`, d.ID)
	must(err)
	must(tx.Rollback(context.Background()))

	// March 2025's usage, closed into an invoice.
	_, err = conn.Exec(context.Background(), `UPDATE usage_records SET started_at = '2025-03-01 10:00Z', ended_at = '2025-03-01 12:00Z',
  amount = usage_amount(hourly_rate, '2025-03-01 10:00Z', '2025-03-01 12:00Z') WHERE deployment_id = $1`, d.ID)
	must(err)
	march, _ := marketplace.ParsePeriod("2025-03")
	if _, err := f.db.ClosePeriod(f.ctx, march, "test"); err != nil {
		t.Fatal(err)
	}

	got := f.events(t, f.asConsumer, f.hook)
	type seen struct{ typ, detail string }
	var kinds []seen
	for _, e := range got {
		data := e["data"].(map[string]any)
		switch e["type"] {
		case marketplace.EventDeploymentStatusChanged:
			kinds = append(kinds, seen{"status", data["to"].(string)})
		case marketplace.EventUpgradeFailed:
			if data["version"] != 1.0 || data["target_version"] != 2.0 || data["failure_reason"] != "chart c 2 not found" {
				t.Errorf("upgrade.failed data %v, want version 1, target_version 2 and the reason", data)
			}
			kinds = append(kinds, seen{"upgrade.failed", ""})
		case marketplace.EventInvoiceClosed:
			if data["period"] != "2025-03" || data["total"] != 3.0 || data["currency"] != "USD" || data["user_id"] != float64(f.consumer) {
				t.Errorf("invoice.closed data %v, want March 2025's total of 3 USD for user %d", data, f.consumer)
			}
			kinds = append(kinds, seen{"invoice.closed", ""})
		}
		if _, err := time.Parse(time.RFC3339Nano, e["timestamp"].(string)); err != nil {
			t.Errorf("timestamp %v: %v", e["timestamp"], err)
		}
	}
	want := []seen{{"status", "pending"}, {"status", "installing"}, {"status", "installed"}, {"status", "upgrading"},
		{"status", "installed"}, {"upgrade.failed", ""}, {"invoice.closed", ""}}
	if !slices.Equal(kinds, want) {
		t.Fatalf("deliveries %v, want %v", kinds, want)
	}
	if others := f.events(t, f.asOther, f.otherHook); len(others) != 0 {
		t.Fatalf("the other user's webhook got %d deliveries of someone else's events: %v", len(others), others)
	}
}

// TestOutboxClaims checks that senders claiming at once never take one delivery twice, that an attempt
// whose lease lapsed cannot record its outcome over the next one's, and that outcomes are recorded.
func TestOutboxClaims(t *testing.T) {
	t.Parallel()
	f := newOutbox(t)
	const n = 60
	for range n {
		if err := f.db.CreateDeployment(f.ctx, &marketplace.Deployment{ApplicationID: f.app, ProjectID: f.project, ConsumerID: f.consumer}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimedBy := map[int64]int{}
	var wg sync.WaitGroup
	for s := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				due, err := f.db.ClaimDeliveries(f.ctx, 7, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(due) == 0 {
					return
				}
				mu.Lock()
				for _, d := range due {
					if prev, ok := claimedBy[d.ID]; ok {
						t.Errorf("delivery %d claimed by sender %d and sender %d", d.ID, prev, s)
					}
					claimedBy[d.ID] = s
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimedBy) != n {
		t.Fatalf("%d deliveries claimed, want %d", len(claimedBy), n)
	}

	// A delivery whose lease lapsed is claimed again, as attempt 2, with the same message id; attempt 1
	// then records nothing.
	d := &marketplace.Deployment{ApplicationID: f.app, ProjectID: f.project, ConsumerID: f.consumer}
	if err := f.db.CreateDeployment(f.ctx, d); err != nil {
		t.Fatal(err)
	}
	first, err := f.db.ClaimDeliveries(f.ctx, 10, 0)
	if err != nil || len(first) != 1 || first[0].Attempt != 1 || string(first[0].Secret) != "key-u" || first[0].URL != "https://hooks.example.com/a" {
		t.Fatalf("claim: %v %v, want the new deployment's delivery, attempt 1, with its webhook's URL and key", first, err)
	}
	again, err := f.db.ClaimDeliveries(f.ctx, 10, time.Minute)
	if err != nil || len(again) != 1 || again[0].ID != first[0].ID || again[0].Attempt != 2 || again[0].MessageID != first[0].MessageID {
		t.Fatalf("claim after the lease lapsed: %v %v, want delivery %d again, attempt 2, message %s", again, err, first[0].ID, first[0].MessageID)
	}
	late := marketplace.DeliveryAttempt{DeliveryID: first[0].ID, Attempt: 1, StatusCode: 200, Delivered: true}
	if err := f.db.RecordDeliveryAttempt(f.ctx, late); !errors.Is(err, marketplace.ErrClaimLost) {
		t.Fatalf("record of the lapsed attempt: %v, want ErrClaimLost", err)
	}
	if err := f.db.RecordDeliveryAttempt(f.ctx, marketplace.DeliveryAttempt{DeliveryID: first[0].ID, Attempt: 2, StatusCode: 503,
		Error: "the receiver answered 503 Service Unavailable", RetryAfter: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if due, _ := f.db.ClaimDeliveries(f.ctx, 10, time.Minute); len(due) != 0 {
		t.Fatalf("claimed %d deliveries while the only unclaimed one waits an hour", len(due))
	}
	ds, _, err := f.db.FindWebhookDeliveries(f.asConsumer, f.hook, marketplace.Page{Number: 1, Limit: 1})
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries: %v %v", ds, err)
	}
	got := ds[0]
	if got.Status != "pending" || got.Attempts != 2 || got.LastStatusCode == nil || *got.LastStatusCode != 503 ||
		got.LastError == "" || got.NextAttemptAt == nil || time.Until(*got.NextAttemptAt) < 50*time.Minute {
		t.Fatalf("delivery after a 503: %+v, want pending, 2 attempts, 503, due in an hour", got)
	}
}

// TestWebhooksAreTheOwners checks that another user neither sees, nor deletes, nor reads the deliveries
// of a user's webhook, and that an owner's webhooks are bounded.
func TestWebhooksAreTheOwners(t *testing.T) {
	t.Parallel()
	f := newOutbox(t)
	if ws, total, err := f.db.FindWebhooks(f.asOther, marketplace.Page{Number: 1, Limit: 100}); err != nil || total != 1 || ws[0].ID != f.otherHook {
		t.Fatalf("the other user's webhooks: %v, %d, %v; want only its own", ws, total, err)
	}
	if _, total, _ := f.db.FindWebhooks(f.ctx, marketplace.Page{Number: 1, Limit: 100}); total != 2 {
		t.Fatalf("the operator sees %d webhooks, want 2", total)
	}
	if err := f.db.DeleteWebhook(f.asOther, f.hook); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Fatalf("another user's delete: %v, want not found", err)
	}
	if _, _, err := f.db.FindWebhookDeliveries(f.asOther, f.hook, marketplace.Page{Number: 1, Limit: 10}); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Fatalf("another user's deliveries read: %v, want not found", err)
	}
	for i := 1; i < marketplace.MaxWebhooksPerOwner; i++ {
		if err := f.db.CreateWebhook(f.asConsumer, &marketplace.Webhook{UserID: f.consumer, URL: "https://h.example.com", Events: []string{"invoice.closed"}}, []byte("k")); err != nil {
			t.Fatal(err)
		}
	}
	err := f.db.CreateWebhook(f.asConsumer, &marketplace.Webhook{UserID: f.consumer, URL: "https://h.example.com", Events: []string{"invoice.closed"}}, []byte("k"))
	if marketplace.ErrorCode(err) != marketplace.ECONFLICT {
		t.Fatalf("webhook %d: %v, want a conflict", marketplace.MaxWebhooksPerOwner+1, err)
	}
	if err := f.db.DeleteWebhook(f.asConsumer, f.hook); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.db.FindWebhookDeliveries(f.asConsumer, f.hook, marketplace.Page{Number: 1, Limit: 10}); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Fatalf("deliveries of a deleted webhook: %v, want not found", err)
	}
}
