package marketplace

import (
	"github.com/shopspring/decimal"
)

// Preview is what an install would do, computed without changing anything: the resources it would
// create and what it would cost.
type Preview struct {
	Version   int               `json:"version" doc:"the application version it would install"`
	Resources []PreviewResource `json:"resources"`
	// Manifest is the rendered chart (or VM definition), as it would be applied.
	Manifest   string `json:"manifest,omitempty"`
	HourlyRate Money  `json:"hourly_rate"`
	// Cost30Days is the charge for 30 days (720 hours) at HourlyRate.
	Cost30Days Money `json:"cost_30_days"`
	// Diff, for an upgrade, is what changes against what runs now.
	Diff *ManifestDiff `json:"diff,omitempty"`
}

// ManifestDiff is what an upgrade would add, remove and change, object by object.
type ManifestDiff struct {
	Added   []PreviewResource `json:"added"`
	Removed []PreviewResource `json:"removed"`
	Changed []PreviewResource `json:"changed"`
}

// PreviewResource is one object an install would create.
type PreviewResource struct {
	APIVersion string `json:"api_version"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
}

// CostFor30Days is rate × 720 hours, exact.
func CostFor30Days(rate Money) Money {
	return Money{Decimal: rate.Decimal.Mul(decimal.NewFromInt(720))}
}
