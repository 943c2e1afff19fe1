package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// audited appends every change a storefront form made to the audit trail the API's changes go to, with
// its actor, its request id (X-Request-Id, made when the browser sent none, and answered), the route
// (POST /projects) and the path. Every handler here answers a change it made with 303 See Other
// (post, redirect, get), and renders a page for anything else (a refusal, a confirmation to ask for, a
// preview): so a 303 to a write is a change, and only that is recorded, once, here. The one exception is
// a webhook's registration, answered 201 with its secret (shown once), recorded too.
func (s *server) audited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		requestID := r.Header.Get("X-Request-Id")
		if requestID == "" || len(requestID) > 100 {
			b := make([]byte, 8)
			rand.Read(b)
			requestID = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-Id", requestID)
		note := &auditNote{}
		// The store notes the organization a change was made in, the handler what it changed.
		storeNote := &marketplace.AuditNote{}
		sw := &statusWriter{ResponseWriter: w}
		ctx := marketplace.WithAuditNote(context.WithValue(r.Context(), auditNoteKey{}, note), storeNote)
		next.ServeHTTP(sw, r.WithContext(ctx))
		// 201 is a registration answered with what is shown only once (a webhook's secret), not a redirect.
		if sw.status != http.StatusSeeOther && sw.status != http.StatusCreated {
			return
		}
		e := &marketplace.AuditEvent{RequestID: requestID, Action: r.Method + " " + routeOf(r), Resource: r.URL.Path}
		e.Actor, e.OwnerID = note.caller.Actor()
		if storeNote.OrganizationID != 0 {
			e.OrganizationID = &storeNote.OrganizationID
		}
		detail := map[string]any{"status": sw.status, "via": "storefront", "location": sw.Header().Get("Location")}
		for k, v := range storeNote.Detail {
			detail[k] = v
		}
		e.Detail, _ = json.Marshal(detail)
		// The change is made; recording it must not depend on the browser staying for the answer.
		if err := s.Store.AppendAudit(context.WithoutCancel(r.Context()), e); err != nil {
			s.Logger.ErrorContext(r.Context(), "a storefront change could not be added to the audit trail", "request_id", requestID,
				"action", e.Action, "err", err)
		}
	})
}

// auditNote is where the request's caller is noted for audited, which runs before anyone is signed in:
// by signedIn for a session's request, by signIn for the session it opens.
type auditNote struct{ caller marketplace.Caller }

type auditNoteKey struct{}

// noteCaller tells audited who the request's caller is.
func noteCaller(ctx context.Context, c marketplace.Caller) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.caller = c
	}
}

// routeOf is the pattern of the route that served r (/deployments/{id}/{action}), or its path.
func routeOf(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
		return rc.RoutePattern()
	}
	return r.URL.Path
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
