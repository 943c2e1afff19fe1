package kubernetes

import (
	"context"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Provider is both sides of the k8s type (marketplace.Offers says what it offers).
var (
	_ marketplace.Installer = (*Provider)(nil)
	_ marketplace.Inspector = (*Provider)(nil)
)

// Console: a Helm release has no serial console (marketplace.Offers(k8s) has no Console).
func (p *Provider) Console(context.Context, *marketplace.Deployment, int64) (string, error) {
	return "", marketplace.NotOffered(marketplace.TypeK8s, "console")
}

// State: a Helm release has no console state; its health says how it runs.
func (p *Provider) State(context.Context, *marketplace.Deployment) (string, error) {
	return "", marketplace.NotOffered(marketplace.TypeK8s, "console")
}
