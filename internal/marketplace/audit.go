package marketplace

import (
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// AuditEvent is one change: who did what to which resource, when, in which request.
type AuditEvent struct {
	ID        int64           `json:"id"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor" doc:"user:<id>, operator, anonymous, or marketplace (a worker, the reconciler, a request's effect)"`
	OwnerID   *int64          `json:"owner_id,omitempty" doc:"the user whose resource it is"`
	RequestID string          `json:"request_id,omitempty"`
	Action    string          `json:"action" doc:"the request (POST /api/apps/new) or the status a deployment took (deployment.installed)"`
	Resource  string          `json:"resource,omitempty" doc:"the path of the request, or deployment:<id>"`
	Detail    json.RawMessage `json:"detail"`

	// OrganizationID is the organization the change was made in; its members read the event.
	OrganizationID *int64 `json:"organization_id,omitempty" doc:"the organization the change was made in"`
}

// AuditFilter selects events.
type AuditFilter struct {
	Resource string // exact, e.g. deployment:7
	Actor    string // exact, e.g. user:3
	Page     Page
}

// AuditService appends to the audit trail and reads it: the operator reads all of it, a user the events
// of its own resources.
type AuditService interface {
	AppendAudit(ctx context.Context, e *AuditEvent) error
	FindAuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, int, error)
}

// Actor is how the audit trail names the caller (user:<id>, operator, anonymous), and the user whose
// resources its changes are (nil for the operator and for nobody).
func (c Caller) Actor() (string, *int64) {
	switch {
	case c.Operator:
		return "operator", nil
	case c.UserID != 0:
		id := c.UserID
		return "user:" + strconv.FormatInt(id, 10), &id
	}
	return "anonymous", nil
}
