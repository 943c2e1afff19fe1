package marketplace

import (
	"encoding/csv"
	"io"
	"regexp"
)

// numberRE matches a cell that a spreadsheet reads as a plain number: ids, seconds and decimal amounts,
// negative adjustments included.
var numberRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// SafeCell is a CSV cell that a spreadsheet shows as text instead of evaluating it: a cell that starts
// with = + - @, a tab or a carriage return (a publisher's application named =HYPERLINK(…), opened by
// the operator in a payout) gets a leading apostrophe, as OWASP's CSV injection advice says. Numbers
// are left as they are, so amounts stay numbers.
func SafeCell(s string) string {
	if s == "" || numberRE.MatchString(s) {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// WriteCSV writes rows as a CSV document with every cell made safe. Every CSV the marketplace serves
// (the API's ledger documents and the storefront's) is written by it.
func WriteCSV(w io.Writer, rows [][]string) error {
	cw := csv.NewWriter(w)
	for _, row := range rows {
		safe := make([]string, len(row))
		for i, cell := range row {
			safe[i] = SafeCell(cell)
		}
		if err := cw.Write(safe); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
