package marketplace

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Browse is how someone browsing the catalog narrows and orders it, besides searching (AppFilter.Query):
// by a category (a keyword of the application's package), by its publisher's name, and in an order.
// The zero value is the whole catalog in id order, as the seed API lists it.
type Browse struct {
	// Category keeps the applications that list it among their categories (lower case).
	Category string
	// PublisherName keeps the applications of the publishers of this name (any case).
	PublisherName string
	// Sort is one of CatalogSorts; empty is by id, oldest first.
	Sort string
}

// The catalog's orders.
const (
	SortName      = "name"   // by name, A to Z (any case)
	SortNewest    = "newest" // the latest published first
	SortPrice     = "price"  // the cheapest first
	SortPriceDesc = "-price" // the dearest first
)

// CatalogSorts are the orders a catalog page may ask for.
var CatalogSorts = []string{SortName, SortNewest, SortPrice, SortPriceDesc}

// MaxBrowseText bounds a category or a publisher's name asked for.
const MaxBrowseText = 100

// IsZero reports the whole catalog in id order.
func (b Browse) IsZero() bool { return b == Browse{} }

// CleanBrowse returns b with its texts trimmed (the category lower case), or EINVALID saying which
// field is wrong and why.
func CleanBrowse(b Browse) (Browse, error) {
	var err error
	if b.Category, err = cleanBrowseText("category", b.Category); err != nil {
		return Browse{}, err
	}
	b.Category = strings.ToLower(b.Category)
	if b.PublisherName, err = cleanBrowseText("publisherName", b.PublisherName); err != nil {
		return Browse{}, err
	}
	switch b.Sort {
	case "", SortName, SortNewest, SortPrice, SortPriceDesc:
	default:
		return Browse{}, Errorf(EINVALID, "sort must be one of %s, got %q", strings.Join(CatalogSorts, ", "), b.Sort)
	}
	return b, nil
}

func cleanBrowseText(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", Errorf(EINVALID, "%s must be UTF-8 text", field)
	}
	if n := utf8.RuneCountInString(s); n > MaxBrowseText {
		return "", Errorf(EINVALID, "%s must be at most %d characters, got %d", field, MaxBrowseText, n)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", Errorf(EINVALID, "%s must not contain control characters (%U)", field, r)
		}
	}
	return s, nil
}

// CategoryCount is a category of the catalog and how many of its applications list it.
type CategoryCount struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// CategoryService tells the catalog's categories.
type CategoryService interface {
	// FindCategories returns the limit categories most listed in the catalog, the most listed first
	// (then by name), with their counts.
	FindCategories(ctx context.Context, limit int) ([]CategoryCount, error)
}
