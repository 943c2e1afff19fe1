package main

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// billingTerms reads BILLING_CURRENCY (an ISO 4217 code) and MARKETPLACE_FEE_PERCENT (0 to 100).
func billingTerms(cfg Config) (marketplace.BillingTerms, error) {
	fee, err := decimal.NewFromString(cfg.FeePercent)
	if err != nil || fee.IsNegative() || fee.GreaterThan(decimal.NewFromInt(100)) || !fee.Equal(fee.Round(4)) {
		return marketplace.BillingTerms{}, fmt.Errorf("configuration: MARKETPLACE_FEE_PERCENT=%q must be a percentage from 0 to 100 with at most 4 decimals", cfg.FeePercent)
	}
	if !isCurrencyCode(cfg.BillingCurrency) {
		return marketplace.BillingTerms{}, fmt.Errorf("configuration: BILLING_CURRENCY=%q must be a three-letter ISO 4217 code such as USD", cfg.BillingCurrency)
	}
	return marketplace.BillingTerms{Currency: cfg.BillingCurrency, FeePercent: fee}, nil
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, c := range s {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
