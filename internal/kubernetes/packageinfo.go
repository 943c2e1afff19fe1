package kubernetes

import (
	"context"
	"strings"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// PackageInfo reads what app's chart says about itself: its Chart.yaml's icon, appVersion, keywords,
// maintainers, home and sources, its README.md (the first MaxReadmeBytes of it) and its artifacthub.io/
// annotations. All of it as the chart has it: package chartmeta bounds and sanitises it.
func (p *Provider) PackageInfo(ctx context.Context, app *marketplace.Application) (*marketplace.PackageInfo, error) {
	ch, _, err := p.charts.load(ctx, app.Deployment)
	if err != nil {
		return nil, err
	}
	m := ch.Metadata
	info := &marketplace.PackageInfo{Icon: m.Icon, AppVersion: m.AppVersion, Keywords: firstOf(m.Keywords), Home: m.Home, Sources: firstOf(m.Sources)}
	for _, mt := range firstOf(m.Maintainers) {
		if mt != nil {
			info.Maintainers = append(info.Maintainers, marketplace.Maintainer{Name: mt.Name, Email: mt.Email, URL: mt.URL})
		}
	}
	for k, v := range m.Annotations {
		if strings.HasPrefix(k, "artifacthub.io/") && len(v) <= maxAnnotation {
			if info.Annotations == nil {
				info.Annotations = map[string]string{}
			}
			info.Annotations[k] = v
		}
	}
	for _, f := range ch.Files {
		if f != nil && strings.EqualFold(f.Name, "README.md") {
			readme := f.Data
			if len(readme) > marketplace.MaxReadmeBytes {
				readme = readme[:marketplace.MaxReadmeBytes]
			}
			info.Readme = string(readme)
			break
		}
	}
	return info, nil
}

// What of a chart's metadata is passed on at most (a worker's answer to an API replica is capped): more
// than chartmeta keeps, so it can say what it left out.
const (
	maxListed     = 100
	maxAnnotation = 64 << 10
)

// firstOf returns the first maxListed items of l.
func firstOf[T any](l []T) []T { return l[:min(len(l), maxListed)] }
