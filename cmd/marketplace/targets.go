package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/secretbox"
)

// secretBox seals registered clusters' kubeconfigs under MARKETPLACE_SECRET_KEY (opening what
// MARKETPLACE_OLD_SECRET_KEYS sealed too); nil when the key is unset: no cluster can then be registered,
// and the default targets, which hold no credentials, work as before.
func secretBox(cfg Config) (marketplace.Sealer, error) {
	if cfg.SecretKey == "" {
		if len(cfg.OldSecretKeys) > 0 {
			return nil, fmt.Errorf("configuration: MARKETPLACE_OLD_SECRET_KEYS is set without MARKETPLACE_SECRET_KEY")
		}
		return nil, nil
	}
	box, err := secretbox.New(cfg.SecretKey, cfg.OldSecretKeys)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return box, nil
}

// registerDefaultTargets registers, or updates, the target named default of each kind this process is
// configured with: the cluster of KUBECONFIG (by its API server's address; no credentials are stored)
// and the VM host of LIBVIRT_URI (or the local one). Every replica does it at every start.
func registerDefaultTargets(ctx context.Context, cfg Config, store marketplace.TargetHealthStore) error {
	if cfg.Kubeconfig != "" {
		server, err := kubeconfigServer(cfg.Kubeconfig)
		if err != nil {
			return err
		}
		if _, err := store.RegisterDefaultTarget(ctx, marketplace.TypeK8s, server); err != nil {
			return err
		}
	}
	if uri := vmHostURI(cfg, slog.New(slog.DiscardHandler)); uri != "" {
		if _, err := store.RegisterDefaultTarget(ctx, marketplace.TypeVM, uri); err != nil {
			return err
		}
	}
	return nil
}
