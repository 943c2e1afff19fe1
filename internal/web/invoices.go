package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

type invoicesView struct {
	Invoices []*marketplace.Invoice
	Pager    pager
}

// invoicesPage lists a page of the caller's invoices, one per closed month with charges, oldest first
// as the ledger returns them.
func (s *server) invoicesPage(w http.ResponseWriter, r *http.Request) {
	c := marketplace.CallerFrom(r.Context())
	if c.Operator {
		s.fail(w, r, http.StatusNotFound, "The operator has no invoices: sign in as a consumer.")
		return
	}
	v := invoicesView{Pager: pagerOf(r, "page", 100, "invoices", "Earlier", "Later")}
	var total int
	var err error
	if v.Invoices, total, err = s.Store.FindInvoices(r.Context(), c.UserID, v.Pager.page()); err != nil {
		s.domainError(w, r, err)
		return
	}
	v.Pager = v.Pager.of(r, "page", total, len(v.Invoices))
	s.render(w, r, http.StatusOK, "invoices", "Invoices", v)
}

// invoicePage shows one of the caller's invoices with its lines; another user's is not found, as in the
// API (the ledger's WHERE clause).
func (s *server) invoicePage(w http.ResponseWriter, r *http.Request) {
	inv, ok := s.findInvoice(w, r)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "invoice", "Invoice "+inv.Number, inv)
}

// invoiceCSV is one invoice as the API's CSV document.
func (s *server) invoiceCSV(w http.ResponseWriter, r *http.Request) {
	inv, ok := s.findInvoice(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="invoice-`+inv.Number+`.csv"`)
	if err := marketplace.WriteCSV(w, inv.Rows()); err != nil {
		s.Logger.WarnContext(r.Context(), "write invoice CSV", "err", err)
	}
}

func (s *server) findInvoice(w http.ResponseWriter, r *http.Request) (*marketplace.Invoice, bool) {
	c := marketplace.CallerFrom(r.Context())
	number := chi.URLParam(r, "number")
	if c.Operator || number == "" || len(number) > 40 {
		s.fail(w, r, http.StatusNotFound, "There is no such invoice.")
		return nil, false
	}
	inv, err := s.Store.FindInvoice(r.Context(), c.UserID, number)
	if err != nil {
		s.domainError(w, r, err)
		return nil, false
	}
	return inv, true
}
