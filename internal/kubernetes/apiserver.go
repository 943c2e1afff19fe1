package kubernetes

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
)

// APIServer returns the URL of the API server of kubeconfig's current context, for the fetch guard to
// refuse: a publisher's URL must not reach the cluster's control plane.
func APIServer(kubeconfig string) (string, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return "", fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg.Host, nil
}
