package httpapi

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// maxPageLimit bounds a page of every list, so no request makes the server read a whole table.
const maxPageLimit = 500

// PageQuery is the page a list request asks for. Lists keep the seed API's JSON arrays as bodies; the
// paging travels in the query and in headers. It is exported because huma reads only exported embedded
// fields.
type PageQuery struct {
	Page  int `query:"page" minimum:"1" maximum:"1000000" default:"1" doc:"which page of the list, from 1"`
	Limit int `query:"limit" minimum:"1" maximum:"500" default:"100" doc:"items per page"`

	url url.URL // the request's, for the Link header
}

// Resolve keeps the request's URL, from which the links to the neighbouring pages are made.
func (p *PageQuery) Resolve(ctx huma.Context) []error {
	p.url = ctx.URL()
	return nil
}

func (p *PageQuery) page() marketplace.Page { return marketplace.Page{Number: p.Page, Limit: p.Limit} }

// paged is a response that is one page of a list: X-Total-Count says how long the whole list is, and
// Link (RFC 8288) points at the next and previous pages when there are some.
type paged[T any] struct {
	TotalCount int      `header:"X-Total-Count" doc:"how many items the whole list has"`
	Link       []string `header:"Link" doc:"RFC 8288 links to the neighbouring pages: rel=\"next\" while there are more, rel=\"prev\""`
	Body       T
}

// newPaged returns the page b of a list of total items, with its links.
func newPaged[T any](in *PageQuery, total int, b T) *paged[T] {
	out := &paged[T]{TotalCount: total, Body: b}
	link := func(page int, rel string) string {
		u := url.URL{Path: in.url.Path}
		q := in.url.Query()
		q.Set("page", strconv.Itoa(page))
		q.Set("limit", strconv.Itoa(in.Limit))
		u.RawQuery = q.Encode()
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	if in.Page*in.Limit < total {
		out.Link = append(out.Link, link(in.Page+1, "next"))
	}
	if in.Page > 1 {
		out.Link = append(out.Link, link(max(1, min(in.Page-1, (total+in.Limit-1)/in.Limit)), "prev"))
	}
	return out
}

// OrderQuery picks the order of a list that is oldest first by default: newest first reads the latest
// of a long history without counting pages from its end.
type OrderQuery struct {
	Order string `query:"order" enum:"oldest,newest" default:"oldest" doc:"oldest first (the default) or newest first"`
}

func (o OrderQuery) newestFirst() bool { return o.Order == "newest" }
