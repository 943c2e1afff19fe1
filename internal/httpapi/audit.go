package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// audited appends every request that changed something (a write that succeeded, dry runs aside) to the
// audit trail, with its actor, its request id (X-Request-Id, made when the client sent none, and
// answered) and its path. It runs inside authenticate, so the caller is known.
func audited(trail marketplace.AuditService, log *slog.Logger) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		requestID := ctx.Header("X-Request-Id")
		if requestID == "" || len(requestID) > 100 {
			b := make([]byte, 8)
			rand.Read(b)
			requestID = hex.EncodeToString(b)
		}
		ctx.SetHeader("X-Request-Id", requestID)
		note := &marketplace.AuditNote{}
		next(huma.WithContext(ctx, marketplace.WithAuditNote(ctx.Context(), note)))
		method, u := ctx.Operation().Method, ctx.URL()
		if method == http.MethodGet || method == http.MethodHead || ctx.Status() >= 400 || ctx.Status() == 0 ||
			u.Query().Get("dry_run") == "true" {
			return
		}
		e := &marketplace.AuditEvent{RequestID: requestID, Action: method + " " + ctx.Operation().Path, Resource: u.Path}
		e.Actor, e.OwnerID = marketplace.CallerFrom(ctx.Context()).Actor()
		if note.OrganizationID != 0 {
			e.OrganizationID = &note.OrganizationID
		}
		detail := map[string]any{"status": ctx.Status(), "operation": ctx.Operation().OperationID}
		for k, v := range note.Detail {
			detail[k] = v
		}
		e.Detail, _ = json.Marshal(detail)
		// The change is made; recording it must not depend on the client staying to read the answer.
		if err := trail.AppendAudit(context.WithoutCancel(ctx.Context()), e); err != nil {
			log.Error("a change could not be added to the audit trail", "request_id", requestID, "action", e.Action, "err", err)
		}
	}
}

type auditInput struct {
	Resource string `query:"resource" maxLength:"200" doc:"only events of this resource: deployment:<id> or a request path such as /api/apps/3"`
	Actor    string `query:"actor" maxLength:"100" doc:"only events of this actor: user:<id>, operator, anonymous or marketplace"`
	PageQuery
}

// listAudit is the audit trail in the order things happened: all of it for the operator, the events of
// the caller's own resources for a user.
func listAudit(trail marketplace.AuditService, log *slog.Logger) func(context.Context, *auditInput) (*paged[[]*marketplace.AuditEvent], error) {
	return func(ctx context.Context, in *auditInput) (*paged[[]*marketplace.AuditEvent], error) {
		events, total, err := trail.FindAuditEvents(ctx, marketplace.AuditFilter{Resource: in.Resource, Actor: in.Actor, Page: in.page()})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, total, events), nil
	}
}
