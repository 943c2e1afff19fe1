package httpapi

import (
	"context"
	"log/slog"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// getVisibility answers who may see an application (its managers only).
func getVisibility(s marketplace.VisibilityService, log *slog.Logger) func(context.Context, *idInput) (*body[*marketplace.Visibility], error) {
	return func(ctx context.Context, in *idInput) (*body[*marketplace.Visibility], error) {
		v, err := s.FindVisibility(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Visibility]{v}, nil
	}
}

type setVisibilityInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body marketplace.Visibility
}

// setVisibility replaces who may see an application: public, or private and shared with organizations.
func setVisibility(s marketplace.VisibilityService, log *slog.Logger) func(context.Context, *setVisibilityInput) (*body[*marketplace.Visibility], error) {
	return func(ctx context.Context, in *setVisibilityInput) (*body[*marketplace.Visibility], error) {
		if err := s.SetVisibility(ctx, in.ID, &in.Body); err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Visibility]{&in.Body}, nil
	}
}
