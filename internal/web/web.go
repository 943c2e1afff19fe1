// Package web is the storefront: the HTML pages served at / by `serve` and `api`. Pages are Go
// html/template, parsed once at start, with htmx (embedded, no CDN) for the parts that update live.
//
// It calls the same services the JSON API does (the store and the deployer), with the signed-in caller
// in the context, so the store's WHERE clauses authorize every read and write here exactly as they do
// for the API: a page can show nothing the caller could not read through the API. It never calls the
// API over HTTP. It knows nothing of PostgreSQL or Redis.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/marketplace/marketplace/internal/chartmeta"
	"github.com/marketplace/marketplace/internal/deploy"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// Store is what the storefront reads and writes.
type Store interface {
	marketplace.UserService
	marketplace.AppService
	marketplace.VersionService
	marketplace.AboutService
	marketplace.ProjectService
	marketplace.DeploymentService
	marketplace.BillingService
	marketplace.AuditService
	marketplace.LedgerService
	marketplace.SessionService
	marketplace.OrganizationService
	marketplace.OrganizationLedgerService
	marketplace.WebhookService
	marketplace.CategoryService
	CreateIdentitySession(ctx context.Context, idHash []byte, userID int64, issuer string, s *marketplace.Session) error
}

// URLChecker refuses a URL the marketplace would not send to: one whose host is an internal address the
// operator did not allow (the fetch guard). Its errors say why.
type URLChecker interface {
	CheckURL(ctx context.Context, rawURL string) error
}

// Deployer accepts installs, upgrades and deletions; the API's deploy.Requests.
type Deployer interface {
	RequestInstall(ctx context.Context, r deploy.InstallRequest) (*marketplace.Deployment, error)
	PreviewInstall(ctx context.Context, r deploy.InstallRequest) (*marketplace.Preview, error)
	RequestUninstall(ctx context.Context, id int64) (*marketplace.Deployment, error)
	RequestUpgrade(ctx context.Context, id int64, version int, inputs map[string]any) (*marketplace.Deployment, error)
	RequestRollback(ctx context.Context, id int64, revision int) (*marketplace.Deployment, error)
	Health(ctx context.Context, d *marketplace.Deployment) *marketplace.Health
	// ValuesSchema reads the values schema of app's package, for its install form; nil when it has none.
	ValuesSchema(ctx context.Context, app *marketplace.Application) (*marketplace.ValuesSchema, error)
}

// ConsoleReader reads the tail of a vm deployment's serial console.
type ConsoleReader interface {
	Console(ctx context.Context, d *marketplace.Deployment, maxBytes int64) (string, error)
}

// Deps are the storefront's dependencies.
// ChartChecker checks the chart of a version about to be published: a refusal is EINVALID, saying why.
type ChartChecker interface {
	CheckChart(ctx context.Context, appID, publisher int64, spec marketplace.DeploymentSpec) (*marketplace.ChartSignature, error)
}

type Deps struct {
	Store    Store
	Deployer Deployer
	// Consoles reads vm consoles; nil when there is no VM host.
	Consoles ConsoleReader
	// URLs checks a webhook's URL when it is registered; nil checks nothing (every delivery's dial is
	// checked again by the sender).
	URLs URLChecker
	// Charts checks a chart's signature before a version is published (as the API does); nil checks none.
	Charts ChartChecker
	// Queues reads the work queues for the operator's page; nil shows none.
	Queues QueueReader
	// OperatorToken, when not empty, signs the operator in.
	OperatorToken string
	// HashToken is how the API stores tokens (its SHA-256); a session is opened for the token it finds.
	HashToken func(string) []byte
	// API serves every path the storefront does not: the JSON API, /metrics, /docs.
	API http.Handler
	// SessionTTL is how long a session lasts after sign-in; 12 hours when zero.
	SessionTTL time.Duration
	// SecureCookies marks the session cookie Secure although the request came over plain HTTP: the
	// storefront is served over HTTPS by a proxy in front of it (the marketplace itself speaks HTTP only).
	SecureCookies bool
	// SSO signs users in through an OpenID provider (package oidc); nil when none is configured.
	SSO SSO
	// NoTokenSignIn refuses the sign-in of users with their tokens (STOREFRONT_TOKEN_SIGNIN=false): they
	// sign in through SSO. The operator's token still signs the operator in.
	NoTokenSignIn bool
	// Currency is the ISO 4217 code amounts are shown in.
	Currency string
	Logger   *slog.Logger
}

// New returns the storefront, which hands every other path to d.API.
func New(d Deps) (http.Handler, error) {
	if d.SessionTTL == 0 {
		d.SessionTTL = 12 * time.Hour
	}
	if d.Currency == "" {
		d.Currency = "USD"
	}
	views, err := parseViews()
	if err != nil {
		return nil, err
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, err
	}
	s := &server{Deps: d, views: views, assets: assets, isOperator: operatorCheck(d.OperatorToken, d.HashToken), markdown: chartmeta.NewMarkdown(),
		catalogPages: newKept[catalogKey, catalogPage](catalogPagesKept), layouts: newKept[layoutKey, layout](layoutsKept),
		categories: &keptCategories{}}
	return s.routes(), nil
}

// server holds the storefront's handlers and what they share.
type server struct {
	Deps
	views      *views
	assets     *assets
	isOperator func(hash []byte) bool
	// catalogPages are catalog pages' contents as rendered, with the catalog generation they show; layouts
	// the catalog page's layout rendered for a session (catalog.go).
	catalogPages *kept[catalogKey, catalogPage]
	layouts      *kept[layoutKey, layout]
	categories   *keptCategories
	// markdown sanitises READMEs again as they are shown.
	markdown *chartmeta.Markdown
}

// How many catalog pages' contents (~6 KB each) and catalog layouts (~1.3 KB, one per session) are
// kept: a few MB at most.
const (
	catalogPagesKept = 256
	layoutsKept      = 1024
)
