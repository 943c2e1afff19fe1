package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// A browsed page of the catalog (marketplace.Browse: a category, a publisher's name, an order) is kept
// as a search is (keptAnswer) and computed, on a miss, from the filter's conditions on the live
// catalog (catalogConditions) in the order asked (catalogOrder), each served by an index of migration
// 00110. The other filters (publisher id, type, words) narrow it as they narrow a search.

// catalogBrowse is the total and the ids of one browsed page, as catalog_search and catalog_page
// answer them: a subquery of one row (total, ids). Without a user it is a page of the public catalog,
// which every caller shares (kept); with one, that user's own page: the public catalog and the private
// applications the user sees (private_apps, migration 00114), never kept.
func catalogBrowse(f marketplace.AppFilter, offset int, arg func(any) string, user *int64) string {
	conds, counted := catalogConditions(f, arg, user)
	where := strings.Join(conds, " AND ")
	total := `SELECT count(*) FROM applications a WHERE ` + where
	if counted {
		// Only the filters catalog_counts counts: its exact total, no count of the catalog.
		total = `SELECT coalesce(sum(n), 0) FROM catalog_counts WHERE publisher_id = ` + arg(f.PublisherID) +
			` AND deployment_type = ` + arg(f.DeploymentType) + ` AND shift = 20`
	}
	return `(SELECT (` + total + `)::bigint AS total,
    ARRAY(SELECT a.id FROM applications a WHERE ` + where + ` ORDER BY ` + catalogOrder(f.Sort) +
		` LIMIT ` + arg(f.Limit) + ` OFFSET ` + arg(offset) + `) AS ids)`
}

// catalogConditions are the conditions on an application row (alias a) that keep it in a filtered
// page of the live catalog (the public one, or with user that user's: catalogBrowse), and whether they
// are only those catalog_counts counts (publisher id, type; it counts public applications).
func catalogConditions(f marketplace.AppFilter, arg func(any) string, user *int64) (conds []string, counted bool) {
	conds = []string{"a.deleted_at IS NULL", "NOT a.private"}
	counted = true
	var seen string // the user's private applications
	if user != nil {
		seen = "a.id IN (SELECT p.id FROM private_apps(" + arg(*user) + ") AS p (id))"
		conds[1], counted = "(NOT a.private OR "+seen+")", false
	}
	if f.PublisherID != 0 {
		conds = append(conds, "a.publisher_id = "+arg(f.PublisherID))
	}
	if f.DeploymentType != "" {
		conds = append(conds, "a.deployment_type = "+arg(f.DeploymentType))
	}
	if f.Category != "" {
		conds, counted = append(conds, "a.categories @> ARRAY["+arg(f.Category)+"::text]"), false
	}
	if f.PublisherName != "" {
		conds, counted = append(conds, "lower(a.publisher_name) = lower("+arg(f.PublisherName)+"::text)"), false
	}
	if f.Query != "" {
		// Every match of the words (catalog_search), then the other conditions.
		words := "a.id = ANY ((SELECT s.ids FROM catalog_search(" + arg(f.Query) + "::text, 0, '', 2147483647, 0) s)::bigint[])"
		if user != nil {
			// The index of words holds public applications only: a private one matches as
			// catalog_private_page matches it, every word (at most 32) the start of one of its own.
			words = "(" + words + " OR (" + seen + ` AND NOT EXISTS (SELECT FROM catalog_words(` + arg(f.Query) + `::text) WITH ORDINALITY AS t (word, n)
      WHERE t.n <= 32 AND NOT EXISTS (SELECT FROM catalog_words(a.name || ' ' || a.description) AS w WHERE starts_with(w, t.word)))))`
		}
		conds, counted = append(conds, words), false
	}
	return conds, counted
}

// catalogOrder is the ORDER BY of a browsed page: ties by id, so that pages never overlap.
func catalogOrder(sort string) string {
	switch sort {
	case marketplace.SortName:
		return "lower(a.name), a.id"
	case marketplace.SortNewest:
		return "a.created_at DESC, a.id DESC"
	case marketplace.SortPrice:
		return "a.hourly_rate, a.id"
	case marketplace.SortPriceDesc:
		return "a.hourly_rate DESC, a.id DESC"
	}
	return "a.id"
}

// FindCategories returns the limit categories most listed in the live catalog with their counts, kept
// exact by a trigger (migration 00110): the most listed first, then by name.
func (db *DB) FindCategories(ctx context.Context, limit int) ([]marketplace.CategoryCount, error) {
	rows, err := db.pool.Query(ctx, `SELECT category, n FROM catalog_categories WHERE n > 0 ORDER BY n DESC, category LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("find the catalog's categories: %w", err)
	}
	defer rows.Close()
	cats := []marketplace.CategoryCount{}
	for rows.Next() {
		var c marketplace.CategoryCount
		if err := rows.Scan(&c.Name, &c.Count); err != nil {
			return nil, fmt.Errorf("find the catalog's categories: %w", err)
		}
		cats = append(cats, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find the catalog's categories: %w", err)
	}
	return cats, nil
}
