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
	TotalAmount  marketplace.Money          `json:"total_amount" doc:"the sum of the records' amounts, exact"`
}

func newBill(userID, deploymentID int64, records []*marketplace.UsageRecord) *body[bill] {
	b := bill{UserID: userID, DeploymentID: deploymentID, Records: records}
	for _, r := range records {
		b.TotalAmount.Decimal = b.TotalAmount.Add(r.Amount.Decimal)
	}
	return &body[bill]{b}
}

func userBilling(billing marketplace.BillingService, log *slog.Logger) func(context.Context, *idInput) (*body[bill], error) {
	return func(ctx context.Context, in *idInput) (*body[bill], error) {
		records, err := billing.FindUsageRecords(ctx, in.ID, 0)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newBill(in.ID, 0, records), nil
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
