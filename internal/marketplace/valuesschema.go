package marketplace

import (
	"encoding/json"
)

// ValuesSchema is what an application's package says of the values it takes: their JSON schema (a
// chart's values.schema.json) and their defaults (its values.yaml). The storefront builds its install
// form from it, and the deployer checks an install's or upgrade's values against it before accepting
// the request, so a value the chart refuses is refused at once, naming the input.
type ValuesSchema struct {
	// Schema is the JSON schema document; empty when the package has none.
	Schema json.RawMessage `json:"schema,omitempty"`
	// Defaults are the package's own values, which a consumer's inputs override.
	Defaults map[string]any `json:"defaults,omitempty"`
}
