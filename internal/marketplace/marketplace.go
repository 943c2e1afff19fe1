// Package marketplace holds the domain of the marketplace: users, applications, projects, deployments,
// usage records, their statuses and validation rules, the error codes every layer speaks, and the
// interfaces the other packages implement (stores, queue, providers).
//
// It imports nothing of this module: postgres, queue, kubernetes, httpapi and the rest depend on it, never
// the other way round.
package marketplace

import (
	"context"
	"errors"
	"fmt"
)

// Error codes. Each maps to exactly one HTTP status in package httpapi.
const (
	ECONFLICT     = "conflict"     // the request is valid but the current state forbids it (409)
	EINVALID      = "invalid"      // the input is wrong; the message says what to fix (422)
	ENOTFOUND     = "not_found"    // absent, or belongs to another tenant (404)
	EUNAUTHORIZED = "unauthorized" // no valid token (401)
	EINTERNAL     = "internal"     // a bug or an outage (500)
	// EUNAVAILABLE: a part the request needs (a worker, for a dry run) is not answering now; the message
	// says which, and the same request may succeed later (503).
	EUNAVAILABLE = "unavailable"
	// ETOOMANY: the caller asked for this too often; the message says how often it may (429).
	ETOOMANY = "too_many"
)

// Error is a domain error with a code and a message meant for the person who made the request.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("marketplace error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any other error and ""
// for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// Final marks err as a failure that no retry can change (an image the VM host refuses to boot): the
// attempt of an operation that returns it is the operation's last.
func Final(err error) error {
	if err == nil {
		return nil
	}
	return &finalError{err}
}

type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }
func (e *finalError) Unwrap() error { return e.err }

// IsFinal reports whether err's chain holds an error marked with Final.
func IsFinal(err error) bool {
	var f *finalError
	return errors.As(err, &f)
}

// ErrorMessage returns the message of the first *Error in err's chain, or "internal error".
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Caller is who makes a request: a user, or the operator (whose token comes from the environment and
// who may act on everything).
type Caller struct {
	UserID   int64
	Operator bool
	// TokenHash, set without UserID, is a bearer token's hash nobody has looked up yet: a read that can
	// check it in the statement that reads (the catalog) does so, saving a round trip, and refuses it
	// (EUNAUTHORIZED) when no user holds it. Anything else treats such a caller as nobody.
	TokenHash []byte
}

type callerKey struct{}

// WithCaller returns a context that carries the caller. Stores scope every query by it.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller of ctx. The zero Caller (no user, not operator) sees nothing.
func CallerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// OperatorContext returns a context that acts as the operator; workers and the billing job use it.
func OperatorContext(ctx context.Context) context.Context {
	return WithCaller(ctx, Caller{Operator: true})
}

// Owns reports whether the caller may act on something owned by userID.
func (c Caller) Owns(userID int64) bool { return c.Operator || (c.UserID != 0 && c.UserID == userID) }

// ResolveOwner applies the rule for ids in request bodies (publisher_id, user_id, consumer_id): omitted
// (0) means the caller; another user's id is refused unless the caller is the operator.
func (c Caller) ResolveOwner(field string, id int64) (int64, error) {
	switch {
	case id == 0 && c.Operator:
		return 0, Errorf(EINVALID, "%s is required when the operator acts", field)
	case id == 0:
		return c.UserID, nil
	case id < 0:
		return 0, Errorf(EINVALID, "%s must be a positive id", field)
	case !c.Owns(id):
		return 0, Errorf(EINVALID, "%s %d is not you: it must be your own user id (%d) or be left out", field, id, c.UserID)
	}
	return id, nil
}
