package kubernetes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/release"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/render"
)

// Preview renders the chart the install would apply, on the client only: nothing is created, the
// cluster is not asked (so `lookup` finds nothing), and no identity of the deployment is needed. The
// publisher's templates render in a child process, within the render budget (package render).
func (p *Provider) Preview(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (*marketplace.Preview, error) {
	return p.preview(ctx, d, app, render.Release{Name: ReleaseName(d.ID), Namespace: p.Namespace(d.ID), Revision: 1, IsInstall: true})
}

// preview renders app's chart for d as release rel, client-side.
func (p *Provider) preview(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application, rel render.Release) (*marketplace.Preview, error) {
	values, err := app.Values(d.Inputs)
	if err != nil {
		return nil, err
	}
	ch, archive, err := p.charts.load(ctx, app.Deployment)
	if err != nil {
		return nil, err
	}
	pre, _, err := p.prerender(ctx, ch, archive, values, rel, "")
	if err != nil {
		return nil, err
	}
	inst := action.NewInstall(action.NewConfiguration(action.ConfigurationSetLogger(p.cfg.Logger.Handler())))
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName = ReleaseName(d.ID)
	inst.Namespace = p.Namespace(d.ID)
	installed, err := inst.RunWithContext(ctx, pre, values)
	if err != nil {
		return nil, marketplace.Errorf(marketplace.EINVALID, "chart %s %s does not render with these values: %v",
			ch.Metadata.Name, ch.Metadata.Version, err)
	}
	acc, err := release.NewAccessor(installed)
	if err != nil {
		return nil, err
	}
	resources, err := manifestResources(acc.Manifest())
	if err != nil {
		return nil, fmt.Errorf("read the rendered manifest of chart %s: %w", ch.Metadata.Name, err)
	}
	return &marketplace.Preview{Resources: resources, Manifest: acc.Manifest()}, nil
}

// PreviewUpgrade renders what an upgrade of d to app would apply, client-side, and compares it object by
// object with what its release runs now (read as its deployer identity).
func (p *Provider) PreviewUpgrade(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (*marketplace.Preview, error) {
	ns := d.Placement.Namespace
	if ns == "" {
		ns = p.Namespace(d.ID)
	}
	cfg, f, err := p.actionConfig(ctx, ns, p.deployerUser(d.ID))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	deployed, err := cfg.Releases.Deployed(ReleaseName(d.ID))
	if err != nil {
		return nil, fmt.Errorf("read what deployment %d runs now: %w", d.ID, err)
	}
	acc, err := release.NewAccessor(deployed)
	if err != nil {
		return nil, err
	}
	next, err := p.preview(ctx, d, app, render.Release{Name: ReleaseName(d.ID), Namespace: ns, Revision: acc.Version() + 1, IsUpgrade: true})
	if err != nil {
		return nil, err
	}
	next.Diff, err = diffManifests(acc.Manifest(), next.Manifest)
	if err != nil {
		return nil, fmt.Errorf("compare the manifests of deployment %d: %w", d.ID, err)
	}
	return next, nil
}

// diffManifests compares two manifests object by object (by API version, kind and name).
func diffManifests(current, next string) (*marketplace.ManifestDiff, error) {
	before, err := manifestObjects(current)
	if err != nil {
		return nil, err
	}
	after, err := manifestObjects(next)
	if err != nil {
		return nil, err
	}
	diff := &marketplace.ManifestDiff{Added: []marketplace.PreviewResource{}, Removed: []marketplace.PreviewResource{},
		Changed: []marketplace.PreviewResource{}}
	for _, r := range after.order {
		old, ok := before.objects[r]
		switch {
		case !ok:
			diff.Added = append(diff.Added, r)
		case !reflect.DeepEqual(old, after.objects[r]):
			diff.Changed = append(diff.Changed, r)
		}
	}
	for _, r := range before.order {
		if _, ok := after.objects[r]; !ok {
			diff.Removed = append(diff.Removed, r)
		}
	}
	return diff, nil
}

// objects are the parsed objects of a manifest, in their order.
type objects struct {
	order   []marketplace.PreviewResource
	objects map[marketplace.PreviewResource]map[string]any
}

func manifestObjects(manifest string) (objects, error) {
	dec := yamlutil.NewYAMLOrJSONDecoder(bytes.NewBufferString(manifest), 4096)
	out := objects{objects: map[marketplace.PreviewResource]map[string]any{}}
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, err
		}
		kind, _ := obj["kind"].(string)
		if kind == "" {
			continue
		}
		apiVersion, _ := obj["apiVersion"].(string)
		meta, _ := obj["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		r := marketplace.PreviewResource{APIVersion: apiVersion, Kind: kind, Name: name}
		out.order = append(out.order, r)
		out.objects[r] = obj
	}
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
