package chartmeta

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Bounds of what a package says about itself: a publisher could write megabytes into any field.
const (
	maxText  = 200  // one name, keyword, e-mail address or version
	maxURL   = 2000 // one URL
	maxItems = 20   // keywords, maintainers, sources, links
)

// Artifact Hub's annotations read from a chart.
const (
	annotationChanges = "artifacthub.io/changes"
	annotationLinks   = "artifacthub.io/links"
	annotationLicense = "artifacthub.io/license"
)

// describe turns what a package says about itself into what the marketplace shows, without its icon
// and README (Reader.Read adds them), and the changelog its Artifact Hub changes annotation gives. What
// is refused or cut is said in the About's notes.
func describe(info *marketplace.PackageInfo) (*marketplace.About, string) {
	a := &marketplace.About{AppVersion: bounded(info.AppVersion, maxText)}
	note := func(format string, args ...any) { a.Notes = append(a.Notes, fmt.Sprintf(format, args...)) }
	for i, k := range info.Keywords {
		if i == maxItems {
			note("only the first %d keywords are kept", maxItems)
			break
		}
		if k = bounded(k, maxText); k != "" {
			a.Keywords = append(a.Keywords, k)
		}
	}
	for i, m := range info.Maintainers {
		if i == maxItems {
			note("only the first %d maintainers are kept", maxItems)
			break
		}
		kept := marketplace.Maintainer{Name: bounded(m.Name, maxText), Email: bounded(m.Email, maxText)}
		if m.URL != "" {
			if kept.URL = webURL(m.URL); kept.URL == "" {
				note("maintainer %q: its URL is not an http or https URL", kept.Name)
			}
		}
		if kept.Name != "" {
			a.Maintainers = append(a.Maintainers, kept)
		}
	}
	if info.Home != "" {
		if a.Home = webURL(info.Home); a.Home == "" {
			note("home: not an http or https URL")
		}
	}
	for i, s := range info.Sources {
		if i == maxItems {
			note("only the first %d sources are kept", maxItems)
			break
		}
		if u := webURL(s); u != "" {
			a.Sources = append(a.Sources, u)
		} else {
			note("source %d: not an http or https URL", i+1)
		}
	}
	a.License = bounded(info.Annotations[annotationLicense], maxText)
	if raw := info.Annotations[annotationLinks]; raw != "" {
		var links []marketplace.Link
		if err := yaml.Unmarshal([]byte(raw), &links); err != nil {
			note("%s: not a list of names and URLs", annotationLinks)
		}
		for i, l := range links {
			if i == maxItems {
				note("only the first %d links are kept", maxItems)
				break
			}
			if u := webURL(l.URL); u != "" && strings.TrimSpace(l.Name) != "" {
				a.Links = append(a.Links, marketplace.Link{Name: bounded(l.Name, maxText), URL: u})
			} else {
				note("link %d: it needs a name and an http or https URL", i+1)
			}
		}
	}
	changes, err := changelog(info.Annotations[annotationChanges])
	if err != nil {
		note("%s: %v", annotationChanges, err)
	}
	return a, changes
}

// changelog is the text of Artifact Hub's changes annotation: a list of strings, or of entries with a
// kind and a description; one line each.
func changelog(raw string) (string, error) {
	if strings.TrimSpace(raw) == "" {
		return "", nil
	}
	var entries []yaml.Node
	if err := yaml.Unmarshal([]byte(raw), &entries); err != nil {
		return "", fmt.Errorf("not a list of changes")
	}
	var b strings.Builder
	for _, e := range entries {
		var line string
		switch e.Kind {
		case yaml.ScalarNode:
			line = e.Value
		case yaml.MappingNode:
			var c struct{ Kind, Description string }
			if err := e.Decode(&c); err != nil || c.Description == "" {
				return "", fmt.Errorf("a change without a description")
			}
			line = c.Description
			if c.Kind != "" {
				line = c.Kind + ": " + line
			}
		default:
			return "", fmt.Errorf("not a list of changes")
		}
		b.WriteString("- " + strings.Join(strings.Fields(line), " ") + "\n")
	}
	return bounded(strings.TrimSpace(b.String()), marketplace.MaxChangelogLength), nil
}

// webURL returns u when it is an absolute http or https URL of at most maxURL bytes, "" otherwise.
func webURL(u string) string {
	u = strings.TrimSpace(u)
	parsed, err := url.Parse(u)
	if err != nil || len(u) > maxURL || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return ""
	}
	return parsed.String()
}

// bounded returns s as valid UTF-8 without NUL or other control characters (but newlines and tabs), cut to at
// most max bytes on a character boundary.
func bounded(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) <= max {
		return strings.TrimSpace(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimSpace(s[:cut])
}
