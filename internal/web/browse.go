package web

import (
	"context"
	"html"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Browsing the catalog: the cards of a page, the categories of the filter and the orders.

// categoriesShown is how many of the catalog's categories the filter offers (the most listed).
const categoriesShown = 40

// keptCategories are the catalog's categories as read at a generation: read again only when a page is
// rendered at another one, so a page kept (or rendered for a generation read before) costs no statement.
type keptCategories struct {
	mu         sync.Mutex
	generation int64
	cats       []marketplace.CategoryCount
}

// categoriesAt returns the catalog's most listed categories, read at generation or after it.
func (s *server) categoriesAt(ctx context.Context, generation int64) ([]marketplace.CategoryCount, error) {
	k := s.categories
	k.mu.Lock()
	if k.cats != nil && k.generation >= generation {
		cats := k.cats
		k.mu.Unlock()
		return cats, nil
	}
	k.mu.Unlock()
	cats, err := s.Store.FindCategories(ctx, categoriesShown)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if generation >= k.generation {
		k.generation, k.cats = generation, cats
	}
	k.mu.Unlock()
	return cats, nil
}

// withCategory is cats with the category asked for among them (with no count when the catalog does
// not list it), so that the filter shows what is selected.
func withCategory(cats []marketplace.CategoryCount, category string) []marketplace.CategoryCount {
	if category == "" {
		return cats
	}
	for _, c := range cats {
		if c.Name == category {
			return cats
		}
	}
	return append(append([]marketplace.CategoryCount{}, cats...), marketplace.CategoryCount{Name: category})
}

// sortOption is one of the orders the catalog offers.
type sortOption struct{ Value, Label string }

var sortOptions = []sortOption{{"", "Oldest first"}, {marketplace.SortName, "Name"}, {marketplace.SortNewest, "Newest first"},
	{marketplace.SortPrice, "Price: low to high"}, {marketplace.SortPriceDesc, "Price: high to low"}}

// browseMessage is what the storefront says of a bad category, publisher name or order.
func browseMessage(err error) string {
	msg := marketplace.ErrorMessage(err)
	for param, label := range map[string]string{"category": "Category", "publisherName": "Publisher", "sort": "Order"} {
		if rest, ok := strings.CutPrefix(msg, param+" "); ok {
			return label + " " + rest + "."
		}
	}
	return msg + "."
}

// appCards writes the applications of a catalog page as HTML list items, escaped here rather than by
// the template: the catalog is the busiest page, and html/template calls an escaper by reflection for
// every value it prints, which made a page of 20 cards several times slower than the JSON of the same
// page. The markup is the same a template would write; every text goes through html.EscapeString, and
// every link's parameter through url.QueryEscape.
//
// A card shows the icon (served by this marketplace; the name's initial without one), the name, the
// description shortened, the type, the price, the publisher's name (a link to their applications) and
// the categories (each a link to its applications).
func appCards(apps []*marketplace.Application, currency string) template.HTML {
	var b strings.Builder
	b.Grow(len(apps) * 700)
	for _, a := range apps {
		kind := "Kubernetes"
		if a.Deployment.Type == marketplace.TypeVM {
			kind = "VM"
		}
		id := strconv.FormatInt(a.ID, 10)
		b.WriteString(`<li class="card app-card">`)
		if strings.HasPrefix(a.IconURL, "/icons/") {
			b.WriteString(`<img class="icon" src="`)
			b.WriteString(html.EscapeString(a.IconURL))
			b.WriteString(`" alt="" width="48" height="48">`)
		} else {
			initial := "?"
			for _, r := range a.Name {
				initial = strings.ToUpper(string(r))
				break
			}
			b.WriteString(`<span class="icon blank" aria-hidden="true">`)
			b.WriteString(html.EscapeString(initial))
			b.WriteString(`</span>`)
		}
		b.WriteString(`<div class="about"><h2><a href="/apps/`)
		b.WriteString(id)
		b.WriteString(`">`)
		b.WriteString(html.EscapeString(a.Name))
		b.WriteString(`</a></h2><p>`)
		b.WriteString(html.EscapeString(shorten(160, a.Description)))
		b.WriteString(`</p><p class="meta"><span class="tag">`)
		b.WriteString(kind)
		b.WriteString(`</span> `)
		if a.Private {
			b.WriteString(`<span class="tag private" data-testid="private" title="private: only its owner and the organizations it is shared with see it">private</span> `)
		}
		b.WriteString(`<span class="price">`)
		b.WriteString(html.EscapeString(formatMoney(a.HourlyRate) + " " + currency + "/hour"))
		b.WriteString(`</span> · by `)
		if a.PublisherName != "" {
			b.WriteString(`<a class="publisher" href="/?publisherName=`)
			b.WriteString(html.EscapeString(url.QueryEscape(a.PublisherName)))
			b.WriteString(`">`)
			b.WriteString(html.EscapeString(a.PublisherName))
			b.WriteString(`</a>`)
		} else {
			b.WriteString("publisher " + strconv.FormatInt(a.PublisherID, 10))
		}
		b.WriteString(`</p>`)
		if len(a.Categories) > 0 {
			b.WriteString(`<ul class="categories" aria-label="Categories">`)
			for _, c := range a.Categories {
				b.WriteString(`<li><a href="/?category=`)
				b.WriteString(html.EscapeString(url.QueryEscape(c)))
				b.WriteString(`">`)
				b.WriteString(html.EscapeString(c))
				b.WriteString(`</a></li>`)
			}
			b.WriteString(`</ul>`)
		}
		b.WriteString("</div></li>\n")
	}
	return template.HTML(b.String())
}
