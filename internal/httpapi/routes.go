package httpapi

import (
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/marketplace/marketplace/internal/apidocs"
)

// addRoutes is the whole API surface, top to bottom.
func addRoutes(router chi.Router, api huma.API, d Deps) {
	api.UseMiddleware(authenticate(api, d.Store, d.AccessTokens, d.OperatorToken, d.Logger), audited(d.Store, d.Logger))
	s, log := d.Store, d.Logger

	huma.Register(api, public("health", http.MethodGet, "/healthz", "Liveness", 200), healthz())
	huma.Register(api, public("ready", http.MethodGet, "/readyz", "Readiness: PostgreSQL and Redis answer", 200), readyz(d.Ready))

	createUserOp := public("create-user", http.MethodPost, "/api/users/new", "Create a user; its token is shown once (rate-limited per client address)", 201)
	createUserOp.Middlewares = huma.Middlewares{rateLimited(api, newClientLimiter(d.UserCreatePerMinute, d.UserCreateBurst), "user creations")}
	createUserOp.Errors = append(createUserOp.Errors, http.StatusTooManyRequests)
	huma.Register(api, createUserOp, createUser(s, log))
	huma.Register(api, op("list-users", http.MethodGet, "/api/users", "List users (the operator sees all, a user itself), paginated", 200), listUsers(s, log))
	huma.Register(api, op("list-user-deployments", http.MethodGet, "/api/users/{id}/deployments", "A user's deployments, optionally by status, paginated", 200), listUserDeployments(s, log))
	huma.Register(api, mayConflict(op("create-token", http.MethodPost, "/api/users/{id}/tokens", "Create another token of a user (the user or the operator); shown once", 201)), createToken(s, log))
	huma.Register(api, op("list-tokens", http.MethodGet, "/api/users/{id}/tokens", "A user's tokens, without their secrets", 200), listTokens(s, log))
	huma.Register(api, op("revoke-token", http.MethodDelete, "/api/users/{id}/tokens/{tokenID}", "Revoke a token: it is refused at once, by every replica", 204), revokeToken(s, log))

	huma.Register(api, mayConflict(op("create-signing-key", http.MethodPost, "/api/users/{id}/signing-keys", "Register a public OpenPGP key of a publisher: charts it signs (helm package --sign) are verified at publish", 201)), createSigningKey(s, d.Charts, log))
	huma.Register(api, op("list-signing-keys", http.MethodGet, "/api/users/{id}/signing-keys", "A publisher's registered public keys", 200), listSigningKeys(s, log))
	huma.Register(api, op("delete-signing-key", http.MethodDelete, "/api/users/{id}/signing-keys/{keyID}", "Delete a registered key: versions verified with it stay verified, new ones no longer are", 204), deleteSigningKey(s, log))

	huma.Register(api, mayConflict(op("create-app", http.MethodPost, "/api/apps/new", "Publish an application (within the publisher's quota); a k8s chart's signature is checked (422 for a tampered chart, a bad signature, or an unsigned one when signed charts are required)", 201)), createApp(s, d.URLs, d.VMLimits, d.Charts, log))
	huma.Register(api, withBodySchema[appPage](api, tokenCheckedByStore(op("list-apps", http.MethodGet, "/api/apps", "The catalog, paginated, optionally searched (q), filtered (publisher, deploymentType, category, publisherName) and sorted (sort)", 200))), listApps(s, log))
	huma.Register(api, op("get-app", http.MethodGet, "/api/apps/{id}", "One application", 200), getApp(s, log))
	huma.Register(api, op("update-app", http.MethodPut, "/api/apps/{id}", "Update an application (its publisher only)", 200), updateApp(s, d.URLs, d.VMLimits, d.Charts, log))
	huma.Register(api, mayConflict(op("delete-app", http.MethodDelete, "/api/apps/{id}", "Delete an application; 409 while it has live deployments (a failed one is not)", 204)), deleteApp(s, log))
	huma.Register(api, op("create-version", http.MethodPost, "/api/apps/{id}/versions", "Publish the next version of an application (its publisher only); it becomes the current one", 201), createVersion(s, d.URLs, d.VMLimits, d.Charts, log))
	huma.Register(api, op("list-versions", http.MethodGet, "/api/apps/{id}/versions", "An application's versions, oldest first (or ?order=newest), paginated", 200), listVersions(s, log))
	huma.Register(api, op("deprecate-version", http.MethodPost, "/api/apps/{id}/versions/{version}/deprecate", "Deprecate a version: no new installs of it; running deployments keep it", 200), deprecateVersion(s, log))
	huma.Register(api, op("set-app-icon", http.MethodPut, "/api/apps/{id}/icon", "Set a vm application's icon (its publisher only): a PNG, JPEG or GIF, re-encoded; a chart's icon is the chart's", 200), setIcon(s, log))
	huma.Register(api, op("get-app-visibility", http.MethodGet, "/api/apps/{id}/visibility", "Who may see an application: public, or private and the organizations it is shared with (its publisher, or its organization's admins and publishers)", 200), getVisibility(s, log))
	huma.Register(api, op("set-app-visibility", http.MethodPut, "/api/apps/{id}/visibility", "Make an application public or private, and set the organizations a private one is shared with; its running deployments keep running", 200), setVisibility(s, log))
	huma.Register(api, op("retire-app", http.MethodPost, "/api/apps/{id}/retire", "Retire an application: out of the catalog, no new installs, its running deployments keep it", 200), retireApp(s, log))

	huma.Register(api, mayConflict(op("create-project", http.MethodPost, "/api/user/project/new", "Create a project (within the user's quota)", 201)), createProject(s, log))
	huma.Register(api, op("list-user-projects", http.MethodGet, "/api/user/project/{userID}", "A user's projects, paginated", 200), listUserProjects(s, log))
	huma.Register(api, op("get-project-deployments", http.MethodGet, "/api/user/project/{id}/deployments", "A project with a page of its deployments", 200), getProject(s, log))
	huma.Register(api, mayConflict(op("delete-project", http.MethodDelete, "/api/user/project/{id}", "Delete a project; 409 while it has live deployments", 204)), deleteProject(s, log))

	huma.Register(api, mayConflict(op("install", http.MethodPost, "/api/deployments/install", "Deploy an application into a project (queued; within the consumer's quota; not a retired application)", 202)), install(d.Deployer, log))
	huma.Register(api, op("list-deployments", http.MethodGet, "/api/deployments", "The caller's deployments, paginated", 200), listDeployments(s, log))
	huma.Register(api, op("get-deployment", http.MethodGet, "/api/deployments/{id}", "One deployment with its status, its latest revisions and usage records with their totals, and its live health when installed", 200), getDeployment(s, d.Deployer, log))
	huma.Register(api, op("deployment-console", http.MethodGet, "/api/deployments/{id}/console", "The tail of a vm deployment's serial console and its live state", 200), deploymentConsole(s, d.Consoles, log))
	huma.Register(api, mayConflict(op("upgrade", http.MethodPost, "/api/deployments/{id}/upgrade", "Upgrade an installed deployment to another version and inputs (queued); the current revision runs until the new one is ready, and stays if it fails", 202)), upgrade(d.Deployer, log))
	huma.Register(api, mayConflict(op("rollback", http.MethodPost, "/api/deployments/{id}/rollback", "Return an installed deployment to an earlier revision's version and inputs (queued)", 202)), rollback(d.Deployer, log))
	huma.Register(api, op("list-revisions", http.MethodGet, "/api/deployments/{id}/revisions", "The revisions a deployment ran, oldest first (or ?order=newest), paginated", 200), listRevisions(s, log))
	huma.Register(api, op("uninstall", http.MethodDelete, "/api/deployments/{id}", "Delete a deployment (queued); billing stops now", 202), uninstall(d.Deployer, log))

	huma.Register(api, op("user-billing", http.MethodGet, "/api/billing/user/{id}", "The billing records of a user, paginated, with the total of all", 200), userBilling(s, log))
	huma.Register(api, op("deployment-billing", http.MethodGet, "/api/billing/user/{id}/deployment/{deploymentID}", "The billing records of one deployment, oldest first (or ?order=newest), paginated, with the total of all", 200), deploymentBilling(s, log))

	huma.Register(api, op("create-org", http.MethodPost, "/api/orgs/new", "Create an organization; you are its first admin", 201), createOrg(s, log))
	huma.Register(api, op("list-orgs", http.MethodGet, "/api/orgs", "Your organizations with your role in each, paginated", 200), listOrgs(s, log))
	huma.Register(api, op("get-org", http.MethodGet, "/api/orgs/{id}", "One of your organizations, with your role", 200), getOrg(s, log))
	huma.Register(api, op("list-org-members", http.MethodGet, "/api/orgs/{id}/members", "An organization's members and their roles (any member)", 200), listMembers(s, log))
	huma.Register(api, mayConflict(op("add-org-member", http.MethodPost, "/api/orgs/{id}/members", "Add a member by user_id or name with a role (admins)", 201)), addMember(s, log))
	huma.Register(api, mayConflict(op("set-org-member-role", http.MethodPut, "/api/orgs/{id}/members/{userID}", "Change a member's role (admins); the last admin keeps the role", 200)), setMemberRole(s, log))
	huma.Register(api, mayConflict(op("remove-org-member", http.MethodDelete, "/api/orgs/{id}/members/{userID}", "Remove a member (admins, or the member itself); the last admin stays. Its tokens reach nothing of the organization at once", 204)), removeMember(s, log))
	huma.Register(api, op("list-org-projects", http.MethodGet, "/api/orgs/{id}/projects", "An organization's projects, paginated (admins, deployers, viewers)", 200), listOrgProjects(s, log))
	huma.Register(api, op("list-org-apps", http.MethodGet, "/api/orgs/{id}/apps", "The applications published in an organization's name, retired ones included, paginated (any member)", 200), listOrgApps(s, log))
	huma.Register(api, mayConflict(op("create-webhook", http.MethodPost, "/api/webhooks", "Register a webhook for some events (within the owner's limit); its signing secret is shown once", 201)), createWebhook(s, d.URLs, log))
	huma.Register(api, op("list-webhooks", http.MethodGet, "/api/webhooks", "The caller's webhooks (the operator sees all), without their secrets, paginated", 200), listWebhooks(s, log))
	huma.Register(api, op("delete-webhook", http.MethodDelete, "/api/webhooks/{id}", "Delete a webhook: nothing more is sent to it", 204), deleteWebhook(s, log))
	huma.Register(api, op("list-webhook-deliveries", http.MethodGet, "/api/webhooks/{id}/deliveries", "A webhook's deliveries, newest first, with the outcome of each one's latest attempt, paginated", 200), listWebhookDeliveries(s, log))

	huma.Register(api, mayConflict(op("register-target", http.MethodPost, "/api/targets", "Register a cluster (by kubeconfig, sealed and never shown) or a VM host (by libvirt URI) deployments can run on (the operator only)", 201)), registerTarget(s, log))
	huma.Register(api, op("list-targets", http.MethodGet, "/api/targets", "The clusters and VM hosts, with their health and a VM host's capacity (the operator only)", 200), listTargets(s, log))
	huma.Register(api, op("get-target", http.MethodGet, "/api/targets/{id}", "One target with its health and a VM host's capacity (the operator only)", 200), getTarget(s, log))
	huma.Register(api, mayConflict(op("remove-target", http.MethodDelete, "/api/targets/{id}", "Remove a target; 409 while deployments run on it, and for a default target (the operator only)", 204)), removeTarget(s, log))

	huma.Register(api, op("list-audit", http.MethodGet, "/api/audit", "The audit trail, oldest first: all of it for the operator, the events of your own resources for a user", 200), listAudit(s, log))
	addLedgerRoutes(api, s, log)

	router.Mount("/docs", apidocs.Handler("/docs", api.OpenAPI))

	if d.Metrics != nil {
		// Queue depths and attempt counts are every tenant's activity: only the operator reads them.
		router.Handle("/metrics", OperatorOnly(d.OperatorToken, d.MetricsPublic,
			promhttp.HandlerFor(d.Metrics, promhttp.HandlerOpts{Registry: prometheus.Registerer(d.Metrics)})))
	}
}

// mayConflict documents that o answers 409 when the state forbids it (a quota reached, a retired
// application, live deployments).
func mayConflict(o huma.Operation) huma.Operation {
	o.Errors = append(o.Errors, http.StatusConflict)
	return o
}

// op describes an operation that needs a bearer token.
func op(id, method, path, summary string, status int) huma.Operation {
	o := public(id, method, path, summary, status)
	o.Security = []map[string][]string{{"bearer": {}}}
	o.Errors = append(o.Errors, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound)
	return o
}

// public describes an operation anyone may call.
func public(id, method, path, summary string, status int) huma.Operation {
	return huma.Operation{
		OperationID:   id,
		Method:        method,
		Path:          path,
		Summary:       summary,
		DefaultStatus: status,
		MaxBodyBytes:  1 << 20,
		Errors:        []int{http.StatusBadRequest, http.StatusUnprocessableEntity},
	}
}
