package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
)

// Probe reaches the API server of a kubeconfig's current context and returns its Kubernetes version
// (a target's health). It reads /version only: any identity that can reach the server may.
func Probe(ctx context.Context, kubeconfig []byte, timeout time.Duration) (string, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return "", fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.Timeout = timeout
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", fmt.Errorf("kubernetes client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := dc.RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return "", fmt.Errorf("reach the API server %s: %w", cfg.Host, err)
	}
	v, err := versionOf(raw)
	if err != nil {
		return "", fmt.Errorf("the API server %s's version: %w", cfg.Host, err)
	}
	return v, nil
}

// versionOf is gitVersion of a /version answer.
func versionOf(raw []byte) (string, error) {
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	if v.GitVersion == "" {
		return "", fmt.Errorf("no gitVersion in %.100q", raw)
	}
	return v.GitVersion, nil
}
