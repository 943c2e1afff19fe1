package marketplace

import (
	"bytes"
	"fmt"

	"github.com/shopspring/decimal"
)

// MaxRateDecimals is how many decimal places an hourly rate and an amount carry.
const MaxRateDecimals = 6

// Money is an exact decimal amount of currency. It is stored as PostgreSQL numeric and written to JSON as
// a number with its exact digits (1.1 stays 1.1); no float ever holds it.
type Money struct{ decimal.Decimal }

// MustMoney parses s or panics; for constants in tests and code.
func MustMoney(s string) Money { return Money{decimal.RequireFromString(s)} }

// MarshalJSON writes the exact decimal as a JSON number.
func (m Money) MarshalJSON() ([]byte, error) { return []byte(m.Decimal.String()), nil }

// UnmarshalJSON reads a JSON number (or a string holding one) without passing through a float.
func (m *Money) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	d, err := decimal.NewFromString(s)
	if err != nil {
		return fmt.Errorf("%q is not a decimal number", s)
	}
	m.Decimal = d
	return nil
}

// ValidateRate checks an hourly rate: not negative and at most MaxRateDecimals decimal places.
func ValidateRate(m Money) error {
	if m.IsNegative() {
		return Errorf(EINVALID, "hourly_rate must not be negative, got %s", m)
	}
	if -m.Exponent() > MaxRateDecimals && !m.Equal(m.Round(MaxRateDecimals)) {
		return Errorf(EINVALID, "hourly_rate has more than %d decimal places: %s", MaxRateDecimals, m)
	}
	if m.GreaterThanOrEqual(decimal.New(1, 12)) {
		return Errorf(EINVALID, "hourly_rate must be below 1000000000000, got %s", m)
	}
	return nil
}
