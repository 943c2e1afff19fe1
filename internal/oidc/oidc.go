// Package oidc is single sign-on through an OpenID Connect provider: the storefront's sign-in (the
// authorization code flow with PKCE, its state and nonce checked), the provider's groups mapped to
// organization roles at each sign-in, and the provider's JWT access tokens accepted as bearer tokens by the
// API (signature checked against the provider's JWKS, issuer, audience and expiry checked).
//
// It knows the store only through marketplace.IdentityService and AuditService.
package oidc

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Config is the operator's settings (README, "Single sign-on").
type Config struct {
	// Issuer is the provider's issuer URL; its discovery document is read at start.
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the storefront's callback as registered at the provider; empty derives it from each
	// request (scheme and Host + CallbackPath).
	RedirectURL string
	// Scopes are asked for besides openid; groups are read from the ID token's GroupsClaim.
	Scopes      []string
	GroupsClaim string
	// GroupRoles map the provider's groups to organization roles (ParseGroupRoles).
	GroupRoles []GroupRole
	// Audience is what a bearer access token's aud must contain; ClientID when empty.
	Audience string
	// Name is the provider's name on the sign-in page.
	Name string
}

// CallbackPath is where the provider sends the browser back.
const CallbackPath = "/signin/oidc/callback"

// GroupRole gives the members of Group the role Role in the organization named Organization.
type GroupRole struct {
	Group string
	marketplace.RoleGrant
}

// ParseGroupRoles reads "group=organization:role,…" (OIDC_GROUP_ROLES). An organization's name may hold
// colons: the role is after the last one.
func ParseGroupRoles(s string) ([]GroupRole, error) {
	var out []GroupRole
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		group, target, ok := strings.Cut(item, "=")
		i := strings.LastIndex(target, ":")
		if !ok || strings.TrimSpace(group) == "" || i <= 0 {
			return nil, fmt.Errorf("OIDC_GROUP_ROLES: %q is not group=organization:role", item)
		}
		g := GroupRole{Group: strings.TrimSpace(group), RoleGrant: marketplace.RoleGrant{Organization: target[:i], Role: target[i+1:]}}
		if err := marketplace.ValidateRole(g.Role); err != nil {
			return nil, fmt.Errorf("OIDC_GROUP_ROLES: %q: %w", item, err)
		}
		out = append(out, g)
	}
	return out, nil
}

// Store is what single sign-on reads and writes.
type Store interface {
	marketplace.IdentityService
	AppendAudit(ctx context.Context, e *marketplace.AuditEvent) error
}

// Provider signs users in through one OpenID provider.
type Provider struct {
	cfg      Config
	provider *oidc.Provider
	oauth    oauth2.Config
	idTokens *oidc.IDTokenVerifier
	access   *oidc.IDTokenVerifier
	store    Store
	log      *slog.Logger
}

// New reads the provider's discovery document (bounded by ctx) and returns the provider.
func New(ctx context.Context, cfg Config, store Store, log *slog.Logger) (*Provider, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, fmt.Errorf("single sign-on needs OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
	}
	if cfg.Audience == "" {
		cfg.Audience = cfg.ClientID
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Issuer
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC_ISSUER %s: %w", cfg.Issuer, err)
	}
	scopes := append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	return &Provider{
		cfg:      cfg,
		provider: p,
		oauth:    oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(), Scopes: scopes, RedirectURL: cfg.RedirectURL},
		idTokens: p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		access:   p.Verifier(&oidc.Config{ClientID: cfg.Audience}),
		store:    store,
		log:      log,
	}, nil
}

// Name is the provider's name for the sign-in page.
func (p *Provider) Name() string { return p.cfg.Name }

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// grants are the roles the groups give, in the order of the configuration.
func (p *Provider) grants(groups []string) []marketplace.RoleGrant {
	var out []marketplace.RoleGrant
	for _, gr := range p.cfg.GroupRoles {
		for _, g := range groups {
			if g == gr.Group {
				out = append(out, gr.RoleGrant)
				break
			}
		}
	}
	return out
}

// stringsClaim reads a claim that is a list of strings or one string.
func stringsClaim(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
