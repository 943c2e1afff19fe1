package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// funcs are the helpers templates may call. Money is formatted from its exact decimal, never a float.
var funcs = template.FuncMap{
	"money":   formatMoney,
	"per30":   func(m marketplace.Money) string { return formatMoney(marketplace.CostFor30Days(m)) },
	"decimal": func(d decimal.Decimal) string { return d.String() },
	"when":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"whenp": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"add":     func(a, b int) int { return a + b },
	"live":    isLive,
	"short":   shorten,
	"jsonish": func(v any) string { return fmt.Sprint(v) },
	"lines":   func(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") },
}

// formatMoney writes an amount with at least two decimals and no more than it has.
func formatMoney(m marketplace.Money) string {
	s := m.String()
	if i := strings.IndexByte(s, '.'); i < 0 || len(s)-i-1 < 2 {
		return m.StringFixed(2)
	}
	return s
}

// isLive says whether a deployment's status still changes by itself, so its page keeps polling.
func isLive(status marketplace.Status) bool {
	switch status {
	case marketplace.StatusFailed, marketplace.StatusUninstalled:
		return false
	}
	return true
}

// shorten cuts a text to n runes at a word boundary.
func shorten(n int, s string) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	cut := string(r[:n])
	if i := strings.LastIndexByte(cut, ' '); i > n/2 {
		cut = cut[:i]
	}
	return cut + "…"
}
