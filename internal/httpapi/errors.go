package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// statusOf is the one mapping from domain error codes to HTTP statuses.
var statusOf = map[string]int{
	marketplace.ECONFLICT:     http.StatusConflict,
	marketplace.EINVALID:      http.StatusUnprocessableEntity,
	marketplace.ENOTFOUND:     http.StatusNotFound,
	marketplace.EFORBIDDEN:    http.StatusForbidden,
	marketplace.EUNAUTHORIZED: http.StatusUnauthorized,
	marketplace.EINTERNAL:     http.StatusInternalServerError,
	marketplace.EUNAVAILABLE:  http.StatusServiceUnavailable,
	marketplace.ETOOMANY:      http.StatusTooManyRequests,
}

// problem turns a domain error into a problem+json response. Internal errors are logged with their
// detail and shown only as "internal error". A URL quoted in a message never shows its credentials. An
// unavailable part (no worker up) says when to ask again.
func problem(ctx context.Context, log *slog.Logger, err error) error {
	status := problemStatus(ctx, log, err)
	p := huma.NewError(status, marketplace.RedactURLs(marketplace.ErrorMessage(err)))
	if status == http.StatusServiceUnavailable {
		return huma.ErrorWithHeaders(p, http.Header{"Retry-After": {"5"}})
	}
	return p
}

// statusClientClosedRequest is nginx's status for a request whose client went away before the answer: no
// one reads it, but the logs and the request metrics then tell a client's leaving from a fault of ours.
const statusClientClosedRequest = 499

// problemStatus is the status of err's problem; an internal error is logged here, once.
func problemStatus(ctx context.Context, log *slog.Logger, err error) int {
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		log.InfoContext(ctx, "request cancelled by its client", "err", err)
		return statusClientClosedRequest
	}
	status := statusOf[marketplace.ErrorCode(err)]
	if status == http.StatusInternalServerError {
		log.ErrorContext(ctx, "internal error", "err", err)
	}
	return status
}

// problemTypes gives every problem a type URI by status, so clients can tell the classes apart.
func problemTypes(_ huma.Context, _ string, v any) (any, error) {
	if e, ok := v.(*huma.ErrorModel); ok && (e.Type == "" || e.Type == "about:blank") {
		slug := strings.ToLower(strings.ReplaceAll(http.StatusText(e.Status), " ", "-"))
		if e.Status == http.StatusUnprocessableEntity {
			slug = "validation"
		}
		e.Type = "/problems/" + slug
	}
	return v, nil
}
