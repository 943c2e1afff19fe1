package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/registry"

	"github.com/marketplace/marketplace/internal/chartverify"
	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// VerifyChart fetches app's chart archive and its provenance, afresh (not from the archive cache), and
// checks them against keys: a chart repository's <chart URL>.prov, or an OCI chart's provenance layer
// (application/vnd.cncf.helm.chart.provenance.v1.prov, which helm push adds for a signed package).
func (p *Provider) VerifyChart(ctx context.Context, app *marketplace.Application, keys []string) (*marketplace.ChartSignature, error) {
	archive, prov, filename, err := p.charts.signed(ctx, app.Deployment)
	if err != nil {
		return nil, err
	}
	return chartverify.Verify(archive, prov, filename, keys), nil
}

// signed fetches the chart of spec with its provenance file (nil when it has none) and the file name the
// provenance names the archive by.
func (c *chartSource) signed(ctx context.Context, spec marketplace.DeploymentSpec) (archive, prov []byte, filename string, err error) {
	ref, err := c.ref(ctx, spec)
	if err != nil {
		return nil, nil, "", err
	}
	if oci, ok := strings.CutPrefix(ref, "oci://"); ok {
		res, err := c.registry.Pull(oci, registry.PullOptWithChart(true), registry.PullOptWithProv(true), registry.PullOptIgnoreMissingProv(true))
		if err != nil {
			return nil, nil, "", fmt.Errorf("download chart %s: %w", ref, withoutRegistryText(err))
		}
		if len(res.Prov.Data) > chartverify.MaxProvBytes {
			return nil, nil, "", fmt.Errorf("chart %s: its provenance layer is larger than %d bytes", ref, chartverify.MaxProvBytes)
		}
		// helm package --sign names the archive <name>-<version>.tgz in the .prov it pushes.
		ch, err := loader.LoadArchive(strings.NewReader(string(res.Chart.Data)))
		if err != nil {
			return nil, nil, "", fmt.Errorf("load chart %s: %w", ref, err)
		}
		if len(res.Prov.Data) > 0 {
			prov = res.Prov.Data
		}
		return res.Chart.Data, prov, ch.Metadata.Name + "-" + ch.Metadata.Version + ".tgz", nil
	}
	if archive, err = c.fetch.Get(ctx, ref, "chart archive"); err != nil {
		return nil, nil, "", err
	}
	u, err := url.Parse(ref)
	if err != nil {
		return nil, nil, "", fmt.Errorf("chart URL %s: %w", ref, err)
	}
	filename = path.Base(u.Path)
	u.Path += ".prov"
	u.RawPath = ""
	prov, err = c.fetch.Get(ctx, u.String(), "provenance file")
	var status *fetch.StatusError
	if errors.As(err, &status) && (status.Code == 404 || status.Code == 403) {
		return archive, nil, filename, nil // unsigned: no .prov beside the chart
	} else if err != nil {
		return nil, nil, "", err
	}
	if len(prov) > chartverify.MaxProvBytes {
		return nil, nil, "", fmt.Errorf("the provenance file %s is larger than %d bytes", u.Redacted(), chartverify.MaxProvBytes)
	}
	return archive, prov, filename, nil
}

// checkDigest refuses an archive that is not the one verified when app's version was published: a chart
// swapped in the publisher's repository after its signature was checked never installs.
func checkDigest(app *marketplace.Application, archive []byte) error {
	if app.Signature == nil || !app.Signature.Verified || app.Signature.Digest == "" {
		return nil
	}
	sum := sha256.Sum256(archive)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != app.Signature.Digest {
		return marketplace.Final(marketplace.Errorf(marketplace.EINVALID,
			"the chart archive fetched now (%s) is not the one verified when version %d was published (%s): it was replaced in the publisher's repository",
			got, app.Version, app.Signature.Digest))
	}
	return nil
}
