package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// sessionCookie holds the session id. The browser sends it only to this site (SameSite=Lax), scripts
// cannot read it (HttpOnly), and over TLS, or behind a proxy that serves HTTPS (SecureCookies), it is
// Secure.
const sessionCookie = "mp_session"

// csrfField is the form field (and csrfHeader the header, for htmx) that carries the session's
// synchronizer token on every state-changing request.
const (
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
)

// randomToken is 32 random bytes in base64url.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSessionID is what the store keeps of a session id.
func hashSessionID(id string) []byte {
	h := sha256.Sum256([]byte("web-session:" + id))
	return h[:]
}

// operatorCheck reports whether a token hash is the configured operator token's; never without one.
func operatorCheck(operatorToken string, hash func(string) []byte) func([]byte) bool {
	want := hash(operatorToken)
	return func(got []byte) bool {
		return operatorToken != "" && subtle.ConstantTimeCompare(got, want) == 1
	}
}

type sessionKey struct{}

// sessionFrom returns the signed-in session of a request that went through signedIn.
func sessionFrom(ctx context.Context) *marketplace.Session {
	s, _ := ctx.Value(sessionKey{}).(*marketplace.Session)
	return s
}

// signedIn puts the session's caller in the context, so the store authorizes as it does for a bearer
// token, and checks the synchronizer token of every state-changing request. A browser without a
// session is sent to sign in.
func (s *server) signedIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := s.session(r)
		if sess == nil {
			// An htmx request (a status poll) would follow a redirect and swap the sign-in page into the
			// part it updates: htmx sends the whole page there instead.
			if r.Header.Get("HX-Request") == "true" {
				next := "/"
				if u, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil {
					next = safeNext(u.RequestURI())
				}
				w.Header().Set("HX-Redirect", "/signin?next="+url.QueryEscape(next))
				s.fail(w, r, http.StatusUnauthorized, "Your session has ended: sign in again.")
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.fail(w, r, http.StatusUnauthorized, "Your session has ended: sign in again.")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			sent := r.Header.Get(csrfHeader)
			if sent == "" {
				sent = r.PostFormValue(csrfField)
			}
			if subtle.ConstantTimeCompare([]byte(sent), []byte(sess.CSRFToken)) != 1 {
				s.fail(w, r, http.StatusForbidden, "This form is stale or did not come from this site (its CSRF token does not match your session). Reload the page and try again.")
				return
			}
		}
		next.ServeHTTP(w, withSession(r, sess))
	})
}

// withSession is r with the session and its caller in the context.
func withSession(r *http.Request, sess *marketplace.Session) *http.Request {
	caller := callerOf(sess)
	noteCaller(r.Context(), caller)
	ctx := marketplace.WithCaller(r.Context(), caller)
	return r.WithContext(context.WithValue(ctx, sessionKey{}, sess))
}

// callerOf is who a session's requests act as.
func callerOf(sess *marketplace.Session) marketplace.Caller {
	return marketplace.Caller{UserID: sess.UserID, Operator: sess.OperatorTokenHash != nil}
}

// session returns the live session of a request's cookie, or nil. An operator's session ends when the
// operator token it was opened with is no longer the configured one.
func (s *server) session(r *http.Request) *marketplace.Session {
	idHash := sessionIDHash(r)
	if idHash == nil {
		return nil
	}
	sess, err := s.Store.FindSession(r.Context(), idHash)
	if err != nil {
		if marketplace.ErrorCode(err) == marketplace.EINTERNAL {
			s.Logger.ErrorContext(r.Context(), "find session", "err", err)
		}
		return nil
	}
	if !s.live(sess) {
		return nil
	}
	return sess
}

// sessionIDHash is the hash of the session id of a request's cookie, or nil without one.
func sessionIDHash(r *http.Request) []byte {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil
	}
	return hashSessionID(c.Value)
}

// live reports whether a session the store found may still be used: an operator's only while the
// operator token it was opened with is the configured one.
func (s *server) live(sess *marketplace.Session) bool {
	return sess.OperatorTokenHash == nil || s.isOperator(sess.OperatorTokenHash)
}

// sameOrigin refuses a state-changing request that a browser says came from another site: the
// Sec-Fetch-Site and Origin headers, which pages cannot forge, back up the synchronizer token (and guard
// sign-in, which has no session yet).
func (s *server) sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
				s.fail(w, r, http.StatusForbidden, "This request came from another site ("+site+"): the storefront accepts forms from its own pages only.")
				return
			}
			if origin := r.Header.Get("Origin"); origin != "" {
				u, err := url.Parse(origin)
				if err != nil || !strings.EqualFold(u.Host, r.Host) {
					s.fail(w, r, http.StatusForbidden, "This request came from another origin: the storefront accepts forms from its own pages only.")
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders keep pages out of frames and scripts to this origin.
func (s *server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY") // frame-ancestors for browsers without CSP 2
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

type signInView struct {
	Next  string
	Error string
	// SSO is the provider's name when single sign-on is configured; Tokens whether users may sign in
	// with their tokens.
	SSO    string
	Tokens bool
}

func (s *server) signInView(next, err string) signInView {
	v := signInView{Next: next, Error: err, Tokens: !s.NoTokenSignIn}
	if s.SSO != nil {
		v.SSO = s.SSO.Name()
	}
	return v
}

func (s *server) signInPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signin", "Sign in", s.signInView(safeNext(r.URL.Query().Get("next")), ""))
}

// signIn exchanges a token for a session cookie. The token itself never goes into the cookie: a
// session can be signed out without revoking the token, and it ends when the token is revoked.
func (s *server) signIn(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	if token == "" || len(token) > 200 {
		s.render(w, r, http.StatusUnprocessableEntity, "signin", "Sign in", s.signInView(next, "Paste your token: the one shown once when your user was created."))
		return
	}
	id := randomToken()
	sess := &marketplace.Session{CSRFToken: randomToken(), ExpiresAt: time.Now().UTC().Add(s.SessionTTL)}
	var err error
	if hash := s.HashToken(token); s.isOperator(hash) {
		sess.OperatorTokenHash = hash
		err = s.Store.CreateOperatorSession(r.Context(), hashSessionID(id), sess)
	} else if s.NoTokenSignIn {
		s.render(w, r, http.StatusForbidden, "signin", "Sign in", s.signInView(next, "Signing in with a token is turned off here: sign in with your organization's account."))
		return
	} else {
		err = s.Store.CreateSession(r.Context(), hashSessionID(id), hash, sess)
	}
	if err != nil {
		if marketplace.ErrorCode(err) == marketplace.EUNAUTHORIZED {
			s.render(w, r, http.StatusUnauthorized, "signin", "Sign in", s.signInView(next, "That token is not valid. Check that you pasted all of it, and that it was not revoked."))
			return
		}
		s.serverError(w, r, err)
		return
	}
	s.startSession(w, r, id, sess, next)
}

// startSession gives the browser the cookie of a session just opened, ends the one it had, and sends it
// on to next.
func (s *server) startSession(w http.ResponseWriter, r *http.Request, id string, sess *marketplace.Session, next string) {
	// The session this browser had ends: its cookie is replaced, and a copy of it opens nothing.
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" && len(c.Value) <= 100 {
		if err := s.Store.DeleteSession(r.Context(), hashSessionID(c.Value)); err != nil {
			s.Logger.WarnContext(r.Context(), "end the session replaced by a sign-in", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil || s.SecureCookies,
		SameSite: http.SameSiteLaxMode, Expires: sess.ExpiresAt})
	noteCaller(r.Context(), callerOf(sess)) // the sign-in is the session's first act, audited as its user's
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signOut deletes the session, so its cookie opens nothing even if it was copied.
func (s *server) signOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.Store.DeleteSession(r.Context(), hashSessionID(c.Value)); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: r.TLS != nil || s.SecureCookies,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// safeNext keeps a redirect after sign-in on this site: a path from the root, with no backslash and no
// control character anywhere, since a browser drops a tab or newline from a URL and reads a backslash as
// a slash ("/<tab>/evil.example" and "/\evil.example" are "//evil.example" to it).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	return next
}
