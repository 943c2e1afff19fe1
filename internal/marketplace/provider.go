package marketplace

import "context"

// The provider contract. A deployment type (k8s, vm) has two sides, split where they already are at
// run time:
//
//   - an Installer, on workers only: it changes what runs (install, upgrade, uninstall, a deleted
//     project's leftovers), called by package deploy's runner under a lease;
//   - an Inspector, wherever requests are answered: it reads (previews, health, a values schema, a VM's
//     console and state) and changes nothing. A worker holds the real one; an API replica holds one
//     that forwards every call to a worker (package workerrpc), since it holds no cluster or VM host
//     credentials.
//
// What a type offers is a record, Offers, the same in every process: an API replica knows whether a
// type previews, upgrades or has a console without linking, or asking, the worker's provider, and
// every caller consults the record instead of asserting optional interfaces. A method of an Inspector
// whose type does not offer it is never called; it returns an error should it be.

// Installer is the worker side of a deployment type. Every method is idempotent: a retry after a crash
// converges on the same resources, never duplicates them, and resources already gone count as removed.
// A method returns only once the work it started has stopped (its context ended or not).
type Installer interface {
	// Install creates what d runs, as app's version says, and returns where it runs.
	Install(ctx context.Context, d *Deployment, app *Application) (Placement, error)
	// Upgrade moves d to app's version and d's inputs in place, keeping the previous revision running
	// when that fails; it returns the placement and the new revision's number. Called only for a type
	// whose Offering says Upgrade.
	Upgrade(ctx context.Context, d *Deployment, app *Application) (Placement, int, error)
	// Uninstall removes what d runs.
	Uninstall(ctx context.Context, d *Deployment) error
	// RemoveProject removes what the type keeps per project (a namespace, a network) once the project
	// is deleted; nothing to remove is not an error.
	RemoveProject(ctx context.Context, projectID int64) error
}

// Inspector is the read side of a deployment type. It changes nothing; each method is called only for
// a type whose Offering says it is offered.
type Inspector interface {
	// Preview tells what an install of app into d's project with d's inputs would create (Offering.Preview).
	Preview(ctx context.Context, d *Deployment, app *Application) (*Preview, error)
	// PreviewUpgrade tells what an upgrade of d to app with d's inputs would change (Offering.Preview).
	PreviewUpgrade(ctx context.Context, d *Deployment, app *Application) (*Preview, error)
	// Health tells how an installed deployment is doing right now (Offering.Health).
	Health(ctx context.Context, d *Deployment) (*Health, error)
	// ValuesSchema reads the values schema of app's package (Offering.ValuesSchema). It may fetch the
	// package (through the fetch guard); a schema that refers outside itself is refused, never followed.
	ValuesSchema(ctx context.Context, app *Application) (*ValuesSchema, error)
	// Console reads the end of a VM's serial console, at most maxBytes (Offering.Console).
	Console(ctx context.Context, d *Deployment, maxBytes int64) (string, error)
	// State is a VM's live state: running, shut off, absent... (Offering.Console).
	State(ctx context.Context, d *Deployment) (string, error)
	// PackageInfo reads what app's package says about itself (Offering.PackageInfo): someone else's
	// text, which package chartmeta bounds and sanitises. It may fetch the package (through the fetch guard).
	PackageInfo(ctx context.Context, app *Application) (*PackageInfo, error)
	// VerifyChart fetches app's chart and its provenance (through the fetch guard) and checks them
	// against keys, armored public keys (Offering.PackageInfo). A chart that is unsigned, tampered or
	// signed by another key is an outcome, not an error; an error is a chart that cannot be fetched.
	VerifyChart(ctx context.Context, app *Application, keys []string) (*ChartSignature, error)
}

// Offering is what a deployment type offers beyond install and uninstall.
type Offering struct {
	Preview      bool // dry runs of installs and upgrades list the resources
	Upgrade      bool // upgrades and rollbacks in place
	Health       bool // live health of an installed deployment
	ValuesSchema bool // a package's values schema, which requests are checked against
	Console      bool // a VM's serial console and live state
	PackageInfo  bool // what a package says about itself (a chart's Chart.yaml, README, annotations)
}

// Offers returns what deployment type typ offers; nothing for a type that does not exist.
func Offers(typ string) Offering {
	switch typ {
	case TypeK8s:
		return Offering{Preview: true, Upgrade: true, Health: true, ValuesSchema: true, PackageInfo: true}
	case TypeVM:
		return Offering{Upgrade: true, Health: true, Console: true}
	}
	return Offering{}
}

// NotOffered is the error of an Inspector method that its type does not offer, should it be called.
func NotOffered(typ, what string) error {
	return Errorf(EINVALID, "%s deployments have no %s", typ, what)
}
