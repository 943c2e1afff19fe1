package marketplace

import (
	"context"
	"time"
)

// Session is a storefront sign-in: a browser's cookie stands for the token it signed in with, until the
// session expires, is signed out, or that token is revoked.
type Session struct {
	UserID int64
	// OperatorTokenHash is set for the operator's session: the hash of the operator token it was opened
	// with, which must still be the configured one.
	OperatorTokenHash []byte
	// CSRFToken is the synchronizer token every state-changing request of the session must carry.
	CSRFToken string
	ExpiresAt time.Time
}

// SessionService stores sessions by the hash of their id only.
type SessionService interface {
	// CreateSession opens a session for the user of the token whose hash is tokenHash, tied to that
	// token; EUNAUTHORIZED when no such token exists.
	CreateSession(ctx context.Context, idHash, tokenHash []byte, s *Session) error
	// CreateOperatorSession opens an operator's session (s.OperatorTokenHash set).
	CreateOperatorSession(ctx context.Context, idHash []byte, s *Session) error
	// FindSession returns a live session; EUNAUTHORIZED when it is unknown, expired or its token revoked.
	FindSession(ctx context.Context, idHash []byte) (*Session, error)
	// FindAppsInSession is FindSession and AppService.FindApps in one round trip, for the storefront's
	// busiest page: the live session and one page of the catalog with its total, or EUNAUTHORIZED (and
	// no page) as FindSession. Its applications carry what a catalog card shows: id, publisher, name,
	// description, hourly rate and deployment type (not the deployment's details, inputs or times).
	//
	// known is the catalog generation of a copy of this page the caller kept (0: none): when the
	// catalog is still at that generation the page is not read (CatalogCards.Unchanged), the session
	// is checked all the same.
	FindAppsInSession(ctx context.Context, idHash []byte, f AppFilter, known int64) (*CatalogCards, error)
	// DeleteSession ends a session; ending an unknown one is not an error.
	DeleteSession(ctx context.Context, idHash []byte) error
}

// CatalogCards is a page of the catalog read in a session (SessionService.FindAppsInSession).
type CatalogCards struct {
	Session *Session
	// Generation is the catalog's generation the page was read at. It moves on in every transaction
	// that changes an application (anything a card shows among it), so one generation is one catalog:
	// a page rendered at a generation is that page for as long as the catalog stays at it.
	Generation int64
	// Unchanged reports that Generation is the one the caller said it knew: Apps and Total were not
	// read.
	Unchanged bool
	// Personal reports a page with private applications the caller sees: it is this caller's alone, not
	// the public catalog's page at Generation, and must not be kept for anyone else.
	Personal bool
	Apps     []*Application
	Total    int
}

// QueueStats is what one work queue holds: tasks by state and how long the oldest waiting one has
// waited.
type QueueStats struct {
	Queue                                      string
	Pending, Active, Scheduled, Retry, Archive int
	OldestWaiting                              time.Duration
}
