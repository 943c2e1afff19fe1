package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestWorkerCallsCarryIdsAndAreSigned plays someone who can read and write the marketplace's Redis
// against an `api` replica and a `worker`. What crosses Redis names the deployment and application by
// id (neither the chart's repository nor anything else of the application is on the wire), and every
// call is signed: a forged call (unsigned, signed with another secret, or a genuine one with its caller
// changed) gets no answer, even for the operator's rights, and a genuine one pushed again is not run
// again; a call signed with the database's secret is
// answered only with what its caller may read; an API replica with another secret finds no worker.
func TestWorkerCallsCarryIdsAndAreSigned(t *testing.T) {
	api := startMarketplace(t, "api", nil)
	startMarketplace(t, "worker", sameMarketplace(api))
	opt, err := redis.ParseURL(api.Environ["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	var instanceID, secret string
	query(t, api.DatabaseURL, `SELECT id::text, worker_call_secret FROM instance`, nil, &instanceID, &secret)
	callsKey := "marketplace:" + instanceID + ":worker-calls"

	// Everything the API pushes on the calls list, seen as Redis sees it.
	var (
		mu     sync.Mutex
		pushed []string
	)
	seen := make(chan string, 100)
	monitor := redis.NewClient(opt).Monitor(ctx, seen)
	monitor.Start()
	go func() {
		for line := range seen {
			if strings.Contains(strings.ToUpper(line), strings.ToUpper(`"LPUSH" "`+callsKey+`"`)) {
				mu.Lock()
				pushed = append(pushed, line)
				mu.Unlock()
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // MONITOR takes effect once Redis has answered it

	_, tok := api.user(t, "consumer")
	api.user(t, "other") // user 2, who owns nothing
	api.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}})
	api.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})
	install := map[string]any{"application_id": 1, "project_id": 1, "inputs": map[string]any{}}
	api.must(t, 200, "POST", "/api/deployments/install?dry_run=true", tok, install)
	api.must(t, 202, "POST", "/api/deployments/install", tok, install)
	api.waitForStatus(t, tok, 1, "installed", 2*time.Minute)
	if h, _ := api.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t)["health"].(map[string]any); h["status"] == "unknown" {
		t.Fatalf("health %v: the worker did not answer", h)
	}
	monitor.Stop()
	mu.Lock()
	calls := append([]string(nil), pushed...)
	mu.Unlock()
	if len(calls) < 2 {
		t.Fatalf("saw %d calls pushed to %s, want the dry run's, the install check's and health's", len(calls), callsKey)
	}
	for _, c := range calls {
		body := c[strings.Index(c, callsKey+`" "`)+len(callsKey+`" "`):]
		if sig, _, ok := strings.Cut(body, "."); !ok || len(sig) != 64 {
			t.Errorf("a call is not signed: %.200s", body)
		}
		for _, secretish := range []string{"hello-web", tenv.ChartRepo, "repoURL", "hourly_rate"} {
			if strings.Contains(body, secretish) {
				t.Errorf("a call carries %q of the application: %.300s", secretish, body)
			}
		}
	}

	// Calls forged by someone who can write to Redis.
	signWith := func(key string, body []byte) string {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(instanceID + "\n\n"))
		mac.Write(body)
		return hex.EncodeToString(mac.Sum(nil)) + "." + string(body)
	}
	call := func(id string, caller map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"id": id, "type": "k8s", "method": "health", "target": map[string]any{"deployment_id": 1},
			"caller": caller, "accept_by": time.Now().Add(10 * time.Second), "deadline": time.Now().Add(20 * time.Second)})
		return b
	}
	operator := map[string]any{"operator": true}
	genuine := signWith(secret, call("tampered", map[string]any{"user_id": 2}))
	forged := map[string]string{
		"unsigned":       string(call("unsigned", operator)),
		"another-secret": signWith(strings.Repeat("k", 32), call("another-secret", operator)),
		"tampered":       strings.Replace(genuine, `"caller":{"user_id":2}`, `"caller":{"operator":true}`, 1),
		"other-user":     signWith(secret, call("other-user", map[string]any{"user_id": 2})),
		"owner":          signWith(secret, call("owner", map[string]any{"user_id": 1})),
	}
	for _, msg := range forged {
		if err := rdb.LPush(ctx, callsKey, msg).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The owner's call pushed again, as someone who read it off Redis would: it is not run twice.
	if err := rdb.LPush(ctx, callsKey, forged["owner"]).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the calls taken", func() bool {
		n, err := rdb.LLen(ctx, callsKey).Result()
		return err == nil && n == 0
	})
	time.Sleep(2 * time.Second) // an answer takes a round trip to the cluster at most
	reply := func(id string) []string {
		var out []string
		list, err := rdb.LRange(ctx, "marketplace:"+instanceID+":worker-reply:"+id, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			_, body, _ := strings.Cut(r, ".")
			out = append(out, body)
		}
		return out
	}
	for _, id := range []string{"unsigned", "another-secret", "tampered"} {
		if got := reply(id); len(got) != 0 {
			t.Errorf("the worker answered the %s call: %v", id, got)
		}
	}
	if got := reply("other-user"); len(got) != 2 || !strings.Contains(got[1], `"code":"not_found"`) {
		t.Errorf("a signed call as another user for deployment 1: %v, want taken, then not found", got)
	}
	if got := reply("owner"); len(got) != 2 || !strings.Contains(got[1], `"status":"healthy"`) {
		t.Errorf("a signed call as the owner, pushed twice: %v, want deployment 1's health, once", got)
	}

	// An API replica whose secret is not the workers' finds no worker.
	stranger := sameMarketplace(api)
	stranger["MARKETPLACE_RPC_SECRET"] = strings.Repeat("s", 32)
	other := startMarketplace(t, "api", stranger)
	mustProblem(t, other.call(t, "POST", "/api/deployments/install?dry_run=true", tok, install), 503, "no worker")
}
