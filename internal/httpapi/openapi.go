package httpapi

import (
	"log/slog"

	"github.com/danielgtaylor/huma/v2"
)

// OpenAPI returns the document the handlers serve at /openapi.json, built from the same registrations
// without starting a server or opening anything, for the generated client and its drift check.
func OpenAPI() *huma.OpenAPI {
	_, api := newRouter(Deps{Logger: slog.New(slog.DiscardHandler)})
	return api.OpenAPI()
}
