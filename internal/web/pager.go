package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// pager is one page of a long list shown on a storefront page, and the links to its neighbours: a page
// reads at most Limit items of a list however long it is, and says how many there are.
type pager struct {
	Number, Limit, Total int
	// First and Last are the positions (from 1) of the page's items in the whole list.
	First, Last int
	Prev, Next  string
	// Noun names the items ("revisions"); PrevText and NextText the links (newer, older).
	Noun, PrevText, NextText string
}

// pagerOf reads which page of a list query parameter param asks for (1 when absent or not a page) and
// makes the links to its neighbours, the rest of the request's query kept.
func pagerOf(r *http.Request, param string, limit int, noun, prevText, nextText string) pager {
	n, err := strconv.Atoi(r.URL.Query().Get(param))
	if err != nil || n < 1 || n > 1_000_000 {
		n = 1
	}
	return pager{Number: n, Limit: limit, Noun: noun, PrevText: prevText, NextText: nextText}
}

// page is the store's page of p.
func (p pager) page() marketplace.Page { return marketplace.Page{Number: p.Number, Limit: p.Limit} }

// of completes p with the list's total and the links, from the request r with query parameter param.
func (p pager) of(r *http.Request, param string, total, shown int) pager {
	p.Total = total
	if shown > 0 {
		p.First = (p.Number-1)*p.Limit + 1
		p.Last = p.First + shown - 1
	}
	link := func(n int) string {
		q := r.URL.Query()
		q.Set(param, strconv.Itoa(n))
		return (&url.URL{Path: r.URL.Path, RawQuery: q.Encode()}).String()
	}
	if p.Number*p.Limit < total {
		p.Next = link(p.Number + 1)
	}
	if p.Number > 1 {
		p.Prev = link(max(1, min(p.Number-1, (total+p.Limit-1)/p.Limit)))
	}
	return p
}
