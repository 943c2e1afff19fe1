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

func newBill(userID, deploymentID int64, records []*marketplace.UsageRecord) *body[bill] {
	b := bill{UserID: userID, DeploymentID: deploymentID, Records: records}
	for _, r := range records {
		b.TotalAmount.Decimal = b.TotalAmount.Add(r.Amount.Decimal)
	}
	return &body[bill]{b}
}

type userBillingInput struct {
	ID int64 `path:"id" minimum:"1"`
	PageQuery
}

// userBilling answers a page of a user's usage records; X-Total-Count and Link are about the records,
// and total_amount is the whole bill.
func userBilling(billing marketplace.BillingService, log *slog.Logger) func(context.Context, *userBillingInput) (*paged[bill], error) {
	return func(ctx context.Context, in *userBillingInput) (*paged[bill], error) {
		records, total, sum, err := billing.FindUsageRecordsPage(ctx, in.ID, in.page())
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, total, bill{UserID: in.ID, Records: records, TotalAmount: sum}), nil
	}
}

type deploymentBillingInput struct {
	ID           int64 `path:"id" minimum:"1"`
	DeploymentID int64 `path:"deploymentID" minimum:"1"`
}

func deploymentBilling(billing marketplace.BillingService, log *slog.Logger) func(context.Context, *deploymentBillingInput) (*body[bill], error) {
	return func(ctx context.Context, in *deploymentBillingInput) (*body[bill], error) {
		records, err := billing.FindUsageRecords(ctx, in.ID, in.DeploymentID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newBill(in.ID, in.DeploymentID, records), nil
	}
}
