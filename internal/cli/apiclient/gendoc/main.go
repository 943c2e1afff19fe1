// Command gendoc writes the OpenAPI document of the API's handlers, downgraded to OpenAPI 3.0.3 for
// oapi-codegen, to the file named by its argument. `go generate ./internal/cli/apiclient` runs it.
package main

import (
	"fmt"
	"os"

	"github.com/marketplace/marketplace/internal/httpapi"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendoc FILE")
		os.Exit(2)
	}
	doc, err := httpapi.OpenAPI().DowngradeYAML()
	if err == nil {
		err = os.WriteFile(os.Args[1], doc, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}
