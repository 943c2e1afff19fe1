package kubernetes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/release"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Preview renders the chart the install would apply, on the client only: nothing is created, the
// cluster is not asked (so `lookup` finds nothing), and no identity of the deployment is needed.
func (p *Provider) Preview(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (*marketplace.Preview, error) {
	values, err := app.Values(d.Inputs)
	if err != nil {
		return nil, err
	}
	ch, err := p.charts.load(ctx, app.Deployment)
	if err != nil {
		return nil, err
	}
	inst := action.NewInstall(action.NewConfiguration(action.ConfigurationSetLogger(p.cfg.Logger.Handler())))
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName = ReleaseName(d.ID)
	inst.Namespace = p.Namespace(d.ID)
	rel, err := inst.RunWithContext(ctx, ch, values)
	if err != nil {
		return nil, marketplace.Errorf(marketplace.EINVALID, "chart %s %s does not render with these values: %v",
			ch.Metadata.Name, ch.Metadata.Version, err)
	}
	acc, err := release.NewAccessor(rel)
	if err != nil {
		return nil, err
	}
	resources, err := manifestResources(acc.Manifest())
	if err != nil {
		return nil, fmt.Errorf("read the rendered manifest of chart %s: %w", ch.Metadata.Name, err)
	}
	return &marketplace.Preview{Resources: resources, Manifest: acc.Manifest()}, nil
}

// manifestResources lists the objects of a multi-document YAML manifest.
func manifestResources(manifest string) ([]marketplace.PreviewResource, error) {
	dec := yamlutil.NewYAMLOrJSONDecoder(bytes.NewBufferString(manifest), 4096)
	resources := []marketplace.PreviewResource{}
	for {
		var obj struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return resources, nil
		} else if err != nil {
			return nil, err
		}
		if obj.Kind != "" {
			resources = append(resources, marketplace.PreviewResource{APIVersion: obj.APIVersion, Kind: obj.Kind, Name: obj.Metadata.Name})
		}
	}
}
