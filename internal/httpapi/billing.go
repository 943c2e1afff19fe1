package httpapi

import (
	"context"
	"log/slog"

	"github.com/marketplace/marketplace/internal/marketplace"
)

type bill struct {
	UserID       int64                      `json:"user_id"`
	DeploymentID int64                      `json:"deployment_id,omitempty"`
	Records      []*marketplace.UsageRecord `json:"records"`
	TotalAmount  marketplace.Money          `json:"total_amount" doc:"the sum of the amounts of all the records (every page's), exact"`
}

type userBillingInput struct {
	ID int64 `path:"id" minimum:"1"`
	PageQuery
}

// userBilling answers a page of a user's usage records; X-Total-Count and Link are about the records,
// and total_amount is the whole bill.
func userBilling(billing marketplace.BillingService, log *slog.Logger) func(context.Context, *userBillingInput) (*paged[bill], error) {
	return func(ctx context.Context, in *userBillingInput) (*paged[bill], error) {
		records, t, err := billing.FindUsageRecords(ctx, marketplace.UsageFilter{UserID: in.ID, Page: in.page()})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, t.Records, bill{UserID: in.ID, Records: records, TotalAmount: t.Amount}), nil
	}
}

type deploymentBillingInput struct {
	ID           int64 `path:"id" minimum:"1"`
	DeploymentID int64 `path:"deploymentID" minimum:"1"`
	OrderQuery
	PageQuery
}

// deploymentBilling answers a page of one deployment's usage records (all of them while they fit one
// page, as the seed's answer had them); total_amount is the whole bill's.
func deploymentBilling(billing marketplace.BillingService, log *slog.Logger) func(context.Context, *deploymentBillingInput) (*paged[bill], error) {
	return func(ctx context.Context, in *deploymentBillingInput) (*paged[bill], error) {
		records, t, err := billing.FindUsageRecords(ctx, marketplace.UsageFilter{UserID: in.ID, DeploymentID: in.DeploymentID,
			NewestFirst: in.newestFirst(), Page: in.page()})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, t.Records, bill{UserID: in.ID, DeploymentID: in.DeploymentID, Records: records, TotalAmount: t.Amount}), nil
	}
}
