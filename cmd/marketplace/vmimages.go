package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// vmMaxDisk is VM_MAX_DISK in bytes: the largest virtual size of an image a guest boots from.
func vmMaxDisk(cfg Config) (uint64, error) {
	disk := marketplace.DeploymentSpec{Memory: cfg.VMMaxDisk}
	mib, err := disk.MemoryMiB()
	if err != nil {
		return 0, fmt.Errorf("configuration: VM_MAX_DISK=%q must be a quantity such as 64Gi", cfg.VMMaxDisk)
	}
	return uint64(mib) << 20, nil
}

// imageURLs are the image URLs application versions name (package postgres).
type imageURLs interface {
	ImageURLsInUse(ctx context.Context) ([]string, error)
}

// collectImages deletes, every interval, the downloaded VM images no application version names any
// more (collect: the VM provider's CollectImages). A failed round is logged and the next one tries again.
func collectImages(ctx context.Context, interval time.Duration, store imageURLs, collect func(context.Context, []string) (int, error), log *slog.Logger) error {
	return every(ctx, interval, "could not collect the downloaded VM images no application names", log, func(ctx context.Context) error {
		named, err := store.ImageURLsInUse(marketplace.OperatorContext(ctx))
		if err != nil {
			return err
		}
		n, err := collect(ctx, named)
		if n > 0 {
			log.Info("downloaded VM images collected", "urls", n)
		}
		return err
	})
}
