package web

import (
	"net/http"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/oidc"
)

// oidcCallbackPath is where the provider sends the browser back.
const oidcCallbackPath = oidc.CallbackPath

// SSO is single sign-on through an OpenID provider (*oidc.Provider).
type SSO interface {
	Name() string
	Issuer() string
	// Begin sends the browser to the provider; Finish checks what it sent back and returns the user.
	Begin(w http.ResponseWriter, r *http.Request, next string, secure bool)
	Finish(w http.ResponseWriter, r *http.Request, secure bool) (*oidc.SignedIn, error)
}

func (s *server) ssoBegin(w http.ResponseWriter, r *http.Request) {
	if s.SSO == nil {
		s.fail(w, r, http.StatusNotFound, "Single sign-on is not configured here: sign in with your token.")
		return
	}
	s.SSO.Begin(w, r, safeNext(r.URL.Query().Get("next")), s.SecureCookies)
}

// ssoFinish opens a session for the user the provider signed in (the sign-in is audited by package oidc).
func (s *server) ssoFinish(w http.ResponseWriter, r *http.Request) {
	if s.SSO == nil {
		s.fail(w, r, http.StatusNotFound, "Single sign-on is not configured here: sign in with your token.")
		return
	}
	in, err := s.SSO.Finish(w, r, s.SecureCookies)
	if err != nil {
		switch marketplace.ErrorCode(err) {
		case marketplace.EINVALID:
			s.render(w, r, http.StatusBadRequest, "signin", "Sign in", s.signInView("/", err.Error()))
		case marketplace.EUNAUTHORIZED:
			s.render(w, r, http.StatusUnauthorized, "signin", "Sign in", s.signInView("/", err.Error()))
		default:
			s.serverError(w, r, err)
		}
		return
	}
	id := randomToken()
	sess := &marketplace.Session{CSRFToken: randomToken(), ExpiresAt: time.Now().UTC().Add(s.SessionTTL)}
	if err := s.Store.CreateIdentitySession(r.Context(), hashSessionID(id), in.UserID, s.SSO.Issuer(), sess); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.startSession(w, r, id, sess, safeNext(in.Next))
}
