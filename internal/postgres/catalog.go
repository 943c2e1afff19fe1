package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// The catalog is the most read part of the marketplace: every page view of the storefront and every
// client's listing. A page costs one statement, whatever the filter: the caller's token check (when the
// caller is not looked up yet), the exact total and the rows of the page.

// blockSize is how many consecutive ids application_blocks counts together (id >> 8).
const blockSize = 256

// FindApps returns one page of the catalog and the total number of matching applications, in one round
// trip (see catalogStatement).
func (db *DB) FindApps(ctx context.Context, f marketplace.AppFilter) ([]*marketplace.Application, int, error) {
	apps := make([]*marketplace.Application, 0, f.Limit)
	var total int
	err := db.catalogPage(ctx, f, appColumns, func(rows pgx.Rows) error {
		if rows.RawValues()[1] == nil {
			// The LEFT JOIN's one row of NULLs for a page past the end: only the total is real.
			return rows.Scan(append([]any{&total}, make([]any, len(rows.FieldDescriptions())-1)...)...)
		}
		var a marketplace.Application
		if err := rows.Scan(&total, &a.ID, &a.PublisherID, &a.Name, &a.Description, &a.HourlyRate, &a.Deployment,
			&a.Inputs, &a.CreatedAt, &a.UpdatedAt, &a.RetiredAt, &a.Version); err != nil {
			return err
		}
		apps = append(apps, &a)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return apps, total, nil
}

// AppendAppsJSON appends to dst the applications of one page of the catalog as the API shows them
// (each one's JSON object, comma-separated, precomputed by the database: see migration 00050), and
// returns the total number of matching applications, in one round trip. It is FindApps without decoding
// and encoding again what is already JSON.
func (db *DB) AppendAppsJSON(ctx context.Context, dst []byte, f marketplace.AppFilter) ([]byte, int, error) {
	var total int
	first := true
	err := db.catalogPage(ctx, f, "listing", func(rows pgx.Rows) error {
		if err := rows.Scan(&total, nil); err != nil {
			return err
		}
		if listing := rows.RawValues()[1]; listing != nil {
			if !first {
				dst = append(dst, ',')
			}
			dst, first = append(dst, listing...), false
		}
		return nil
	})
	return dst, total, err
}

// catalogPage runs the statement of one page of the catalog and hands each row (the total, then cols)
// to each.
func (db *DB) catalogPage(ctx context.Context, f marketplace.AppFilter, cols string, each func(pgx.Rows) error) error {
	sql, args := catalogStatement(marketplace.CallerFrom(ctx), f, cols)
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("find applications: %w", err)
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		found = true
		if err := each(rows); err != nil {
			return fmt.Errorf("find applications: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find applications: %w", err)
	}
	if !found {
		// Only the token check removes the one row the statement always has.
		return marketplace.Errorf(marketplace.EUNAUTHORIZED, "the bearer token is not valid")
	}
	return nil
}

// catalogStatement is the one statement of a catalog page: its rows are the total followed by cols, one
// row per application of the page, or a single row with NULL cols for a page past the end.
//
// The total of an unsearched catalog comes from application_counts, which a trigger keeps exact, so no
// request counts the catalog; a search counts its matches through the search index. A page deeper than
// one block starts from application_blocks: the first block whose running count passes the offset, then
// at most blockSize-1 ids skipped inside it (in the index alone: the skipped rows are not read), so
// page 400 costs about what page 1 does.
//
// A caller with an unverified token (marketplace.Caller.TokenHash) is checked by the statement itself:
// no row at all when no user holds the token, and its last use recorded at most once a minute, as
// FindUserByTokenHash does.
func catalogStatement(caller marketplace.Caller, f marketplace.AppFilter, cols string) (string, []any) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	// filters is the publisher and type conditions on the columns of table t.
	var publisher, typ string
	if f.PublisherID != 0 {
		publisher = arg(f.PublisherID)
	}
	if f.DeploymentType != "" {
		typ = arg(f.DeploymentType)
	}
	filters := func(t string) string {
		var s string
		if publisher != "" {
			s += " AND " + t + "publisher_id = " + publisher
		}
		if typ != "" {
			s += " AND " + t + "deployment_type = " + typ
		}
		return s
	}
	cond := "true" + filters("")
	offset := (f.Page - 1) * f.Limit
	var ctes []string
	var total, page string
	if f.Query != "" {
		// The matches are found once, in the index of application_words alone, for both the count and
		// the page: an application matches when every word typed starts one of its words.
		// Each word typed is a bit (at most 32 words count); an application matches when its words
		// set every bit. A bitwise OR aggregates in one hash table, where count(DISTINCT) would sort
		// each application's matches apart.
		ctes = append(ctes, `typed AS (
  SELECT word COLLATE "C" AS word, 1::bigint << (n - 1)::int AS bit
  FROM catalog_words(`+arg(f.Query)+`) WITH ORDINALITY AS t(word, n) WHERE n <= 32
)`, `matches AS MATERIALIZED (
  SELECT w.id FROM typed JOIN application_words w ON w.word >= typed.word AND w.word < typed.word || chr(1114111)`+filters("w.")+`
  GROUP BY w.id HAVING bit_or(typed.bit) = (SELECT sum(bit) FROM typed)
)`)
		total = `SELECT count(*) AS n FROM matches`
		page = `SELECT ` + cols + ` FROM applications WHERE id IN (
  SELECT id FROM matches ORDER BY id LIMIT ` + arg(f.Limit) + ` OFFSET ` + arg(offset) + `
) ORDER BY id`
	} else {
		total = `SELECT coalesce(sum(n), 0)::bigint AS n FROM application_counts WHERE ` + cond
		limit, off := arg(f.Limit), arg(offset)
		page = `SELECT ` + cols + ` FROM applications WHERE deleted_at IS NULL AND ` + cond + `
  ORDER BY id LIMIT ` + limit + ` OFFSET ` + off
		if offset >= blockSize {
			page = `WITH blocks AS (
  SELECT block, sum(n) AS n, sum(sum(n)) OVER (ORDER BY block) AS upto
  FROM application_blocks WHERE ` + cond + ` GROUP BY block
), first AS (SELECT block, ` + off + ` - (upto - n) AS skip FROM blocks WHERE upto > ` + off + ` ORDER BY block LIMIT 1)
SELECT ` + cols + ` FROM applications
WHERE deleted_at IS NULL AND ` + cond + ` AND id >= (
  SELECT id FROM applications WHERE deleted_at IS NULL AND ` + cond + ` AND id >= (SELECT block << 8 FROM first)
  ORDER BY id OFFSET (SELECT skip FROM first) LIMIT 1)
ORDER BY id LIMIT ` + limit
		}
	}
	join := ""
	if len(caller.TokenHash) > 0 && !caller.Operator && caller.UserID == 0 {
		ctes = append([]string{`caller AS (
  SELECT t.id, t.last_used_at FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ` + arg(caller.TokenHash) + `
)`, `used AS (
  UPDATE tokens SET last_used_at = now() FROM caller
  WHERE tokens.id = caller.id AND (caller.last_used_at IS NULL OR caller.last_used_at < now() - interval '1 minute')
)`}, ctes...)
		join = "caller CROSS JOIN "
	}
	var sql strings.Builder
	if len(ctes) > 0 {
		sql.WriteString("WITH " + strings.Join(ctes, ", ") + "\n")
	}
	sql.WriteString(`SELECT total.n, page.* FROM ` + join + `(` + total + `) AS total
LEFT JOIN LATERAL (` + page + `) AS page ON true`)
	return sql.String(), args
}
