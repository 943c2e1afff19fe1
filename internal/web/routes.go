package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// routes is the whole storefront, top to bottom. Every path not here goes to the API.
func (s *server) routes() http.Handler {
	root := chi.NewRouter()
	// The middlewares are the group's, not the root's: a request for the API must not meet them.
	root.Group(func(r chi.Router) {
		// audited records every change a form made (a 303 to a write) in the audit trail, as the API's.
		r.Use(s.securityHeaders, s.sameOrigin, s.boundedForms, s.audited)
		r.Get("/assets/{name}", s.asset)
		r.Get("/icons/{name}", s.icon)
		r.Get("/signin", s.signInPage)
		r.Post("/signin", s.signIn)
		r.Get("/signin/oidc", s.ssoBegin)
		r.Get(oidcCallbackPath, s.ssoFinish)
		r.Get("/", s.catalog) // signed in by the catalog's own statement: one round trip (catalog.go)

		r.Group(func(r chi.Router) {
			r.Use(s.signedIn)
			r.Post("/signout", s.signOut)

			r.Get("/apps/{id}", s.appPage)
			r.Post("/apps/{id}/install", s.install)

			r.Get("/deployments", s.deploymentsPage)
			r.Get("/deployments/{id}", s.deploymentPage)
			r.Get("/deployments/{id}/status", s.deploymentStatus)
			r.Post("/deployments/{id}/{action}", s.deploymentAction) // delete, upgrade, rollback: confirm, then act
			r.Post("/projects", s.createProject)

			r.Get("/publisher", s.publisherPage)
			r.Post("/apps/{id}/versions", s.publishVersion)
			r.Get("/operator", s.operatorPage)

			r.Get("/bills", s.billsPage)
			r.Get("/bills/statement.csv", s.statementCSV)
			r.Get("/bills/invoices", s.invoicesPage)
			r.Get("/bills/invoices/{number}", s.invoicePage)
			r.Get("/bills/invoices/{number}/csv", s.invoiceCSV)

			r.Get("/orgs", s.orgsPage)
			r.Post("/orgs", s.createOrg)
			r.Get("/orgs/switch", s.switchAccount)
			r.Get("/orgs/{org}", s.orgPage)
			r.Post("/orgs/{org}/projects", s.createOrgProject)
			r.Get("/orgs/{org}/members", s.membersPage)
			r.Post("/orgs/{org}/members", s.addMember)
			r.Post("/orgs/{org}/members/{user}/{action}", s.memberAction) // role, remove
			r.Get("/orgs/{org}/bills", s.orgBillsPage)
			r.Get("/orgs/{org}/bills/invoices/{number}", s.orgInvoicePage)
			r.Get("/orgs/{org}/apps", s.orgAppsPage)

			r.Get("/webhooks", s.webhooksPage)
			r.Post("/webhooks", s.createWebhook)
			r.Get("/webhooks/{id}", s.webhookPage)
			r.Post("/webhooks/{id}/delete", s.deleteWebhook)
		})
	})
	root.NotFound(s.API.ServeHTTP)
	root.MethodNotAllowed(s.API.ServeHTTP)
	return root
}
