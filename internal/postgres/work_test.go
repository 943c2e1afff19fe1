package postgres_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
	"github.com/marketplace/marketplace/internal/testenv"
)

var tenv *testenv.Env

func TestMain(m *testing.M) {
	if os.Getenv(ledgerJobEnv) != "" {
		os.Exit(runLedgerJobProcess()) // this binary re-run as a second replica's billing job
	}
	os.Exit(testenv.Main(m, &tenv, testenv.Options{}))
}

// newDeployment opens a fresh database with one user, application, project and pending deployment.
func newDeployment(t *testing.T) (*postgres.DB, context.Context, int64) {
	t.Helper()
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
	app := &marketplace.Application{Name: "a", PublisherID: u.ID, HourlyRate: marketplace.MustMoney("1.5"),
		Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}, Inputs: []marketplace.Input{}}
	if err := db.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	p := &marketplace.Project{Name: "p", UserID: u.ID}
	if err := db.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	d := &marketplace.Deployment{ApplicationID: app.ID, ProjectID: p.ID, ConsumerID: u.ID}
	if err := db.CreateDeployment(ctx, d); err != nil {
		t.Fatal(err)
	}
	return db, ctx, d.ID
}

// TestGuardedTransitions replays the ways at-least-once delivery goes wrong and checks each is a no-op.
func TestGuardedTransitions(t *testing.T) {
	const lease = time.Minute
	t.Run("a duplicate install task finds nothing to claim", func(t *testing.T) {
		t.Parallel()
		db, ctx, id := newDeployment(t)
		first, err := db.ClaimInstall(ctx, id, lease, 5)
		if err != nil || first == nil || first.Attempts != 1 {
			t.Fatalf("first claim: %+v, %v", first, err)
		}
		if dup, err := db.ClaimInstall(ctx, id, lease, 5); dup != nil || err != nil {
			t.Fatalf("duplicate claim: %+v, %v; want nothing", dup, err)
		}
	})
	t.Run("completing twice opens one usage record", func(t *testing.T) {
		t.Parallel()
		db, ctx, id := newDeployment(t)
		c, _ := db.ClaimInstall(ctx, id, lease, 5)
		if err := db.CompleteInstall(ctx, id, c.Attempts, marketplace.Placement{Namespace: "ns"}); err != nil {
			t.Fatal(err)
		}
		if err := db.CompleteInstall(ctx, id, c.Attempts, marketplace.Placement{Namespace: "ns"}); !errors.Is(err, marketplace.ErrClaimLost) {
			t.Fatalf("second completion: %v, want ErrClaimLost", err)
		}
		recs, _, err := db.FindUsageRecords(ctx, marketplace.UsageFilter{UserID: 1, DeploymentID: id})
		if err != nil || len(recs) != 1 || !recs[0].HourlyRate.Equal(marketplace.MustMoney("1.5").Decimal) {
			t.Fatalf("usage records: %+v, %v; want one at rate 1.5", recs, err)
		}
	})
	t.Run("a crashed attempt is taken over after its lease, and the late one is refused", func(t *testing.T) {
		t.Parallel()
		db, ctx, id := newDeployment(t)
		dead, _ := db.ClaimInstall(ctx, id, 50*time.Millisecond, 5)
		time.Sleep(100 * time.Millisecond)
		owed, err := db.FindOwedWork(ctx, 10)
		if err != nil || len(owed) != 1 || owed[0].Op != marketplace.OpInstall || owed[0].Attempt != 1 {
			t.Fatalf("owed work after the lease expired: %+v, %v", owed, err)
		}
		next, err := db.ClaimInstall(ctx, id, lease, 5)
		if err != nil || next == nil || next.Attempts != 2 {
			t.Fatalf("takeover: %+v, %v", next, err)
		}
		if ok, _ := db.ExtendLease(ctx, id, marketplace.OpInstall, dead.Attempts, lease); ok {
			t.Fatal("the dead attempt extended a lease it lost")
		}
		if err := db.FailAttempt(ctx, id, marketplace.OpInstall, dead.Attempts, marketplace.AttemptFailure{Reason: "late", Final: true}); !errors.Is(err, marketplace.ErrClaimLost) {
			t.Fatalf("late failure of the dead attempt: %v, want ErrClaimLost", err)
		}
		if err := db.CompleteInstall(ctx, id, next.Attempts, marketplace.Placement{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a failed attempt is retried after its backoff, the last one fails for good", func(t *testing.T) {
		t.Parallel()
		db, ctx, id := newDeployment(t)
		c, _ := db.ClaimInstall(ctx, id, lease, 5)
		if err := db.FailAttempt(ctx, id, marketplace.OpInstall, c.Attempts, marketplace.AttemptFailure{Reason: "boom", RetryAfter: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if again, _ := db.ClaimInstall(ctx, id, lease, 5); again != nil {
			t.Fatal("claimed before the backoff elapsed")
		}
		if owed, _ := db.FindOwedWork(ctx, 10); len(owed) != 0 {
			t.Fatalf("owed before the backoff elapsed: %+v", owed)
		}
		d, _ := db.FindDeploymentByID(ctx, id)
		if d.Status != marketplace.StatusPending || d.FailureReason != "boom" {
			t.Fatalf("after a failed attempt: %s %q", d.Status, d.FailureReason)
		}
	})
	t.Run("uninstall closes billing once and completes once", func(t *testing.T) {
		t.Parallel()
		db, ctx, id := newDeployment(t)
		c, _ := db.ClaimInstall(ctx, id, lease, 5)
		db.CompleteInstall(ctx, id, c.Attempts, marketplace.Placement{})
		d, err := db.RequestUninstall(ctx, id)
		if err != nil || d.Status != marketplace.StatusUninstalling {
			t.Fatalf("request uninstall: %+v, %v", d, err)
		}
		recs, _, _ := db.FindUsageRecords(ctx, marketplace.UsageFilter{UserID: 1, DeploymentID: id})
		ended := *recs[0].EndedAt
		if again, err := db.RequestUninstall(ctx, id); err != nil || again.Status != marketplace.StatusUninstalling {
			t.Fatalf("second request: %+v, %v", again, err)
		}
		recs, _, _ = db.FindUsageRecords(ctx, marketplace.UsageFilter{UserID: 1, DeploymentID: id})
		if !recs[0].EndedAt.Equal(ended) {
			t.Fatalf("a second DELETE moved the end of billing from %v to %v", ended, recs[0].EndedAt)
		}
		u, _ := db.ClaimUninstall(ctx, id, lease, 5)
		if dup, _ := db.ClaimUninstall(ctx, id, lease, 5); dup != nil {
			t.Fatal("duplicate uninstall claim")
		}
		if err := db.CompleteUninstall(ctx, id, u.Attempts); err != nil {
			t.Fatal(err)
		}
		if err := db.CompleteUninstall(ctx, id, u.Attempts); !errors.Is(err, marketplace.ErrClaimLost) {
			t.Fatalf("second completion: %v", err)
		}
	})
	t.Run("the last attempt that never reports back ends failed, and is not claimed again", func(t *testing.T) {
		t.Parallel()
		db, ctx, id := newDeployment(t)
		c, _ := db.ClaimInstall(ctx, id, 50*time.Millisecond, 1)
		time.Sleep(100 * time.Millisecond)
		if again, _ := db.ClaimInstall(ctx, id, lease, 1); again != nil {
			t.Fatalf("claimed attempt %d beyond the maximum of 1", again.Attempts)
		}
		if owed, _ := db.FindOwedWork(ctx, 10); len(owed) != 1 {
			t.Fatalf("owed before failing the abandoned one: %+v", owed)
		}
		if n, err := db.FailAbandoned(ctx, 1); err != nil || n != 1 {
			t.Fatalf("FailAbandoned: %d, %v", n, err)
		}
		d, _ := db.FindDeploymentByID(ctx, id)
		if d.Status != marketplace.StatusFailed || !strings.Contains(d.FailureReason, "install attempt 1 of 1: the worker stopped reporting") {
			t.Fatalf("abandoned deployment: %s %q", d.Status, d.FailureReason)
		}
		if err := db.CompleteInstall(ctx, id, c.Attempts, marketplace.Placement{}); !errors.Is(err, marketplace.ErrClaimLost) {
			t.Fatalf("the abandoned attempt completed late: %v", err)
		}
	})
	t.Run("a stale install attempt cannot touch the uninstall's claim", func(t *testing.T) {
		t.Parallel()
		db, ctx, id := newDeployment(t)
		c, _ := db.ClaimInstall(ctx, id, lease, 5)
		db.CompleteInstall(ctx, id, c.Attempts, marketplace.Placement{})
		db.RequestUninstall(ctx, id)
		u, _ := db.ClaimUninstall(ctx, id, lease, 5)
		if u.Attempts != c.Attempts {
			t.Fatalf("test assumes equal attempt numbers, got %d and %d", u.Attempts, c.Attempts)
		}
		if ok, _ := db.ExtendLease(ctx, id, marketplace.OpInstall, c.Attempts, 0); ok {
			t.Fatal("an install attempt released the uninstall's lease")
		}
		if err := db.HandBack(ctx, id, marketplace.OpInstall, c.Attempts); !errors.Is(err, marketplace.ErrClaimLost) {
			t.Fatalf("an install attempt handed back the uninstall: %v", err)
		}
		if err := db.FailAttempt(ctx, id, marketplace.OpInstall, c.Attempts, marketplace.AttemptFailure{Reason: "late", Final: true}); !errors.Is(err, marketplace.ErrClaimLost) {
			t.Fatalf("an install attempt failed the uninstall: %v", err)
		}
	})
	t.Run("a handed-back attempt is not counted and is due again at once", func(t *testing.T) {
		t.Parallel()
		db, ctx, id := newDeployment(t)
		c, _ := db.ClaimInstall(ctx, id, lease, 1)
		if err := db.HandBack(ctx, id, marketplace.OpInstall, c.Attempts); err != nil {
			t.Fatal(err)
		}
		if err := db.HandBack(ctx, id, marketplace.OpInstall, c.Attempts); !errors.Is(err, marketplace.ErrClaimLost) {
			t.Fatalf("a second hand-back of the same attempt: %v, want claim lost", err)
		}
		again, err := db.ClaimInstall(ctx, id, lease, 1)
		if err != nil || again == nil || again.Attempts != 1 {
			t.Fatalf("claim after hand-back with 1 attempt allowed: %+v, %v; want attempt 1", again, err)
		}
	})
	t.Run("one removal of a failed deployment at a time, an uninstall waits for it", func(t *testing.T) {
		t.Parallel()
		db, ctx, id := newDeployment(t)
		c, _ := db.ClaimInstall(ctx, id, lease, 1)
		if err := db.FailAttempt(ctx, id, marketplace.OpInstall, c.Attempts, marketplace.AttemptFailure{Reason: "boom", Final: true}); err != nil {
			t.Fatal(err)
		}
		if owed, _ := db.FindUncleanedFailures(ctx, 10); len(owed) != 1 {
			t.Fatalf("%d failures owed a clean-up, want 1", len(owed))
		}
		if held, err := db.ClaimCleanup(ctx, id, lease); err != nil || !held {
			t.Fatalf("first clean-up claim: %v, %v", held, err)
		}
		if held, _ := db.ClaimCleanup(ctx, id, lease); held {
			t.Fatal("a second removal claimed the deployment while the first holds it")
		}
		if owed, _ := db.FindUncleanedFailures(ctx, 10); len(owed) != 0 {
			t.Fatalf("a held clean-up is listed as owed: %d", len(owed))
		}
		if _, err := db.RequestUninstall(ctx, id); err != nil {
			t.Fatal(err)
		}
		if u, _ := db.ClaimUninstall(ctx, id, lease, 5); u != nil {
			t.Fatal("the uninstall started while the clean-up holds the deployment")
		}
	})
	t.Run("a clean failure is marked and not listed again", func(t *testing.T) {
		t.Parallel()
		db, ctx, id := newDeployment(t)
		c, _ := db.ClaimInstall(ctx, id, lease, 1)
		db.FailAttempt(ctx, id, marketplace.OpInstall, c.Attempts, marketplace.AttemptFailure{Reason: "boom", Final: true, CleanedUp: true})
		if owed, _ := db.FindUncleanedFailures(ctx, 10); len(owed) != 0 {
			t.Fatalf("a failure cleaned up by its attempt is owed a clean-up: %d", len(owed))
		}
		d, _ := db.FindDeploymentByID(ctx, id)
		if d.CleanedUpAt == nil {
			t.Fatal("the deployment does not say it was cleaned up")
		}
	})
	t.Run("the bill keeps the rate the install was accepted at", func(t *testing.T) {
		t.Parallel()
		db, ctx, id := newDeployment(t)
		app, _ := db.FindAppByID(ctx, 1)
		app.HourlyRate = marketplace.MustMoney("9")
		if err := db.UpdateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
		c, _ := db.ClaimInstall(ctx, id, lease, 5)
		db.CompleteInstall(ctx, id, c.Attempts, marketplace.Placement{})
		recs, _, _ := db.FindUsageRecords(ctx, marketplace.UsageFilter{UserID: 1, DeploymentID: id})
		if len(recs) != 1 || !recs[0].HourlyRate.Equal(marketplace.MustMoney("1.5").Decimal) {
			t.Fatalf("usage records %+v, want one at the accepted rate 1.5", recs)
		}
	})
	t.Run("an install in flight cannot be deleted", func(t *testing.T) {
		t.Parallel()
		db, ctx, id := newDeployment(t)
		db.ClaimInstall(ctx, id, lease, 5)
		if _, err := db.RequestUninstall(ctx, id); marketplace.ErrorCode(err) != marketplace.ECONFLICT {
			t.Fatalf("delete while installing: %v, want ECONFLICT", err)
		}
	})
}

// TestMeterOpenUsage checks the metering pass stores the formula's amount for open records only.
func TestMeterOpenUsage(t *testing.T) {
	db, ctx, id := newDeployment(t)
	c, _ := db.ClaimInstall(ctx, id, time.Minute, 5)
	db.CompleteInstall(ctx, id, c.Attempts, marketplace.Placement{})
	n, err := db.MeterOpenUsage(ctx, time.Now().Add(time.Second))
	if err != nil || n != 1 {
		t.Fatalf("metered %d, %v; want 1", n, err)
	}
	db.RequestUninstall(ctx, id)
	if n, _ := db.MeterOpenUsage(ctx, time.Now().Add(time.Minute)); n != 0 {
		t.Fatalf("metered %d closed records, want 0", n)
	}
}

// TestDeletedProjectsAreOwedARemoval checks a deleted project is listed until its resources are marked
// removed, and a live one never is.
func TestDeletedProjectsAreOwedARemoval(t *testing.T) {
	db, ctx, id := newDeployment(t)
	if err := db.DeleteProject(ctx, 1); marketplace.ErrorCode(err) != marketplace.ECONFLICT {
		t.Fatalf("delete a project with a pending deployment: %v, want ECONFLICT", err)
	}
	if ids, _ := db.FindDeletedProjects(ctx, 10); len(ids) != 0 {
		t.Fatalf("owed removals of a live project: %v", ids)
	}
	db.RequestUninstall(ctx, id)
	u, _ := db.ClaimUninstall(ctx, id, time.Minute, 5)
	db.CompleteUninstall(ctx, id, u.Attempts)
	if err := db.DeleteProject(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if ids, err := db.FindDeletedProjects(ctx, 10); err != nil || len(ids) != 1 || ids[0] != 1 {
		t.Fatalf("owed removals: %v, %v; want [1]", ids, err)
	}
	if err := db.MarkProjectRemoved(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if ids, _ := db.FindDeletedProjects(ctx, 10); len(ids) != 0 {
		t.Fatalf("owed removals after marking: %v", ids)
	}
}
