package web

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

type orgBillsView struct {
	orgFrame
	Statement *marketplace.Statement
	Invoices  []*marketplace.Invoice
	Pager     pager
}

// orgBillsPage shows the organization's statement of this month so far, a page of its lines (each
// naming the member who requested the deployment), and its invoices: what the API's
// /api/billing/org/{id}/statement and /invoices answer, read with the same store calls.
func (s *server) orgBillsPage(w http.ResponseWriter, r *http.Request) {
	v := orgBillsView{Pager: pagerOf(r, "page", 100, "statement lines", "Previous", "Next")}
	var err error
	if v.orgFrame, err = s.orgFrameOf(r, "bills"); err != nil {
		s.domainError(w, r, err)
		return
	}
	ctx := r.Context()
	now := time.Now().UTC()
	if v.Statement, err = s.Store.FindOrganizationStatement(ctx, v.Org.ID, marketplace.PeriodOf(now).Start, now, v.Pager.page()); err != nil {
		s.domainError(w, r, err)
		return
	}
	v.Pager = v.Pager.of(r, "page", v.Statement.LineCount, len(v.Statement.Lines))
	if v.Invoices, _, err = s.Store.FindOrganizationInvoices(ctx, v.Org.ID, marketplace.Page{Number: 1, Limit: 100}); err != nil {
		s.domainError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "orgbills", v.Org.Name+": bills", v)
}

type orgInvoiceView struct {
	orgFrame
	Invoice *marketplace.Invoice
}

// orgInvoicePage shows one invoice of the organization with its lines.
func (s *server) orgInvoicePage(w http.ResponseWriter, r *http.Request) {
	v := orgInvoiceView{}
	var err error
	if v.orgFrame, err = s.orgFrameOf(r, "bills"); err != nil {
		s.domainError(w, r, err)
		return
	}
	number := chi.URLParam(r, "number")
	if number == "" || len(number) > 40 {
		s.fail(w, r, http.StatusNotFound, "There is no such invoice.")
		return
	}
	if v.Invoice, err = s.Store.FindOrganizationInvoice(r.Context(), v.Org.ID, number); err != nil {
		s.domainError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "orginvoice", v.Org.Name+": invoice "+v.Invoice.Number, v)
}
