package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/render"
)

// prerender renders a publisher's chart ch (loaded from archive) with values in a render child, within
// the render budget, and returns the chart Helm installs in its place: the rendered text, which Helm's
// own render turns back into itself (render.Prerendered). No template of the publisher's runs in this
// process. The values are first checked for what Helm's schema validation would cost here
// (checkSchemaCost): Helm checks them again, in process, against the pre-rendered chart's schema.
//
// A render that overruns its budget, and a chart that does not render with these values, are EINVALID;
// an install's or upgrade's overrun is also final (marketplace.Final).
// With deployer set (an install or upgrade), the render sees the cluster's capabilities and `lookup`
// reads the cluster as that identity; without (a preview), Helm's default capabilities and a `lookup`
// that finds nothing, as Helm's client-side dry run.
//
// With deployer set it also returns the capabilities the chart was rendered with, for the caller to give
// Helm (action.Configuration.Capabilities): Helm would otherwise discover them again, each install
// invalidating and re-reading the discovery every attempt shares (three requests), only to render the
// pre-rendered text into itself.
func (p *Provider) prerender(ctx context.Context, ch *chart.Chart, archive []byte, values map[string]any, rel render.Release, deployer string) (*chart.Chart, *common.Capabilities, error) {
	if err := checkSchemaCost(ch, values); err != nil {
		return nil, nil, err
	}
	req := render.Request{Archive: archive, Values: values, Release: rel}
	var helmCaps *common.Capabilities
	if deployer != "" {
		caps, err := p.capabilities(ctx)
		if err != nil {
			return nil, nil, err
		}
		req.Capabilities = caps
		req.Cluster = &render.Cluster{Kubeconfig: p.cfg.Kubeconfig, User: deployer}
		helmCaps = &common.Capabilities{APIVersions: common.VersionSet(caps.APIVersions),
			KubeVersion: common.KubeVersion{Version: caps.KubeVersion, Major: caps.Major, Minor: caps.Minor},
			HelmVersion: common.DefaultCapabilities.HelmVersion}
	}
	res, err := p.renderer.Render(ctx, req)
	var over *render.BudgetError
	if errors.As(err, &over) {
		err = marketplace.Errorf(marketplace.EINVALID, "chart %s %s did not render within its %s budget: %s",
			ch.Metadata.Name, ch.Metadata.Version, over.Budget, over.Limit)
		if deployer != "" {
			// The same chart and values overrun it again: no retry of the attempt can help.
			err = marketplace.Final(err)
		}
		return nil, nil, err
	} else if err != nil {
		return nil, nil, err
	}
	if res.ChartError != "" {
		return nil, nil, marketplace.Errorf(marketplace.EINVALID, "chart %s %s does not render with these values: %s",
			ch.Metadata.Name, ch.Metadata.Version, res.ChartError)
	}
	return render.Prerendered(ch, res), helmCaps, nil
}

// capabilitiesMaxAge is how long the cluster's capabilities (its version and the API versions it
// serves, what Helm tells templates) are reused by the attempts that follow. Helm alone discovers them
// again for every install; a burst of installs shares one discovery here, and an API the cluster's
// operator adds (a CRD) reaches templates and the REST mapper within this long.
const capabilitiesMaxAge = 30 * time.Second

// capabilities returns the cluster's capabilities, discovered again once older than capabilitiesMaxAge.
// One attempt discovers while the others wait for its answer.
func (p *Provider) capabilities(ctx context.Context) (*render.Capabilities, error) {
	select {
	case p.capsLock <- struct{}{}:
		defer func() { <-p.capsLock }()
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the cluster's capabilities: %w", ctx.Err())
	}
	if p.caps != nil && time.Since(p.capsAt) < capabilitiesMaxAge {
		return p.caps, nil
	}
	p.discovery.Invalidate()
	caps, err := clusterCapabilities(p.discovery)
	if err != nil {
		return nil, err
	}
	// The REST mapper reads the discovery just refreshed on its next use: a kind added meanwhile maps.
	if m, ok := p.mapper.(meta.ResettableRESTMapper); ok {
		m.Reset()
	}
	p.caps, p.capsAt = caps, time.Now()
	return caps, nil
}

// clusterCapabilities are what Helm tells templates about the cluster, read as Helm reads them.
func clusterCapabilities(dc discovery.DiscoveryInterface) (*render.Capabilities, error) {
	version, err := dc.ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("could not get server version from Kubernetes: %w", err)
	}
	// Helm trap: an API service registered but unimplemented fails discovery of its group only; the
	// other groups are listed all the same.
	apis, err := action.GetVersionSet(dc)
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("could not get apiVersions from Kubernetes: %w", err)
	}
	return &render.Capabilities{KubeVersion: version.GitVersion, Major: version.Major, Minor: version.Minor, APIVersions: apis}, nil
}
