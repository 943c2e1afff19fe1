package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// The catalog is the most read part of the marketplace: every page view of the storefront and every
// client's listing. A page costs one statement, whatever the filter: the caller's check (a token or a
// storefront session nobody has looked up yet), the exact total and the rows of the page.

// blockSize is how many consecutive ids the finest span of catalog_counts counts together (id >> 8): a
// page that starts within the first block reads the catalog's index from its start.
const blockSize = 256

// FindApps returns one page of the catalog and the total number of matching applications, in one round
// trip (see catalogStatement).
func (db *DB) FindApps(ctx context.Context, f marketplace.AppFilter) ([]*marketplace.Application, int, error) {
	apps, total, _, _, err := db.findApps(ctx, newCatalogCheck(ctx), f, nil)
	return apps, total, err
}

// FindAppsInSession is FindSession and FindApps in one round trip: the live session whose id hashes
// to idHash and one page of the catalog as cards (cardColumns) with the catalog's generation, or
// EUNAUTHORIZED (and no page) when the session has ended. When the catalog is still at generation
// known, the statement reads no application (Unchanged): the caller has the page.
func (db *DB) FindAppsInSession(ctx context.Context, idHash []byte, f marketplace.AppFilter, known int64) (*marketplace.CatalogCards, error) {
	c := &marketplace.CatalogCards{Session: &marketplace.Session{}}
	var err error
	c.Apps, c.Total, c.Generation, c.Personal, err = db.findApps(ctx, catalogCheck{sessionHash: idHash, knownGeneration: known}, f, c.Session)
	if err != nil {
		if marketplace.ErrorCode(err) == marketplace.EUNAUTHORIZED {
			err = marketplace.Errorf(marketplace.EUNAUTHORIZED, "the session has ended: sign in again")
		}
		return nil, err
	}
	if c.Unchanged = known != 0 && c.Generation == known && !c.Personal; c.Unchanged {
		c.Apps, c.Total = nil, 0
	}
	return c, nil
}

// cardColumns are what the storefront's catalog shows of each application (FindAppsInSession): no
// deployment details or inputs to decode from jsonb for a page of cards.
const cardColumns = `id, publisher_id, name, description, hourly_rate, deployment_type, publisher_name, categories, icon_url, private`

// findApps reads a page of the catalog as structs, whole (appColumns) or, with a session to check, as
// cards (cardColumns); sess receives the session found, and generation the catalog's generation (read
// with a session only); personal tells a page with the caller's private applications (catalogCheck.personal).
func (db *DB) findApps(ctx context.Context, check catalogCheck, f marketplace.AppFilter, sess *marketplace.Session) (apps []*marketplace.Application, total int, generation int64, personal bool, err error) {
	apps = make([]*marketplace.Application, 0, f.Limit)
	var userID *int64
	cols := appColumns + ", private"
	if sess != nil {
		cols = cardColumns
	}
	personal, err = db.catalogPage(ctx, check, f, cols, func(rows pgx.Rows, first int) error {
		dest := make([]any, 2, len(rows.FieldDescriptions()))
		dest[0] = &total
		if sess != nil {
			dest = append(dest, &userID, &sess.OperatorTokenHash, &sess.CSRFToken, &sess.ExpiresAt, &generation)
		}
		if rows.RawValues()[first] == nil {
			// The LEFT JOIN's one row of NULLs for a page past the end, or for a page the caller has
			// (check.knownGeneration): only the total (and the session) is real.
			return rows.Scan(append(dest, make([]any, len(rows.FieldDescriptions())-first)...)...)
		}
		var a marketplace.Application
		if sess != nil {
			dest = append(dest, &a.ID, &a.PublisherID, &a.Name, &a.Description, &a.HourlyRate, &a.Deployment.Type,
				&a.PublisherName, &a.Categories, &a.IconURL, &a.Private)
		} else {
			dest = append(append(dest, appFields(&a)...), &a.Private)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		apps = append(apps, &a)
		return nil
	})
	if err != nil {
		return nil, 0, 0, false, err
	}
	if sess != nil && userID != nil {
		sess.UserID = *userID
	}
	return apps, total, generation, personal, nil
}

// AppendAppsJSON appends to dst the applications of one page of the catalog as the API shows them
// (each one's JSON object, comma-separated, precomputed by the database: see migration 00050), and
// returns the total number of matching applications, in one round trip. It is FindApps without decoding
// and encoding again what is already JSON.
func (db *DB) AppendAppsJSON(ctx context.Context, dst []byte, f marketplace.AppFilter) ([]byte, int, error) {
	var total int
	first := true
	_, err := db.catalogPage(ctx, newCatalogCheck(ctx), f, "listing", func(rows pgx.Rows, _ int) error {
		if err := rows.Scan(&total, nil, nil); err != nil {
			return err
		}
		if listing := rows.RawValues()[2]; listing != nil {
			if !first {
				dst = append(dst, ',')
			}
			dst, first = append(dst, listing...), false
		}
		return nil
	})
	return dst, total, err
}

// tokenToCheck is the token hash a catalog statement must check for caller: the one nobody has looked
// up yet (marketplace.Caller.TokenHash), or none.
func tokenToCheck(caller marketplace.Caller) []byte {
	if len(caller.TokenHash) > 0 && !caller.Operator && caller.UserID == 0 {
		return caller.TokenHash
	}
	return nil
}

// catalogCheck is what a catalog statement checks before it answers: a bearer token's hash, or a
// storefront session id's hash, or nothing (a caller already known: scope, as scopeUser). With a
// session, the statement also answers the catalog's generation, and reads no application when it is
// knownGeneration (the storefront has that page already).
//
// The shared catalog is the public one. A statement also tells whether the caller sees private
// applications (the user it found, or scope); then the page is read again for that user (personal):
// the public answer merged with its private applications (catalog_private_page, migration 00114).
type catalogCheck struct {
	tokenHash, sessionHash []byte
	knownGeneration        int64
	scope                  int64
	personal               *int64
}

// newCatalogCheck is the check of an API caller: its token when nobody has looked it up yet, or else
// the caller's scope.
func newCatalogCheck(ctx context.Context) catalogCheck {
	return catalogCheck{tokenHash: tokenToCheck(marketplace.CallerFrom(ctx)), scope: scopeUser(ctx)}
}

// errPersonal is a statement's answer when the caller sees private applications: the page must be read
// for user.
type errPersonal struct{ user int64 }

func (e errPersonal) Error() string { return fmt.Sprintf("user %d sees private applications", e.user) }

// catalogPage reads one page of the catalog and hands each row to each, with the index of the first of
// cols in it. A search or a deep page is first looked up among the kept answers (one statement); when
// it is not kept for the catalog this statement sees, one reader computes it (computeKept) while the
// other readers of the same page wait for it and look it up again.
//
// A caller who sees private applications (errPersonal) has its page read again, for it alone: personal.
func (db *DB) catalogPage(ctx context.Context, check catalogCheck, f marketplace.AppFilter, cols string, each func(rows pgx.Rows, first int) error) (personal bool, err error) {
	err = db.publicPage(ctx, check, f, cols, each)
	var p errPersonal
	if !errors.As(err, &p) {
		return false, err
	}
	check.personal, check.knownGeneration = &p.user, 0
	sql, args := catalogStatement(check, f, cols, false)
	return true, runCatalog(ctx, db.pool, check, sql, args, each)
}

// publicPage reads one page of the public catalog, shared by every caller (see catalogPage).
func (db *DB) publicPage(ctx context.Context, check catalogCheck, f marketplace.AppFilter, cols string, each func(rows pgx.Rows, first int) error) error {
	if !isKept(f) {
		sql, args := catalogStatement(check, f, cols, false)
		return runCatalog(ctx, db.pool, check, sql, args, each)
	}
	for {
		sql, args := catalogStatement(check, f, cols, false)
		err := runCatalog(ctx, db.pool, check, sql, args, each)
		if !errors.Is(err, errNotKept) {
			return err
		}
		if err := db.computeKept(ctx, check, f, cols, each); !errors.Is(err, errNotKept) {
			return err
		}
	}
}

// runCatalog runs the statement of one page of the catalog on q and hands each row to each; a
// statement that only looks up a kept answer returns errNotKept when there is none.
func runCatalog(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, check catalogCheck, sql string, args []any, each func(rows pgx.Rows, first int) error) error {
	first := 2 // the total and the user who sees private applications
	if check.sessionHash != nil {
		first += len(sessionColumns) + 1 // and the generation
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("find applications: %w", err)
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		if !found && rows.RawValues()[1] != nil {
			// The caller sees private applications: its page is its own.
			v, err := rows.Values()
			if err != nil {
				return fmt.Errorf("find applications: %w", err)
			}
			user, _ := v[1].(int64)
			return errPersonal{user: user}
		}
		if !found && rows.RawValues()[0] == nil {
			// A lookup's one row without a total: the caller passed its check, the answer is not kept.
			return errNotKept
		}
		found = true
		if err := each(rows, first); err != nil {
			return fmt.Errorf("find applications: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find applications: %w", err)
	}
	if !found {
		// Only the caller's check removes the one row the statement always has.
		return marketplace.Errorf(marketplace.EUNAUTHORIZED, "the bearer token is not valid")
	}
	return nil
}

// sessionColumns are the session's columns a catalog statement that checks a session returns after the
// total, in the order findApps scans them; the catalog's generation follows them.
var sessionColumns = []string{"user_id", "operator_token_hash", "csrf_token", "expires_at"}

// catalogStatement is the one statement of a catalog page: its rows are the total (then the session's
// columns and the catalog's generation when it checks one) followed by cols, one row per application of
// the page, or a single row with NULL cols for a page past the end; no row at all when the check fails.
//
// The total of an unsearched catalog comes from catalog_counts, which a trigger keeps exact, so no
// request counts the catalog. A search, a filtered page and a page deeper than one block (isKept) read
// their total and page from catalog_searches when they were computed from the same catalog, and compute and keep them
// otherwise (keptAnswer): a page by walking down catalog_counts' spans, a search through the index of
// words.
//
// A token nobody has looked up yet (marketplace.Caller.TokenHash) is checked by the statement itself:
// no row at all when no user holds the token, and its last use recorded at most once a minute, as
// FindUserByTokenHash does. A session likewise: no row when it has ended (expired, signed out, or its
// token revoked, which deletes it).
//
// For a kept page (isKept), the statement only looks the answer up unless compute is set: its
// one row then has a NULL total when the answer is not kept (errNotKept).
//
// A statement that checks a session answers the catalog's generation after the session's columns, and
// reads no application when it is check.knownGeneration: a storefront that kept the page rendered at
// that generation needs only the session (one row, the page's columns NULL; a kept page not kept any
// more counts as kept then, total 0). The generation is read in the statement's snapshot, as the page is.
func catalogStatement(check catalogCheck, f marketplace.AppFilter, cols string, compute bool) (string, []any) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var ctes []string
	join, callerCols, callerExists := "", "", ""
	var generation catalogGeneration
	switch {
	case check.sessionHash != nil:
		ctes = append(ctes, `caller AS (
  SELECT `+strings.Join(sessionColumns, ", ")+` FROM web_sessions WHERE id_hash = `+arg(check.sessionHash)+` AND expires_at > now()
)`)
		join, callerCols, callerExists = "caller CROSS JOIN ", "caller.*, total.generation, ", " AND EXISTS (SELECT FROM caller)"
		generation = catalogGeneration{known: arg(check.knownGeneration)}
	case check.tokenHash != nil:
		ctes = append(ctes, `caller AS (
  SELECT t.id, t.last_used_at, t.user_id FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = `+arg(check.tokenHash)+`
)`, `used AS (
  UPDATE tokens SET last_used_at = now() FROM caller
  WHERE tokens.id = caller.id AND (caller.last_used_at IS NULL OR caller.last_used_at < now() - interval '1 minute')
)`)
		join, callerExists = "caller CROSS JOIN ", " AND EXISTS (SELECT FROM caller)"
	}
	offset := (f.Page - 1) * f.Limit
	var total, page string
	if check.personal != nil {
		total, page = personalAnswer(*check.personal, f, offset, cols, arg, generation)
	} else if !isKept(f) {
		// The counts of the whole catalog (publisher 0 and type '' stand for any; a filter is kept).
		total = `SELECT coalesce(sum(n), 0)::bigint AS n` + generation.column() + ` FROM catalog_counts
  WHERE publisher_id = 0 AND deployment_type = '' AND shift = 20`
		// LIMIT and OFFSET are written into the statement (two validated ints; this branch has at most
		// blockSize offsets): as parameters, PostgreSQL's generic plan cannot know the LIMIT, estimates
		// more than a custom plan and so plans every execution anew (~0.1 ms of planning for ~0.02 ms
		// of execution; page 1 ran at half the throughput of a kept search). As constants the prepared
		// statement keeps its generic plan after five executions.
		page = `SELECT ` + cols + ` FROM applications WHERE deleted_at IS NULL AND NOT private` + generation.unknown() + `
  ORDER BY id LIMIT ` + strconv.Itoa(f.Limit) + ` OFFSET ` + strconv.Itoa(offset)
	} else {
		var kept []string
		kept, total, page = keptAnswer(f, offset, cols, arg, callerExists, compute, generation)
		ctes = append(ctes, kept...)
	}
	var sql strings.Builder
	if len(ctes) > 0 {
		sql.WriteString("WITH " + strings.Join(ctes, ", ") + "\n")
	}
	sql.WriteString(`SELECT total.n, ` + privateUser(check, arg) + ` AS private_user, ` + callerCols + `page.* FROM ` + join + `(` + total + `) AS total
LEFT JOIN LATERAL (` + page + `) AS page ON true`)
	return sql.String(), args
}

// privateUser is the column of a public page that names the caller when it sees private applications
// (NULL otherwise, and in a personal page): the user the statement checked, or the scope (the operator,
// 0, sees every one; nobody, -1, none).
func privateUser(check catalogCheck, arg func(any) string) string {
	switch {
	case check.personal != nil:
		return `NULL::bigint`
	case check.sessionHash != nil:
		return `(SELECT u.id FROM caller, LATERAL (SELECT coalesce(caller.user_id, 0) AS id) u WHERE EXISTS (SELECT FROM private_apps(u.id)))`
	case check.tokenHash != nil:
		return `(SELECT caller.user_id FROM caller WHERE EXISTS (SELECT FROM private_apps(caller.user_id)))`
	case check.scope >= 0:
		return `(SELECT u.id FROM (SELECT ` + arg(check.scope) + `::bigint AS id) u WHERE EXISTS (SELECT FROM private_apps(u.id)))`
	}
	return `NULL::bigint`
}

// personalAnswer is the total and the page of a caller who sees private applications: the public
// catalog's answer merged with them by catalog_private_page, computed for this caller, never kept.
func personalAnswer(user int64, f marketplace.AppFilter, offset int, cols string, arg func(any) string, generation catalogGeneration) (total, page string) {
	if !f.Browse.IsZero() {
		// A browsed page in its own order (catalogBrowse), computed for this caller from the live catalog.
		total = `SELECT b.total AS n, b.ids` + generation.column() + ` FROM ` + catalogBrowse(f, offset, arg, &user) + ` AS b`
	} else {
		total = `SELECT p.total AS n, p.ids` + generation.column() + ` FROM catalog_private_page(` + arg(user) + `, ` + arg(f.Query) + `, ` +
			arg(f.PublisherID) + `, ` + arg(f.DeploymentType) + `, ` + arg(f.Limit) + `, ` + arg(offset) + `) p`
	}
	return total, pageOfIDs(cols, generation)
}

// pageOfIDs reads the applications of a page whose ids the total's subquery answers (total.ids), in
// their order there: by id, or a browsed page's (catalogBrowse).
func pageOfIDs(cols string, generation catalogGeneration) string {
	return `SELECT ` + cols + ` FROM applications WHERE id = ANY (total.ids) AND deleted_at IS NULL` + generation.unknown() +
		` ORDER BY array_position(total.ids, id)`
}

// isKept tells a search, a filtered page or a page deeper than the first block, whose answers are kept
// (catalog_searches), from a first page of the whole catalog, read from its index at once.
//
// A filtered page is kept because PostgreSQL plans its direct statement from statistics it may not
// have: never analyzed (nothing vacuums, or not yet), a filter is guessed to keep 0.5 % of the rows,
// and at 100,000 applications `deploymentType=vm` was planned as a bitmap scan of its 50,000 rows and a
// sort, 390 ms, instead of the first 20 in the index (issue #23). catalog_page walks the index in order
// whatever the statistics (migration 00071).
//
// A browsed page (a category, a publisher's name, an order: marketplace.Browse) is kept likewise, and
// computed by catalogBrowse.
func isKept(f marketplace.AppFilter) bool {
	return f.Query != "" || f.PublisherID != 0 || f.DeploymentType != "" || !f.Browse.IsZero() || (f.Page-1)*f.Limit >= blockSize
}

// searchSlots is how many answers catalog_searches keeps at most (migration 00070).
const searchSlots = 4096

// keptKey is what a search or a deep page is kept under: the words, the filters and the page.
func keptKey(f marketplace.AppFilter) string {
	key := fmt.Sprintf("%d %s %d %d %s", f.PublisherID, f.DeploymentType, f.Limit, (f.Page-1)*f.Limit, f.Query)
	if !f.Browse.IsZero() {
		key = fmt.Sprintf("%q %q %s ", f.Category, f.PublisherName, f.Sort) + key
	}
	return key
}

// keptHash is keptKey's hash: its slot in catalog_searches and its advisory lock (computeKept).
func keptHash(key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32()
}

// keptAnswer returns the WITH clauses, the total and the page of a search (f.Query) or of a deep page.
//
// Their total, the ids of their page and its listings are kept in catalog_searches with the catalog's
// generation, keyed by the words, the filters and the page: when the generation this statement reads is
// the one they were kept with, they are the answer (catalog_generation changes with every change a
// search or a count could see, in the same transaction, so the same generation is the same catalog).
// Otherwise, without compute, the total is NULL (the answer is not kept); with compute, catalog_search
// (or catalog_page, without words) computes them from this statement's snapshot and they are kept with
// the generation of that snapshot. Nothing is computed or kept for a caller whose check failed.
//
// The generation is read as a scalar, never joined: catalog_generation is never analyzed when nothing
// vacuums (PostgreSQL then guesses 2,260 rows for it), and a join multiplied that guess into an
// estimate past jit_above_cost, which JIT-compiled every execution (issue #23, migration 00071).
func keptAnswer(f marketplace.AppFilter, offset int, cols string, arg func(any) string, callerExists string, compute bool,
	generation catalogGeneration) (ctes []string, total, page string) {
	key := keptKey(f)
	slot, search := arg(int32(keptHash(key)%searchSlots)), arg(key)
	ctes = []string{`cached AS (
  SELECT s.total, s.ids, s.listings FROM catalog_searches s
  WHERE s.slot = ` + slot + ` AND s.search = ` + search + ` AND s.generation = (SELECT n FROM catalog_generation)
)`}
	if compute {
		var computing string
		if !f.Browse.IsZero() {
			computing = catalogBrowse(f, offset, arg, nil)
		} else if f.Query != "" {
			computing = `catalog_search(` + arg(f.Query) + `, ` + arg(f.PublisherID) + `, ` + arg(f.DeploymentType) + `, ` +
				arg(f.Limit) + `, ` + arg(offset) + `)`
		} else {
			computing = `catalog_page(` + arg(f.PublisherID) + `, ` + arg(f.DeploymentType) + `, ` + arg(f.Limit) + `, ` + arg(offset) + `)`
		}
		ctes = append(ctes, `computed AS (
  SELECT c.total, c.ids, l.listings,
    catalog_search_keep(`+slot+`, `+search+`, (SELECT n FROM catalog_generation), c.total, c.ids, l.listings) AS kept
  FROM `+computing+` c,
    LATERAL (SELECT string_agg(a.listing, ',' ORDER BY array_position(c.ids, a.id)) AS listings FROM applications a
             WHERE a.id = ANY (c.ids) AND a.deleted_at IS NULL) l
  WHERE NOT EXISTS (SELECT FROM cached)`+callerExists+`
)`, `answer AS (SELECT total, ids, listings FROM cached UNION ALL SELECT total, ids, listings FROM computed)`)
		total = `SELECT total AS n, ids, listings` + generation.column() + ` FROM answer`
	} else if generation.known != "" {
		// As below; and a page the storefront has (its generation is the catalog's) is not looked for
		// again: a total that is not NULL tells runCatalog it is answered.
		total = `SELECT coalesce(cached.total, CASE WHEN g.generation = ` + generation.known + ` THEN 0 END) AS n,
    cached.ids, cached.listings, g.generation
  FROM (SELECT (SELECT n FROM catalog_generation) AS generation) AS g LEFT JOIN cached ON true`
	} else {
		// One row whether the answer is kept or not: no row at all is the caller's check failing.
		total = `SELECT cached.total AS n, cached.ids, cached.listings FROM (SELECT) AS one LEFT JOIN cached ON true`
	}
	if cols == "listing" {
		// The JSON page is kept whole: one value, as AppendAppsJSON writes it, instead of its rows read
		// again by id.
		page = `SELECT total.listings AS listing WHERE total.listings IS NOT NULL`
	} else {
		page = pageOfIDs(cols, generation)
	}
	return ctes, total, page
}

// catalogGeneration is what a statement that checks a session adds to read the catalog's generation
// and to skip the page at the generation the storefront knows (the parameter known); nothing for
// another statement (known empty).
type catalogGeneration struct{ known string }

// column is the generation as a column of the total's subquery, read as a scalar (keptAnswer says why).
func (g catalogGeneration) column() string {
	if g.known == "" {
		return ""
	}
	return `, (SELECT n FROM catalog_generation) AS generation`
}

// unknown is the page's condition that the catalog is not at the known generation: a condition on the
// outer row alone, which PostgreSQL checks once before it reads anything (a one-time filter).
func (g catalogGeneration) unknown() string {
	if g.known == "" {
		return ""
	}
	return ` AND total.generation <> ` + g.known
}
