package main

import (
	"context"

	"github.com/marketplace/marketplace/internal/chartmeta"
	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// publishingStore is the store the API and the storefront publish through: every version it publishes
// (an application's first, a new one, one an update makes) is handed to the package reader, which reads
// in the background what the version's package says about itself (package chartmeta).
type publishingStore struct {
	*postgres.DB
	about *chartmeta.Reader
}

func (s publishingStore) CreateApp(ctx context.Context, a *marketplace.Application) error {
	if err := s.DB.CreateApp(ctx, a); err != nil {
		return err
	}
	s.about.Request(ctx, a.ID, a.Version)
	return nil
}

func (s publishingStore) UpdateApp(ctx context.Context, a *marketplace.Application) error {
	if err := s.DB.UpdateApp(ctx, a); err != nil {
		return err
	}
	s.about.Request(ctx, a.ID, a.Version)
	return nil
}

func (s publishingStore) CreateVersion(ctx context.Context, v *marketplace.AppVersion) error {
	if err := s.DB.CreateVersion(ctx, v); err != nil {
		return err
	}
	s.about.Request(ctx, v.ApplicationID, v.Version)
	return nil
}
