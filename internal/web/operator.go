package web

import (
	"net/http"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// QueueReader reads the work queues' depths; the queue package's Metrics.
type QueueReader interface {
	Stats() ([]marketplace.QueueStats, error)
}

type operatorView struct {
	Users      []*marketplace.User
	UserCount  int
	Queues     []marketplace.QueueStats
	QueueError string
	Runs       []*marketplace.BillingRun
	Events     []*marketplace.AuditEvent
	EventCount int
}

// operatorPage is the operator's view: users, the queues, billing runs and the latest of the audit
// trail. The store answers a user's session with the user's own rows only, so the page is the
// operator's by what it can read, and refused to anyone else outright.
func (s *server) operatorPage(w http.ResponseWriter, r *http.Request) {
	if !marketplace.CallerFrom(r.Context()).Operator {
		s.fail(w, r, http.StatusNotFound, "There is nothing at this address.")
		return
	}
	ctx := r.Context()
	var v operatorView
	var err error
	if v.Users, v.UserCount, err = s.Store.FindUsers(ctx, marketplace.Page{Number: 1, Limit: 100}); err != nil {
		s.domainError(w, r, err)
		return
	}
	if s.Queues != nil {
		if v.Queues, err = s.Queues.Stats(); err != nil {
			v.QueueError = "The queues could not be read (is Redis up?)."
			s.Logger.WarnContext(ctx, "read queues", "err", err)
		}
	}
	if v.Runs, _, err = s.Store.FindBillingRuns(ctx, marketplace.Page{Number: 1, Limit: 10}); err != nil {
		s.domainError(w, r, err)
		return
	}
	// The trail is oldest first: read its size, then its last page.
	const last = 50
	if _, v.EventCount, err = s.Store.FindAuditEvents(ctx, marketplace.AuditFilter{Page: marketplace.Page{Number: 1, Limit: 1}}); err != nil {
		s.domainError(w, r, err)
		return
	}
	page := max(1, (v.EventCount+last-1)/last)
	if v.Events, _, err = s.Store.FindAuditEvents(ctx, marketplace.AuditFilter{Page: marketplace.Page{Number: page, Limit: last}}); err != nil {
		s.domainError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "operator", "Operator", v)
}
