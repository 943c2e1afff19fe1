package main

import (
	"context"
	"log/slog"

	"github.com/marketplace/marketplace/internal/oidc"
)

// SSO is single sign-on through an OpenID provider (package oidc; README, "Single sign-on"): on when
// OIDC_ISSUER is set.
type SSO struct {
	OIDCIssuer       string   `env:"OIDC_ISSUER"`
	OIDCClientID     string   `env:"OIDC_CLIENT_ID"`
	OIDCClientSecret string   `env:"OIDC_CLIENT_SECRET"`
	OIDCRedirectURL  string   `env:"OIDC_REDIRECT_URL"`
	OIDCScopes       []string `env:"OIDC_SCOPES" envDefault:"profile,email"`
	OIDCGroupsClaim  string   `env:"OIDC_GROUPS_CLAIM" envDefault:"groups"`
	OIDCGroupRoles   string   `env:"OIDC_GROUP_ROLES"`
	OIDCAudience     string   `env:"OIDC_AUDIENCE"`
	OIDCProviderName string   `env:"OIDC_PROVIDER_NAME"`
	// TokenSignIn lets users sign in to the storefront with their tokens beside the provider.
	TokenSignIn bool `env:"STOREFRONT_TOKEN_SIGNIN" envDefault:"true"`
}

// newSSO is the configured provider, or nil without OIDC_ISSUER. Its discovery document is read now.
func newSSO(ctx context.Context, cfg SSO, store oidc.Store, log *slog.Logger) (*oidc.Provider, error) {
	if cfg.OIDCIssuer == "" {
		return nil, nil
	}
	roles, err := oidc.ParseGroupRoles(cfg.OIDCGroupRoles)
	if err != nil {
		return nil, err
	}
	return oidc.New(ctx, oidc.Config{Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret,
		RedirectURL: cfg.OIDCRedirectURL, Scopes: cfg.OIDCScopes, GroupsClaim: cfg.OIDCGroupsClaim, GroupRoles: roles,
		Audience: cfg.OIDCAudience, Name: cfg.OIDCProviderName}, store, log)
}
