package libvirt

import (
	"context"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Provider is both sides of the vm type (marketplace.Offers says what it offers).
var (
	_ marketplace.Installer = (*Provider)(nil)
	_ marketplace.Inspector = (*Provider)(nil)
)

// Preview: a VM's dry run lists no resources (marketplace.Offers(vm) has no Preview); its price is the
// deployer's.
func (p *Provider) Preview(context.Context, *marketplace.Deployment, *marketplace.Application) (*marketplace.Preview, error) {
	return nil, marketplace.NotOffered(marketplace.TypeVM, "preview")
}

// PreviewUpgrade: as Preview.
func (p *Provider) PreviewUpgrade(context.Context, *marketplace.Deployment, *marketplace.Application) (*marketplace.Preview, error) {
	return nil, marketplace.NotOffered(marketplace.TypeVM, "preview")
}

// ValuesSchema: a VM image has no values schema; its inputs are the application's.
func (p *Provider) ValuesSchema(context.Context, *marketplace.Application) (*marketplace.ValuesSchema, error) {
	return nil, marketplace.NotOffered(marketplace.TypeVM, "values schema")
}

// PackageInfo is not offered: a VM image says nothing of itself (its application's description does).
func (p *Provider) PackageInfo(context.Context, *marketplace.Application) (*marketplace.PackageInfo, error) {
	return nil, marketplace.NotOffered(marketplace.TypeVM, "package description")
}

// VerifyChart: a VM image has no chart provenance.
func (p *Provider) VerifyChart(context.Context, *marketplace.Application, []string) (*marketplace.ChartSignature, error) {
	return nil, marketplace.NotOffered(marketplace.TypeVM, "chart provenance")
}
