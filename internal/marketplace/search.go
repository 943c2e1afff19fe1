package marketplace

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxQueryLength bounds a catalog search (AppFilter.Query), in characters.
const MaxQueryLength = 200

// CleanQuery checks what someone typed into the catalog's search and returns it trimmed: valid UTF-8
// without control characters, at most MaxQueryLength characters, and with at least one letter or digit
// to look for, since a search for punctuation alone would match nothing and is more likely a mistake.
// An empty or blank query is no search ("").
func CleanQuery(q string) (string, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return "", nil
	}
	if !utf8.ValidString(q) {
		return "", Errorf(EINVALID, "q must be UTF-8 text")
	}
	if n := utf8.RuneCountInString(q); n > MaxQueryLength {
		return "", Errorf(EINVALID, "q must be at most %d characters, got %d", MaxQueryLength, n)
	}
	word := false
	for _, r := range q {
		if unicode.IsControl(r) {
			return "", Errorf(EINVALID, "q must not contain control characters (%U)", r)
		}
		word = word || unicode.IsLetter(r) || unicode.IsDigit(r)
	}
	if !word {
		return "", Errorf(EINVALID, "q %q has no letter or digit to search for", q)
	}
	return q, nil
}
