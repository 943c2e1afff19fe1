package marketplace

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Status is where a deployment is in its life.
type Status string

// Deployment statuses. pending -> installing -> installed -> uninstalling -> uninstalled; an install or
// uninstall that exhausts its attempts ends failed, and a failed deployment may be deleted.
const (
	StatusPending      Status = "pending"
	StatusInstalling   Status = "installing"
	StatusInstalled    Status = "installed"
	StatusFailed       Status = "failed"
	StatusUninstalling Status = "uninstalling"
	StatusUninstalled  Status = "uninstalled"
	// StatusUpgrading: an upgrade (or rollback) to TargetVersion is owed or running; the previous
	// revision keeps running and billing meanwhile, and stays if the upgrade fails.
	StatusUpgrading Status = "upgrading"
)

// Deployment is one application deployed into one project.
type Deployment struct {
	ID            int64          `json:"id"`
	ApplicationID int64          `json:"application_id"`
	ProjectID     int64          `json:"project_id"`
	ConsumerID    int64          `json:"consumer_id"`
	Type          string         `json:"type"`
	Status        Status         `json:"status"`
	Inputs        map[string]any `json:"inputs"`
	// Version is the application version the deployment runs: the one it was accepted with, or the one
	// its last completed upgrade or rollback installed.
	Version int `json:"version"`
	// UpgradePolicy is manual (upgrades when its consumer asks) or auto (to every new version not
	// deprecated, by the reconciler, until an automatic upgrade fails).
	UpgradePolicy string `json:"upgrade_policy" enum:"manual,auto"`
	// MaxHourlyRate is the highest rate an automatic upgrade may move the deployment to: a newer version
	// above it waits for its consumer. Absent: the deployment's current rate.
	MaxHourlyRate *Money `json:"max_hourly_rate,omitempty"`
	// TargetVersion and TargetInputs are what an upgrade under way installs.
	TargetVersion int            `json:"target_version,omitempty"`
	TargetInputs  map[string]any `json:"target_inputs,omitempty"`
	// UpdateAvailable names a newer version of the application, when there is one not deprecated.
	UpdateAvailable *VersionUpdate `json:"update_available,omitempty"`
	// HourlyRate is the application's rate when the install was accepted; the usage record bills it.
	HourlyRate    Money     `json:"hourly_rate"`
	Placement     Placement `json:"placement"`
	FailureReason string    `json:"failure_reason,omitempty"`
	// Health is what the provider sees now (an installed deployment read on its own).
	Health *Health `json:"health,omitempty"`
	// Revisions and Usage are the latest of its revisions and usage records with their totals (a
	// deployment read on its own): a bounded slice however many there are, and where the rest are.
	Revisions *RecentRevisions `json:"revisions,omitempty"`
	Usage     *RecentUsage     `json:"usage,omitempty"`
	// CleanedUpAt is when the resources of a failed install were removed; absent while that is owed.
	CleanedUpAt *time.Time `json:"cleaned_up_at,omitempty"`
	Attempts    int        `json:"attempts"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`

	// OrganizationID is its project's organization, which it is billed to (0: billed to its consumer).
	OrganizationID int64 `json:"organization_id,omitempty"`
	// TargetID is the cluster or VM host it runs on, for life (GET /api/targets/{id}, the operator's).
	TargetID int64 `json:"target_id"`
}

// AutoUpgrade is an upgrade the reconciler requests by itself: a deployment and the version it moves to.
type AutoUpgrade struct {
	DeploymentID int64
	Version      int
}

// Placement is where a deployment's resources live.
type Placement struct {
	Namespace    string `json:"namespace,omitempty"`
	ReleaseName  string `json:"release_name,omitempty"`
	ChartVersion string `json:"chart_version,omitempty"`
	VMName       string `json:"vm_name,omitempty"`
	IPAddress    string `json:"ip_address,omitempty"`
}

// DeploymentFilter selects a page of deployments.
type DeploymentFilter struct {
	// UpdateAvailable selects the deployments with a newer version of their application out.
	UpdateAvailable bool
	ConsumerID      int64
	ProjectID       int64
	// OrganizationID keeps the deployments of an organization's projects.
	OrganizationID int64
	Status         Status
	Page           Page
}

// DeploymentService stores deployments, scoped to the caller.
type DeploymentService interface {
	// CreateDeployment stores a pending deployment; the status itself records that an install is owed.
	// It refuses (ECONFLICT) an application that is retired and a consumer at its deployment quota.
	CreateDeployment(ctx context.Context, d *Deployment) error
	FindDeploymentByID(ctx context.Context, id int64) (*Deployment, error)
	// FindDeployments lists a page of the caller's deployments that match f, newest first, and how many
	// match in all.
	FindDeployments(ctx context.Context, f DeploymentFilter) ([]*Deployment, int, error)
	// RequestUninstall moves an installed or failed deployment to uninstalling and closes its usage record
	// at this moment, in one transaction. An in-flight deployment is ECONFLICT.
	RequestUninstall(ctx context.Context, id int64) (*Deployment, error)
	// RequestUpgrade moves an installed deployment to upgrading towards version (0: the latest one not
	// deprecated) with inputs; ECONFLICT unless installed, or for a deprecated version.
	RequestUpgrade(ctx context.Context, id int64, version int, inputs map[string]any) (*Deployment, error)
	// FindRevisions lists a page of the revisions of one of the caller's deployments that f selects,
	// oldest first (newest first with NewestFirst), and how many it selects in all.
	FindRevisions(ctx context.Context, f RevisionFilter) ([]*Revision, int, error)
}

// ErrClaimLost means a worker's lease on a deployment expired and another attempt took it over; the
// worker must drop its result.
var ErrClaimLost = errors.New("claim lost to a newer attempt")

// WorkStore is what workers and the reconciler need: guarded status transitions. Every method is safe
// to call twice: a second, late or duplicate call changes nothing. op says which operation an attempt
// belongs to, so a stale install attempt can never touch an uninstall's claim.
type WorkStore interface {
	// ClaimInstall moves a pending deployment whose attempt is due (or an installing one whose lease
	// expired) to installing with a fresh lease, unless maxAttempts attempts were made already, and
	// returns it: its Attempts is the number of the attempt the caller now holds until the lease
	// expires. It returns nil, nil when there is nothing to do.
	ClaimInstall(ctx context.Context, id int64, lease time.Duration, maxAttempts int) (*Deployment, error)
	ClaimUninstall(ctx context.Context, id int64, lease time.Duration, maxAttempts int) (*Deployment, error)
	ClaimUpgrade(ctx context.Context, id int64, lease time.Duration, maxAttempts int) (*Deployment, error)
	// CompleteUpgrade marks installed at the target version and inputs, records the revision, and splits
	// the bill: the open usage record closes now and one at the new version's rate opens, in one
	// transaction.
	CompleteUpgrade(ctx context.Context, id int64, attempt int, p Placement, revision int) error
	// ExtendLease keeps a claim alive while the work runs. It reports false when the claim was lost.
	ExtendLease(ctx context.Context, id int64, op Operation, attempt int, lease time.Duration) (bool, error)
	// CompleteInstall marks installed, records the placement and opens the usage record with the rate
	// the deployment was accepted at, in one transaction.
	CompleteInstall(ctx context.Context, id int64, attempt int, p Placement) error
	CompleteUninstall(ctx context.Context, id int64, attempt int) error
	// FailAttempt records a failed attempt: retried after f.RetryAfter, or failed for good when f.Final.
	FailAttempt(ctx context.Context, id int64, op Operation, attempt int, f AttemptFailure) error
	// HandBack releases attempt's claim without counting it (a worker stopping): the operation is due
	// again at once, with the attempt it had before the claim.
	HandBack(ctx context.Context, id int64, op Operation, attempt int) error
	// FailAbandoned ends failed every deployment whose last allowed attempt lost its lease without
	// reporting back (a worker killed or stuck every time), so nothing stays in flight forever.
	FailAbandoned(ctx context.Context, maxAttempts int) (int64, error)
	// FindAutoUpgrades lists installed deployments that follow their application's versions (policy auto),
	// are behind its latest version, whose last change did not fail, and which accept that version's rate
	// (at most their MaxHourlyRate), each with that version.
	FindAutoUpgrades(ctx context.Context, limit int) ([]AutoUpgrade, error)
	// FindUncleanedFailures lists failed deployments whose resources are not known to be removed.
	FindUncleanedFailures(ctx context.Context, limit int) ([]*Deployment, error)
	// ClaimCleanup holds a failed deployment for the removal of its resources for lease, so one removal
	// runs at a time (an uninstall requested meanwhile waits for the lease); false when another holds it.
	ClaimCleanup(ctx context.Context, id int64, lease time.Duration) (bool, error)
	// MarkCleanedUp records that a failed deployment's resources are removed and releases its claim.
	MarkCleanedUp(ctx context.Context, id int64) error
	// FindDeletedProjects lists deleted projects whose provider resources are not removed yet.
	FindDeletedProjects(ctx context.Context, limit int) ([]int64, error)
	// MarkProjectRemoved records that a deleted project's provider resources are gone.
	MarkProjectRemoved(ctx context.Context, id int64) error
	// FindOwedWork lists what a worker owes: deployments whose operation is due and not held by a live
	// lease.
	FindOwedWork(ctx context.Context, limit int) ([]Task, error)
}

// Revision is one revision a deployment ran: the version and inputs it installed.
// RecentRevisions is the latest few of a deployment's revisions.
type RecentRevisions struct {
	Total  int         `json:"total" doc:"how many revisions the deployment has"`
	Latest []*Revision `json:"latest" doc:"the newest revisions, newest first"`
	Next   string      `json:"next,omitempty" doc:"the page of the revisions list that follows these, newest first; absent when these are all"`
}

// RecentUsage is the latest few of a deployment's usage records, with the totals of all of them.
type RecentUsage struct {
	UsageTotals
	Latest []*UsageRecord `json:"latest" doc:"the newest usage records, newest first"`
	Next   string         `json:"next,omitempty" doc:"the page of the deployment's bill that follows these, newest first; absent when these are all"`
}

// RevisionFilter selects revisions of one deployment: one of them when Revision is not 0.
type RevisionFilter struct {
	DeploymentID int64
	Revision     int
	NewestFirst  bool
	Page         Page
}

type Revision struct {
	Revision     int            `json:"revision"`
	Version      int            `json:"version"`
	Inputs       map[string]any `json:"inputs"`
	ChartVersion string         `json:"chart_version,omitempty"`
	CreatedAt    time.Time      `json:"created_at"`
}

// AttemptFailure is how an attempt failed and what follows.
type AttemptFailure struct {
	Reason     string
	RetryAfter time.Duration // when not Final
	Final      bool          // no attempts left: the deployment ends failed
	CleanedUp  bool          // a final install failure whose resources were removed
}

// Operation is what a task does.
type Operation string

const (
	OpInstall   Operation = "install"
	OpUninstall Operation = "uninstall"
	OpUpgrade   Operation = "upgrade" // an upgrade or a rollback: another version and inputs, in place
)

// Task is one attempt of one operation on one deployment. Its ID deduplicates it in the queue.
type Task struct {
	Op           Operation
	DeploymentID int64
	Attempt      int
	// NotBefore, when set, delays the task until then (a retry's backoff).
	NotBefore time.Time
}

// ID is the queue's deduplication key: one task per deployment, operation and attempt.
func (t Task) ID() string { return fmt.Sprintf("%s:%d:%d", t.Op, t.DeploymentID, t.Attempt) }

// Enqueuer puts tasks on the queues. A task whose ID is already queued is not an error.
type Enqueuer interface {
	Enqueue(ctx context.Context, t Task) error
}

// Health is what the provider sees of a deployment right now, beside its recorded status.
type Health struct {
	// Status is healthy (every workload has all its replicas ready), progressing (some not ready yet),
	// unhealthy (a workload has none ready) or unknown (the provider did not answer in time).
	Status    string           `json:"status" enum:"healthy,progressing,unhealthy,unknown"`
	Workloads []WorkloadHealth `json:"workloads,omitempty"`
	// Revision is the Helm release's revision; State a VM's domain state.
	Revision  int       `json:"revision,omitempty"`
	State     string    `json:"state,omitempty"`
	Error     string    `json:"error,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
}

// WorkloadHealth is one workload's replicas.
type WorkloadHealth struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Ready   int32  `json:"ready"`
	Desired int32  `json:"desired"`
}

// Health statuses.
const (
	HealthHealthy     = "healthy"
	HealthProgressing = "progressing"
	HealthUnhealthy   = "unhealthy"
	HealthUnknown     = "unknown"
)

// HealthOf summarizes workloads: unhealthy when one has no ready replica, progressing when one has fewer
// than it wants, healthy otherwise.
func HealthOf(workloads []WorkloadHealth) string {
	status := HealthHealthy
	for _, w := range workloads {
		switch {
		case w.Ready == 0:
			return HealthUnhealthy
		case w.Ready < w.Desired:
			status = HealthProgressing
		}
	}
	return status
}

// AcceptedRate is the highest rate an automatic upgrade may move the deployment to: its MaxHourlyRate,
// or the rate it runs at.
func (d *Deployment) AcceptedRate() Money {
	if d.MaxHourlyRate != nil {
		return *d.MaxHourlyRate
	}
	return d.HourlyRate
}
