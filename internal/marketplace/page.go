package marketplace

import (
	"regexp"
	"strings"
)

// Page is one slice of a list in its stable order: the items from (Number-1)*Limit, at most Limit of
// them. A zero Limit means the whole list.
type Page struct {
	Number int
	Limit  int
}

// Offset is how many items come before the page.
func (p Page) Offset() int {
	if p.Number < 1 || p.Limit == 0 {
		return 0
	}
	return (p.Number - 1) * p.Limit
}

// Quotas bound what one user may own at once, whoever acts for it (the operator too): a shared cluster
// must not be filled by one tenant. Zero means no limit.
type Quotas struct {
	Projects    int // projects not deleted
	Deployments int // deployments not uninstalled
	Apps        int // applications in the catalog (neither deleted nor retired)
}

// userinfoRE finds the credentials of a URL (scheme://user:password@), wherever it appears in a text.
var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s"']*@`)

// RedactedUserinfo replaces the credentials of a URL shown to anyone.
const RedactedUserinfo = "REDACTED"

// RedactURLs hides the credentials of every URL in s (https://user:pass@host becomes
// https://REDACTED@host): a publisher's repository credentials are kept for fetching but never shown,
// neither in the application nor in an error a consumer reads.
func RedactURLs(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return userinfoRE.ReplaceAllString(s, "${1}"+RedactedUserinfo+"@")
}
