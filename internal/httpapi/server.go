// Package httpapi is the HTTP API of the seed (SEED_API.md) on chi and huma: routes, bearer-token
// authentication, request validation, RFC 9457 problem+json errors and the OpenAPI 3.1 document that huma
// generates from the very handlers it serves, so the two cannot drift.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/marketplace/marketplace/internal/deploy"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// Store is what the API reads and writes.
type Store interface {
	marketplace.UserService
	marketplace.TokenService
	marketplace.AppService
	marketplace.VisibilityService
	marketplace.VersionService
	marketplace.AboutService
	marketplace.ProjectService
	marketplace.DeploymentService
	marketplace.BillingService
	marketplace.AuditService
	marketplace.LedgerService
	marketplace.OrganizationService
	marketplace.OrganizationLedgerService
	marketplace.WebhookService
	marketplace.SigningKeyService
	marketplace.TargetService
	CatalogJSON
}

// Deployer accepts install and uninstall requests.
type Deployer interface {
	RequestInstall(ctx context.Context, r deploy.InstallRequest) (*marketplace.Deployment, error)
	PreviewInstall(ctx context.Context, r deploy.InstallRequest) (*marketplace.Preview, error)
	RequestUninstall(ctx context.Context, id int64) (*marketplace.Deployment, error)
	RequestUpgrade(ctx context.Context, id int64, version int, inputs map[string]any) (*marketplace.Deployment, error)
	RequestRollback(ctx context.Context, id int64, revision int) (*marketplace.Deployment, error)
	PreviewUpgrade(ctx context.Context, id int64, version int, inputs map[string]any) (*marketplace.Preview, error)
	// Health is what the deployment's provider sees now, quickly or not at all (nil).
	Health(ctx context.Context, d *marketplace.Deployment) *marketplace.Health
}

// AccessTokenVerifier returns the user of a provider's access token; EUNAUTHORIZED when it is not valid.
type AccessTokenVerifier interface {
	UserOfAccessToken(ctx context.Context, token string) (int64, error)
}

// Pinger is a dependency /readyz checks.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps are the handlers' dependencies.
type Deps struct {
	Store    Store
	Deployer Deployer
	// OperatorToken, when not empty, is a bearer token that acts as the operator.
	OperatorToken string
	// AccessTokens, when set, accepts an OpenID provider's JWT access tokens as bearer tokens beside the
	// users' own (package oidc).
	AccessTokens AccessTokenVerifier
	// MetricsPublic lets anyone read /metrics; otherwise only the operator may.
	MetricsPublic bool
	// UserCreatePerMinute and UserCreateBurst limit POST /api/users/new per client address; a rate of 0
	// means no limit.
	UserCreatePerMinute float64
	UserCreateBurst     int
	// Ready are checked by /readyz by name (postgres, redis).
	Ready   map[string]Pinger
	Metrics *prometheus.Registry
	Logger  *slog.Logger
	// URLs checks publishers' URLs when an application is published or changed; nil checks none (they
	// are checked again whenever they are fetched).
	URLs URLChecker
	// VMLimits are the largest vCPU count and memory a vm application may ask for; zero means no limit.
	VMLimits marketplace.VMLimits
	// Charts checks charts' provenance at publish and reads publishers' keys; nil checks none.
	Charts ChartChecker
	// Consoles reads vm deployments' serial consoles; nil when there is no VM host.
	Consoles ConsoleReader
}

// NewHandler returns the whole HTTP API.
func NewHandler(d Deps) http.Handler {
	router, _ := newRouter(d)
	return router
}

// newRouter returns the router of the whole API and the huma API that documents it.
func newRouter(d Deps) (*chi.Mux, huma.API) {
	router := chi.NewMux()
	router.Use(recoverer(d.Logger), instrument(d.Metrics), jsonByDefault)
	api := humachi.New(router, humaConfig())
	addRoutes(router, api, d)
	return router, api
}

func humaConfig() huma.Config {
	cfg := huma.DefaultConfig("Marketplace API", "1.0.0")
	cfg.Info.Description = "A self-hosted application marketplace: publishers list Helm charts and VM images, " +
		"consumers deploy them into projects. Every request except user creation carries a bearer token."
	cfg.CreateHooks = nil // no $schema links in bodies: clients of the seed API do not expect them
	cfg.DocsPath = ""     // huma's page loads its script from a CDN; routes.go mounts package apidocs instead
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "the token returned once by POST /api/users/new"},
	}
	cfg.Components.Schemas.RegisterTypeAlias(reflect.TypeFor[marketplace.Money](), reflect.TypeFor[decimalNumber]())
	cfg.Transformers = append(cfg.Transformers, problemTypes)
	return cfg
}

// decimalNumber is how the OpenAPI document describes marketplace.Money: a JSON number written with its
// exact decimal digits, which a client must not read into a binary float. Requests send numbers, as the
// seed API's clients always have.
type decimalNumber struct{}

// Schema is a number of format decimal, never double.
func (decimalNumber) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeNumber, Format: "decimal",
		Description: "an exact decimal amount, written as a JSON number with all its digits; read it as a decimal, not a float"}
}
