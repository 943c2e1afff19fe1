package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/deploy"
	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
	"github.com/marketplace/marketplace/internal/queue"
	"github.com/marketplace/marketplace/internal/testenv"
)

var tenv *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &tenv, testenv.Options{})) }

// installer is the Installer of a test: its installs do what install says (succeed, fail, panic, block
// until told), and it counts the calls that reach it. (The real providers are exercised end to end in
// cmd/marketplace; this is the runner around them.)
type installer struct {
	install func(ctx context.Context, d *marketplace.Deployment) (marketplace.Placement, error)

	mu         sync.Mutex
	installs   int
	uninstalls int
}

func (i *installer) Install(ctx context.Context, d *marketplace.Deployment, _ *marketplace.Application) (marketplace.Placement, error) {
	i.mu.Lock()
	i.installs++
	i.mu.Unlock()
	return i.install(ctx, d)
}

func (i *installer) Upgrade(context.Context, *marketplace.Deployment, *marketplace.Application) (marketplace.Placement, int, error) {
	return marketplace.Placement{}, 0, errors.New("no upgrade in these tests")
}

func (i *installer) Uninstall(context.Context, *marketplace.Deployment) error {
	i.mu.Lock()
	i.uninstalls++
	i.mu.Unlock()
	return nil
}

func (i *installer) RemoveProject(context.Context, int64) error { return nil }

func (i *installer) calls() (installs, uninstalls int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.installs, i.uninstalls
}

// installed succeeds at once.
func installed(_ context.Context, d *marketplace.Deployment) (marketplace.Placement, error) {
	return marketplace.Placement{Namespace: fmt.Sprintf("ns-%d", d.ID), ReleaseName: "r"}, nil
}

// fixture is a database of the test's own with one pending k8s deployment, and the queue of a Redis key
// space of its own.
type fixture struct {
	db    *postgres.DB
	queue *queue.Client
	ctx   context.Context // the operator's
	id    int64           // the pending deployment
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(ctx, tenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	q, err := queue.NewClient(tenv.RedisURL(t), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	u := &marketplace.User{Name: "consumer"}
	if err := db.CreateUser(ctx, u, []byte("hash")); err != nil {
		t.Fatal(err)
	}
	app := &marketplace.Application{Name: "web", PublisherID: u.ID, HourlyRate: marketplace.MustMoney("1.5"),
		Deployment: marketplace.DeploymentSpec{Type: marketplace.TypeK8s, RepoURL: "http://charts.example", ChartName: "web"},
		Inputs:     []marketplace.Input{}}
	if err := db.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	p := &marketplace.Project{Name: "p", UserID: u.ID}
	if err := db.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	d := &marketplace.Deployment{ApplicationID: app.ID, ProjectID: p.ID, ConsumerID: u.ID, Inputs: map[string]any{}}
	if err := db.CreateDeployment(ctx, d); err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, queue: q, ctx: ctx, id: d.ID}
}

// runner returns a runner of f's database with inst as the k8s Installer.
func (f *fixture) runner(inst *installer, cfg deploy.Config) *deploy.Runner {
	if cfg.Lease == 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 3
	}
	cfg.OperationTimeout, cfg.RetryBackoff, cfg.ReconcileInterval = time.Minute, time.Second, time.Second
	return deploy.NewRunner(f.db, f.queue, map[string]marketplace.Installer{marketplace.TypeK8s: inst}, cfg, slog.New(slog.DiscardHandler))
}

func (f *fixture) deployment(t *testing.T) *marketplace.Deployment {
	t.Helper()
	d, err := f.db.FindDeploymentByID(f.ctx, f.id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRunnerRecordsEveryOutcome runs attempts through a real PostgreSQL: what the installer does, the
// deployment's record says, and a delivery the database has nothing owed for changes nothing.
func TestRunnerRecordsEveryOutcome(t *testing.T) {
	t.Run("an install that fails for good ends failed, with its reason, and what it created removed", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		inst := &installer{install: func(context.Context, *marketplace.Deployment) (marketplace.Placement, error) {
			return marketplace.Placement{}, errors.New("the chart repository said 404 for web-1.0.0.tgz")
		}}
		if err := f.runner(inst, deploy.Config{MaxAttempts: 1}).Install(f.ctx, f.id); err != nil {
			t.Fatal(err)
		}
		d := f.deployment(t)
		if d.Status != marketplace.StatusFailed || !strings.Contains(d.FailureReason, "install attempt 1 of 1: the chart repository said 404 for web-1.0.0.tgz") ||
			!strings.Contains(d.FailureReason, "everything the install created was removed") {
			t.Errorf("after a failed last attempt: %s, %q; want failed with the installer's reason", d.Status, d.FailureReason)
		}
		if installs, uninstalls := inst.calls(); installs != 1 || uninstalls != 1 {
			t.Errorf("%d installs and %d uninstalls; want the one install and the removal of what it created", installs, uninstalls)
		}
	})

	t.Run("an install that fails with attempts left is retried, with its reason shown meanwhile", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		inst := &installer{install: func(context.Context, *marketplace.Deployment) (marketplace.Placement, error) {
			return marketplace.Placement{}, errors.New("the cluster is unreachable")
		}}
		if err := f.runner(inst, deploy.Config{MaxAttempts: 3}).Install(f.ctx, f.id); err != nil {
			t.Fatal(err)
		}
		d := f.deployment(t)
		if d.Status != marketplace.StatusPending || d.Attempts != 1 || !strings.Contains(d.FailureReason, "install attempt 1 of 3: the cluster is unreachable") {
			t.Errorf("after a failed first attempt: %s, attempt %d, %q; want pending again with the reason", d.Status, d.Attempts, d.FailureReason)
		}
		if _, uninstalls := inst.calls(); uninstalls != 0 {
			t.Errorf("%d uninstalls after an attempt that will be retried; want none", uninstalls)
		}
	})

	t.Run("a panicking installer fails its attempt, and the runner goes on", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		panics := true
		inst := &installer{install: func(ctx context.Context, d *marketplace.Deployment) (marketplace.Placement, error) {
			if panics {
				panic("index out of range [3] with length 3")
			}
			return installed(ctx, d)
		}}
		runner := f.runner(inst, deploy.Config{MaxAttempts: 3})
		if err := runner.Install(f.ctx, f.id); err != nil {
			t.Fatal(err)
		}
		d := f.deployment(t)
		if d.Status != marketplace.StatusPending || d.Attempts != 1 ||
			!strings.Contains(d.FailureReason, "the k8s provider panicked: index out of range [3] with length 3") {
			t.Errorf("after a panic: %s, attempt %d, %q; want the attempt recorded as failed with the panic", d.Status, d.Attempts, d.FailureReason)
		}
		// The retry is due after the backoff; the same runner runs it.
		panics = false
		deadline := time.Now().Add(30 * time.Second)
		for f.deployment(t).Status != marketplace.StatusInstalled && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			if err := runner.Install(f.ctx, f.id); err != nil {
				t.Fatal(err)
			}
		}
		if d := f.deployment(t); d.Status != marketplace.StatusInstalled || d.Attempts != 2 || d.Placement.Namespace != fmt.Sprintf("ns-%d", f.id) {
			t.Errorf("the retry after a panic: %s, attempt %d, %+v; want installed by attempt 2", d.Status, d.Attempts, d.Placement)
		}
	})

	t.Run("a duplicate delivery of a done install is a no-op", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		inst := &installer{install: installed}
		runner := f.runner(inst, deploy.Config{})
		for range 3 {
			if err := runner.Install(f.ctx, f.id); err != nil {
				t.Fatal(err)
			}
		}
		d := f.deployment(t)
		if installs, _ := inst.calls(); installs != 1 || d.Status != marketplace.StatusInstalled || d.Attempts != 1 {
			t.Errorf("three deliveries: %d installs, %s after %d attempts; want one install", installs, d.Status, d.Attempts)
		}
		usage, _, err := f.db.FindUsageRecords(f.ctx, marketplace.UsageFilter{UserID: d.ConsumerID, DeploymentID: f.id})
		if err != nil || len(usage) != 1 {
			t.Errorf("usage records: %d (%v); want the one the install opened", len(usage), err)
		}
	})
}

// TestBlockedAttemptHoldsItsLease blocks an install well past its lease: the runner's heartbeat keeps
// the deployment claimed, so a second runner (another worker) given the same task runs nothing, and the
// blocked attempt's result is the one recorded once it returns.
func TestBlockedAttemptHoldsItsLease(t *testing.T) {
	f := newFixture(t)
	const lease = 6 * time.Second // renewed every 2s: room for a loaded machine's slow statements
	entered, release := make(chan struct{}), make(chan struct{})
	blocked := &installer{install: func(ctx context.Context, d *marketplace.Deployment) (marketplace.Placement, error) {
		close(entered)
		select {
		case <-release:
			return marketplace.Placement{Namespace: "first"}, nil
		case <-ctx.Done():
			return marketplace.Placement{}, ctx.Err()
		}
	}}
	first := f.runner(blocked, deploy.Config{Lease: lease})
	done := make(chan error, 1)
	go func() { done <- first.Install(f.ctx, f.id) }()
	select {
	case <-entered:
	case err := <-done:
		t.Fatalf("the first attempt returned before its installer ran: %v", err)
	}
	time.Sleep(lease + time.Second) // without heartbeats the lease would have lapsed

	other := &installer{install: func(context.Context, *marketplace.Deployment) (marketplace.Placement, error) {
		return marketplace.Placement{Namespace: "second"}, nil
	}}
	second := f.runner(other, deploy.Config{Lease: lease})
	if err := second.Install(f.ctx, f.id); err != nil {
		t.Fatal(err)
	}
	if installs, _ := other.calls(); installs != 0 {
		t.Errorf("the second runner ran %d installs while the first held the lease; want none", installs)
	}
	if d := f.deployment(t); d.Status != marketplace.StatusInstalling || d.Attempts != 1 {
		t.Errorf("while blocked: %s, attempt %d; want installing, attempt 1", d.Status, d.Attempts)
	}
	owed, err := f.db.FindOwedWork(f.ctx, 10)
	if err != nil || len(owed) != 0 {
		t.Errorf("owed work while the lease is held: %+v (%v); want none", owed, err)
	}

	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := f.deployment(t); d.Status != marketplace.StatusInstalled || d.Placement.Namespace != "first" || d.Attempts != 1 {
		t.Errorf("after the blocked attempt returned: %s, %+v, attempt %d; want installed by the first runner", d.Status, d.Placement, d.Attempts)
	}
}
