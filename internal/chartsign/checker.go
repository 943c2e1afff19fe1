package chartsign

import (
	"context"
	"fmt"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Store is where a Checker finds publishers' keys and the stored spec of an application.
type Store interface {
	FindSigningKeys(ctx context.Context, userID int64) ([]*marketplace.SigningKey, error)
	FindAppByID(ctx context.Context, id int64) (*marketplace.Application, error)
}

// RequireSetting is the operator's setting that refuses unsigned charts.
const RequireSetting = "MARKETPLACE_REQUIRE_SIGNED_CHARTS"

// Checker checks the chart of a version about to be published, with the k8s type's Inspector (which
// fetches it through the fetch guard, on a worker), against its publisher's registered keys.
type Checker struct {
	Store Store
	// Inspector is the k8s type's; nil when this marketplace has no Kubernetes provider.
	Inspector marketplace.Inspector
	// Require refuses an unsigned chart (and a publisher without keys) at publish.
	Require bool
}

// ReadKey parses an armored public key (ParseKey).
func (c *Checker) ReadKey(armored string) (string, []string, error) { return ParseKey(armored) }

// CheckChart checks spec, the chart of a version of application appID (0: a new application) that
// publisher publishes, and returns what it found. A tampered chart, a bad signature, and (with Require)
// an unsigned chart are refused (EINVALID), saying why; a vm spec has no signature (nil). Without keys
// registered the chart is not fetched at all: unchecked, and refused only with Require.
func (c *Checker) CheckChart(ctx context.Context, appID, publisher int64, spec marketplace.DeploymentSpec) (*marketplace.ChartSignature, error) {
	if spec.Type != marketplace.TypeK8s {
		return nil, nil
	}
	if c.Require && c.Inspector == nil {
		return nil, marketplace.Errorf(marketplace.EINVALID, "this marketplace requires signed charts (%s) and has no Kubernetes provider to check them", RequireSetting)
	}
	if appID != 0 {
		// A spec sent back as shown (https://REDACTED@host/...) keeps the stored credentials, as the store
		// does; the operator publishes with the keys of the application's publisher.
		stored, err := c.Store.FindAppByID(ctx, appID)
		if err != nil {
			return nil, err
		}
		spec.KeepStoredCredentials(stored.Deployment)
		if publisher == 0 {
			publisher = stored.PublisherID
		}
	}
	keys, err := c.Store.FindSigningKeys(ctx, publisher)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 || c.Inspector == nil {
		sig := &marketplace.ChartSignature{Outcome: marketplace.SignatureUnchecked, Reason: "its publisher has registered no signing key"}
		if c.Inspector == nil {
			sig.Reason = "this marketplace has no Kubernetes provider to fetch the chart"
		}
		if c.Require {
			return nil, marketplace.Errorf(marketplace.EINVALID,
				"this marketplace requires signed charts (%s): register your public key (POST /api/users/%d/signing-keys) and publish a chart packaged with helm package --sign",
				RequireSetting, publisher)
		}
		return sig, nil
	}
	armored := make([]string, len(keys))
	for i, k := range keys {
		armored[i] = k.Armored
	}
	sig, err := c.Inspector.VerifyChart(ctx, &marketplace.Application{ID: appID, PublisherID: publisher, Deployment: spec}, armored)
	if err != nil {
		if code := marketplace.ErrorCode(err); code != marketplace.EINTERNAL {
			return nil, err
		}
		return nil, marketplace.Errorf(marketplace.EINVALID, "the chart cannot be fetched to check its signature: %s", marketplace.RedactURLs(err.Error()))
	}
	if sig.Refused(c.Require) {
		what := map[string]string{marketplace.SignatureTampered: "tampered chart", marketplace.SignatureBad: "bad signature",
			marketplace.SignatureUnsigned: "unsigned chart"}[sig.Outcome]
		hint := ""
		if sig.Outcome == marketplace.SignatureUnsigned {
			hint = fmt.Sprintf(" (this marketplace requires signed charts: %s)", RequireSetting)
		}
		return nil, marketplace.Errorf(marketplace.EINVALID, "refused: %s: %s%s", what, sig.Reason, hint)
	}
	return sig, nil
}
