package marketplace

import (
	"context"
	"time"
)

// UsageRecord meters one deployment: it opens when the deployment becomes installed with a snapshot of
// the hourly rate and closes when the uninstall is requested. Amount is rate × whole seconds / 3600,
// rounded to MaxRateDecimals, so it can be recomputed from the record alone.
type UsageRecord struct {
	ID            int64      `json:"id"`
	DeploymentID  int64      `json:"deployment_id"`
	UserID        int64      `json:"user_id"`
	ApplicationID int64      `json:"application_id"`
	HourlyRate    Money      `json:"hourly_rate"`
	StartedAt     time.Time  `json:"started_at"`
	EndedAt       *time.Time `json:"ended_at"`
	Amount        Money      `json:"amount"`
	// BilledSeconds is floor(end − start), the end being now while the record is open; AccruedAmount is
	// the amount of those seconds by the billing rule. MeteredAmount is what the last metering run stored,
	// as of MeteredAt.
	BilledSeconds int64     `json:"billed_seconds"`
	AccruedAmount Money     `json:"accrued_amount"`
	MeteredAmount Money     `json:"metered_amount"`
	MeteredAt     time.Time `json:"metered_at"`
	// OpenedEventID and ClosedEventID are the audit events (GET /api/audit) that opened and closed it.
	OpenedEventID *int64 `json:"opened_event_id,omitempty"`
	ClosedEventID *int64 `json:"closed_event_id,omitempty"`
}

// BillingService reads usage records and meters open ones.
type BillingService interface {
	// FindUsageRecords lists a page of the records f selects, with the amount accrued up to now for
	// records still open, and the totals of all of them (not only the page's), in one round trip.
	FindUsageRecords(ctx context.Context, f UsageFilter) ([]*UsageRecord, UsageTotals, error)
	// MeterOpenUsage stores the amount of every open record as of asOf in one statement and returns how
	// many it updated; runs for the same asOf store the same numbers.
	MeterOpenUsage(ctx context.Context, asOf time.Time) (int64, error)
}

// UsageFilter selects a user's usage records, of one deployment when DeploymentID is not 0, in id order
// (the newest first with NewestFirst), one page of them.
type UsageFilter struct {
	UserID       int64
	DeploymentID int64
	NewestFirst  bool
	Page         Page
}

// UsageTotals sums up every record a UsageFilter selects, whatever page was read.
type UsageTotals struct {
	Records int `json:"records" doc:"how many usage records there are in all"`
	// Amount is the sum of the records' amounts as the seed shows them (the accrual while open, the
	// stored final amount once closed); Accrued the sum of their accrued amounts by the billing rule.
	Amount  Money `json:"amount"`
	Accrued Money `json:"accrued_amount"`
}
