package web

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// TestOrgPagesRender executes the organization and webhook pages with every field set, so a template
// that names a field the view lacks fails here rather than as a 500 in a browser; and checks the
// escaping of what users name (an organization, a member, a URL).
func TestOrgPagesRender(t *testing.T) {
	v, err := parseViews()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	code, evil := 500, `<script>alert(1)</script>`
	org := &marketplace.Organization{ID: 7, Name: "team " + evil, Role: marketplace.RoleViewer, CreatedAt: now}
	frame := orgFrame{Org: org, Tab: "members", Error: "your role in organization 7 (viewer) may not add members to it",
		Switcher: switcher{UserID: 3, Orgs: []*marketplace.Organization{org}, Current: 7}}
	inv := &marketplace.Invoice{Number: "INV-7", Period: "2026-02", Currency: "USD", Total: decimal.RequireFromString("1.5"), OrganizationID: 7,
		Lines: []marketplace.InvoiceLine{{Kind: "usage", DeploymentID: 4, ApplicationName: "web", RequestedBy: 3}}}
	hook := &marketplace.Webhook{ID: 2, UserID: 3, URL: "https://hooks.example.com/" + evil, Events: []string{"invoice.closed", "upgrade.failed"}, CreatedAt: now}
	for _, tc := range []struct {
		page string
		body any
		want []string
	}{
		{"orgs", orgsView{Switcher: frame.Switcher, Error: "Organization not created: " + evil}, []string{`action="/orgs/switch"`, "team &lt;script&gt;", "(viewer)"}},
		{"org", orgView{orgFrame: frame, Projects: []*marketplace.Project{{ID: 1, Name: "p"}},
			Deployments: []*marketplace.Deployment{{ID: 4, ApplicationID: 5, ProjectID: 1, ConsumerID: 3, Status: marketplace.StatusInstalled, CreatedAt: now}}, DeploymentsTotal: 1},
			[]string{"/deployments/4", "user 3", `data-testid="org-role">viewer`, "may not add members"}},
		{"members", membersView{orgFrame: frame, Roles: memberRoles(), Role: "viewer",
			Members: []*marketplace.Member{{OrganizationID: 7, UserID: 3, Name: "ann " + evil, Role: "admin", AddedAt: now}}},
			[]string{"/orgs/7/members/3/role", "/orgs/7/members/3/remove", "ann &lt;script&gt;", `value="admin" selected`}},
		{"orgbills", orgBillsView{orgFrame: frame, Statement: &marketplace.Statement{From: now, To: now, Currency: "USD",
			Lines: []marketplace.StatementLine{{DeploymentID: 4, RequestedBy: 3, StartedAt: now}}}, Invoices: []*marketplace.Invoice{inv}},
			[]string{"/orgs/7/bills/invoices/INV-7", "1.50 USD", "user 3"}},
		{"orginvoice", orgInvoiceView{orgFrame: frame, Invoice: inv}, []string{"1.50 USD", "user 3"}},
		{"orgapps", orgAppsView{orgFrame: frame, Apps: []*marketplace.Application{{ID: 9, Name: "web", PublisherID: 3, OrganizationID: 7}}}, []string{"/apps/9"}},
		{"webhooks", webhooksView{Webhooks: []*marketplace.Webhook{hook}, Events: marketplace.WebhookEvents(), Created: hook, Secret: "whsec_abc",
			Chosen: map[string]bool{"invoice.closed": true}}, []string{`value="whsec_abc"`, "invoice.closed, upgrade.failed", "/webhooks/2/delete", `value="invoice.closed" checked`, "&lt;script&gt;"}},
		{"webhook", deliveriesView{Webhook: hook, Deliveries: []*marketplace.WebhookDelivery{{ID: 1, MessageID: "msg_1", EventType: "invoice.closed",
			Payload: json.RawMessage(`{}`), Status: "failed", Attempts: 3, LastStatusCode: &code, LastError: evil}}}, []string{"HTTP 500", "msg_1", "failed"}},
	} {
		var b bytes.Buffer
		if err := v.pages[tc.page].ExecuteTemplate(&b, "layout.html", page{Title: "t", SignedIn: true, CSRF: "c", Currency: "USD",
			Asset: func(string) string { return "/assets/x" }, Body: tc.body}); err != nil {
			t.Errorf("page %s: %v", tc.page, err)
			continue
		}
		for _, w := range append(tc.want, `href="/orgs"`, `href="/webhooks"`) {
			if !strings.Contains(b.String(), w) {
				t.Errorf("page %s does not say %q", tc.page, w)
			}
		}
		if strings.Contains(b.String(), evil) {
			t.Errorf("page %s shows a name unescaped", tc.page)
		}
	}
}
