package oidc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// flowCookie carries a sign-in in flight from Begin to Finish: its state, nonce, PKCE verifier and the
// page to return to. It is HttpOnly, limited to the callback's path and lives ten minutes; SameSite=Lax
// lets the provider's redirect (a top-level GET) bring it back, and nothing else.
const flowCookie = "mp_oidc"

const flowTTL = 10 * time.Minute

func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// redirectURL is the configured callback, or this request's own.
func (p *Provider) redirectURL(r *http.Request, secure bool) string {
	if p.cfg.RedirectURL != "" {
		return p.cfg.RedirectURL
	}
	scheme := "http"
	if r.TLS != nil || secure {
		scheme = "https"
	}
	return scheme + "://" + r.Host + CallbackPath
}

// Begin sends the browser to the provider, with a new state, nonce and PKCE verifier that only this
// browser holds (flowCookie). next is where Finish returns, already checked by the caller.
func (p *Provider) Begin(w http.ResponseWriter, r *http.Request, next string, secure bool) {
	state, nonce, verifier := random(), random(), oauth2.GenerateVerifier()
	value := strings.Join([]string{state, nonce, verifier, base64.RawURLEncoding.EncodeToString([]byte(next))}, ".")
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: value, Path: CallbackPath, HttpOnly: true, Secure: r.TLS != nil || secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(flowTTL / time.Second)})
	oc := p.oauth
	oc.RedirectURL = p.redirectURL(r, secure)
	http.Redirect(w, r, oc.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusSeeOther)
}

// SignedIn is a finished sign-in.
type SignedIn struct {
	UserID int64
	// Next is the page to return to.
	Next string
}

// Finish completes the sign-in the provider sent the browser back from: the state must be the one this
// browser was given, the code is exchanged with its PKCE verifier, the ID token's signature, issuer,
// audience, expiry and nonce are checked. The user of (issuer, subject) is found or created, its roles set
// from its groups, and the sign-in is added to the audit trail. A refusal is EINVALID or EUNAUTHORIZED,
// with a message for the person signing in.
func (p *Provider) Finish(w http.ResponseWriter, r *http.Request, secure bool) (*SignedIn, error) {
	c, err := r.Cookie(flowCookie)
	// The flow is used once, whatever happens.
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: "", Path: CallbackPath, HttpOnly: true, Secure: r.TLS != nil || secure,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
	if err != nil || len(c.Value) > 1000 {
		return nil, marketplace.Errorf(marketplace.EINVALID, "this sign-in was not started in this browser, or took longer than %s: sign in again", flowTTL)
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 {
		return nil, marketplace.Errorf(marketplace.EINVALID, "this sign-in's cookie is damaged: sign in again")
	}
	state, nonce, verifier := parts[0], parts[1], parts[2]
	nextBytes, _ := base64.RawURLEncoding.DecodeString(parts[3])
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		return nil, marketplace.Errorf(marketplace.EINVALID, "the provider answered a sign-in this browser did not start (its state does not match): sign in again")
	}
	if e := q.Get("error"); e != "" {
		return nil, marketplace.Errorf(marketplace.EUNAUTHORIZED, "the provider refused the sign-in: %s %s", e, q.Get("error_description"))
	}
	code := q.Get("code")
	if code == "" {
		return nil, marketplace.Errorf(marketplace.EINVALID, "the provider sent no authorization code: sign in again")
	}
	oc := p.oauth
	oc.RedirectURL = p.redirectURL(r, secure)
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		p.log.WarnContext(ctx, "oidc code exchange", "issuer", p.cfg.Issuer, "err", err)
		return nil, marketplace.Errorf(marketplace.EUNAUTHORIZED, "the provider did not accept this sign-in's code: sign in again")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, marketplace.Errorf(marketplace.EUNAUTHORIZED, "the provider sent no ID token")
	}
	idt, err := p.idTokens.Verify(ctx, raw)
	if err != nil {
		p.log.WarnContext(ctx, "oidc id token", "issuer", p.cfg.Issuer, "err", err)
		return nil, marketplace.Errorf(marketplace.EUNAUTHORIZED, "the provider's ID token is not valid: %v", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, marketplace.Errorf(marketplace.EUNAUTHORIZED, "the ID token was not issued for this sign-in (its nonce does not match): sign in again")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("read the ID token's claims: %w", err)
	}
	id := marketplace.Identity{Issuer: idt.Issuer, Subject: idt.Subject, Name: nameOf(claims)}
	var groups []string
	if p.cfg.GroupsClaim != "" {
		groups = stringsClaim(claims[p.cfg.GroupsClaim])
	}
	in, err := p.store.SignInIdentity(ctx, id, p.grants(groups))
	if err != nil {
		return nil, err
	}
	p.audit(r, id, in, groups)
	next := string(nextBytes)
	if next == "" {
		next = "/"
	}
	return &SignedIn{UserID: in.UserID, Next: next}, nil
}

// nameOf is a new user's name: the provider's name, preferred_username or email claim.
func nameOf(claims map[string]any) string {
	for _, k := range []string{"name", "preferred_username", "email"} {
		if s, ok := claims[k].(string); ok && strings.TrimSpace(s) != "" {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

// audit adds a sign-in to the audit trail: who, how, through which provider, and the roles it changed.
func (p *Provider) audit(r *http.Request, id marketplace.Identity, in *marketplace.IdentitySignIn, groups []string) {
	owner := in.UserID
	detail, _ := json.Marshal(map[string]any{"how": "oidc", "via": "storefront", "issuer": id.Issuer, "subject": id.Subject,
		"created": in.Created, "groups": groups, "granted": in.Granted, "removed": in.Removed, "kept": in.Kept, "unknown_organizations": in.Unknown})
	e := &marketplace.AuditEvent{Actor: fmt.Sprintf("user:%d", in.UserID), OwnerID: &owner, RequestID: r.Header.Get("X-Request-Id"),
		Action: "signin", Resource: "/signin/oidc", Detail: detail}
	if err := p.store.AppendAudit(context.WithoutCancel(r.Context()), e); err != nil {
		p.log.ErrorContext(r.Context(), "a sign-in could not be added to the audit trail", "user", in.UserID, "err", err)
	}
}

// UserOfAccessToken returns the user of a provider's JWT access token: its signature is checked against
// the provider's keys, its issuer, audience (Config.Audience) and expiry, and it must be an access token
// (RFC 9068: it names its client_id; an ID token does not). The user is created on first use.
// EUNAUTHORIZED for any token that fails.
func (p *Provider) UserOfAccessToken(ctx context.Context, token string) (int64, error) {
	t, err := p.access.Verify(ctx, token)
	if err != nil {
		return 0, marketplace.Errorf(marketplace.EUNAUTHORIZED, "the bearer token is not valid: %v", err)
	}
	var claims struct {
		ClientID string `json:"client_id"`
	}
	if err := t.Claims(&claims); err != nil || claims.ClientID == "" {
		return 0, marketplace.Errorf(marketplace.EUNAUTHORIZED, "the bearer token is not an access token (it names no client_id)")
	}
	return p.store.IdentityUser(ctx, marketplace.Identity{Issuer: t.Issuer, Subject: t.Subject})
}
