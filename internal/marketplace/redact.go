package marketplace

import (
	"regexp"
	"strings"
)

// A publisher's URLs may carry credentials (https://user:password@host/...): a chart repository's
// repoURL and a vm application's image. They are stored, because fetching needs them, and never shown:
// not to the publisher (any answer may end up in a log or a screenshot) and above all not to consumers,
// who read the application, its versions and the failure reasons of their deployments.

// userinfoRE finds the credentials of a URL (scheme://user:password@), wherever it appears in a text.
var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s"']*@`)

// RedactedUserinfo replaces the credentials of a URL shown to anyone.
const RedactedUserinfo = "REDACTED"

// RedactURLs hides the credentials of every URL in s (https://user:pass@host becomes
// https://REDACTED@host): a publisher's repository and image credentials are kept for fetching but
// never shown, neither in the application nor in an error a consumer reads.
func RedactURLs(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return userinfoRE.ReplaceAllString(s, "${1}"+RedactedUserinfo+"@")
}

// Redacted is s as it is shown: the credentials of its chart repository and image URLs hidden.
func (s DeploymentSpec) Redacted() DeploymentSpec {
	s.RepoURL, s.Image = RedactURLs(s.RepoURL), RedactURLs(s.Image)
	return s
}

// KeepStoredCredentials lets a publisher send back the spec it read: a URL whose credentials are the
// redacted placeholder, the rest of it unchanged, means the stored URL with its credentials.
func (s *DeploymentSpec) KeepStoredCredentials(stored DeploymentSpec) {
	for _, f := range []struct {
		sent   *string
		stored string
	}{{&s.RepoURL, stored.RepoURL}, {&s.Image, stored.Image}} {
		if *f.sent != f.stored && *f.sent == RedactURLs(f.stored) {
			*f.sent = f.stored
		}
	}
}
