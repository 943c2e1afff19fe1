package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// addLedgerRoutes is the billing ledger's surface: runs and period closes for the operator, invoices and
// statements for a consumer, revenue and payouts for a publisher.
func addLedgerRoutes(api huma.API, ledger ledgers, log *slog.Logger) {
	huma.Register(api, op("list-billing-runs", http.MethodGet, "/api/billing/runs", "The billing job's runs, latest first (the operator only)", 200), listBillingRuns(ledger, log))
	huma.Register(api, mayConflict(op("close-billing-period", http.MethodPost, "/api/billing/periods/{period}/close", "Close a month (UTC): issue its invoices (the operator only; months close in order, once ended)", 200)), closePeriod(ledger, log))
	huma.Register(api, withDocumentSchema[invoiceList](api, op("list-invoices", http.MethodGet, "/api/billing/user/{id}/invoices", "A consumer's invoices, paginated (JSON, or CSV)", 200)), listInvoices(ledger, log))
	huma.Register(api, withDocumentSchema[marketplace.Invoice](api, op("get-invoice", http.MethodGet, "/api/billing/user/{id}/invoices/{number}", "One invoice with its lines (JSON, or CSV)", 200)), getInvoice(ledger, log))
	huma.Register(api, withDocumentSchema[marketplace.Statement](api, op("get-statement", http.MethodGet, "/api/billing/user/{id}/statement", "A consumer's usage over [from, to), by default the current month so far, its lines paginated (JSON, or CSV)", 200)), getStatement(ledger, log))
	huma.Register(api, withDocumentSchema[marketplace.Revenue](api, op("get-revenue", http.MethodGet, "/api/billing/publisher/{id}", "A publisher's revenue per application over [from, to): gross, fee, net (JSON, or CSV)", 200)), getRevenue(ledger, log))
	huma.Register(api, withDocumentSchema[orgInvoiceList](api, op("list-org-invoices", http.MethodGet, "/api/billing/org/{id}/invoices", "An organization's invoices, paginated (JSON, or CSV; admins, deployers, viewers)", 200)), listOrgInvoices(ledger, log))
	huma.Register(api, withDocumentSchema[marketplace.Invoice](api, op("get-org-invoice", http.MethodGet, "/api/billing/org/{id}/invoices/{number}", "One invoice of an organization with its lines, each naming the member who requested the deployment (JSON, or CSV)", 200)), getOrgInvoice(ledger, log))
	huma.Register(api, withDocumentSchema[marketplace.Statement](api, op("get-org-statement", http.MethodGet, "/api/billing/org/{id}/statement", "An organization's usage over [from, to), each line naming the member who requested the deployment (JSON, or CSV)", 200)), getOrgStatement(ledger, log))
	huma.Register(api, withDocumentSchema[marketplace.Revenue](api, op("get-org-revenue", http.MethodGet, "/api/billing/org/{id}/revenue", "Revenue of the applications published in an organization's name over [from, to) (admins, publishers)", 200)), getOrgRevenue(ledger, log))
	huma.Register(api, withDocumentSchema[marketplace.Revenue](api, op("get-org-payout", http.MethodGet, "/api/billing/org/{id}/payouts/{period}", "An organization's payout statement of a closed month (admins, publishers)", 200)), getOrgPayout(ledger, log))
	huma.Register(api, withDocumentSchema[marketplace.Revenue](api, op("get-payout", http.MethodGet, "/api/billing/publisher/{id}/payouts/{period}", "A publisher's payout statement of a closed month (JSON, or CSV)", 200)), getPayout(ledger, log))
}

// ledgers are the bills of users and of organizations.
type ledgers interface {
	marketplace.LedgerService
	marketplace.OrganizationLedgerService
}
