package postgres

import (
	"context"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// findPage returns one page of a list and the list's totals in one round trip. totalsSQL sums up what
// listSQL lists (count(*) and any other aggregates, scanned into totals); listSQL is in its stable order,
// without LIMIT; both take args. The totals are joined to the page, so a page past the end still carries
// them (as one row of NULLs, which is not an item). When listSQL contains pageHere, the page's LIMIT and
// OFFSET go there instead of at its end: in a subquery that picks the page's rows, so that what the outer
// query computes of each row is computed for the page only, not for every row OFFSET skips.
func findPage[T any](ctx context.Context, q querier, totalsSQL, listSQL string, args []any, p marketplace.Page,
	scan func(pgx.Row) (T, error), totals ...any) ([]T, error) {
	limit := "ALL"
	if p.Limit > 0 {
		args = append(args, p.Limit)
		limit = "$" + strconv.Itoa(len(args))
	}
	args = append(args, p.Offset())
	clause := ` LIMIT ` + limit + ` OFFSET $` + strconv.Itoa(len(args))
	if strings.Contains(listSQL, pageHere) {
		listSQL = strings.Replace(listSQL, pageHere, clause, 1)
	} else {
		listSQL += clause
	}
	rows, err := q.Query(ctx, `SELECT totals.*, page.* FROM (`+totalsSQL+`) AS totals
LEFT JOIN LATERAL (`+listSQL+`) AS page ON true`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	items := make([]T, 0, min(p.Limit, 1000))
	for rows.Next() {
		if rows.RawValues()[len(totals)] == nil {
			dest := make([]any, len(rows.FieldDescriptions()))
			copy(dest, totals)
			if err := rows.Scan(dest...); err != nil {
				return nil, err
			}
			continue
		}
		item, err := scan(totalsRow{rows, totals})
		if err != nil {
			return nil, err
		}
		items = append(items, item)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return items, nil
}

// pageHere marks where in listSQL findPage puts the page's LIMIT and OFFSET.
const pageHere = "/*page*/"

// totalsRow hands an item's scanner the columns after the totals, which it scans on the side.
type totalsRow struct {
	pgx.Rows
	totals []any
}

func (r totalsRow) Scan(dest ...any) error {
	return r.Rows.Scan(append(append([]any{}, r.totals...), dest...)...)
}

// conditions builds a WHERE clause of conditions joined by AND, each with its numbered argument.
type conditions struct {
	sql  string
	args []any
}

// add appends `cond $n` with v as $n; cond ends with its operator, as in "status =".
func (c *conditions) add(cond string, v any) {
	c.args = append(c.args, v)
	c.sql += " AND " + cond + " $" + strconv.Itoa(len(c.args))
}

// where is the clause, " WHERE true" when there is no condition.
func (c *conditions) where() string { return " WHERE true" + c.sql }
