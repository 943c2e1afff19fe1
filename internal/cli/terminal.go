package cli

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable makes text from the server safe to print on a terminal. That text is written by others (an
// application's name and description by its publisher, a failure reason by a chart's templates, a console
// by a guest's image), and a terminal obeys the control characters in it: ESC [2J clears the screen,
// OSC 52 writes the clipboard, OSC 8 hides a link behind harmless text, a carriage return overwrites a line,
// U+202E reverses what follows, a newline forges a table row. Each such character, and each byte that
// is not UTF-8, is shown as its escape instead (\x1b, \r, \u202e); keep names the few that stay, such as
// "\n" for a console.
func printable(s, keep string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return r == utf8.RuneError || unsafeRune(r, keep) })
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for s = s[i:]; s != ""; {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case unsafeRune(r, keep):
			b.WriteString(escapeRune(r))
		default:
			b.WriteString(s[:size])
		}
		s = s[size:]
	}
	return b.String()
}

// unsafeRune reports whether a terminal may act on r rather than show it: the C0 and C1 controls and DEL,
// and the marks that reorder bidirectional text.
func unsafeRune(r rune, keep string) bool {
	return (unicode.IsControl(r) || isBidiControl(r)) && !strings.ContainsRune(keep, r)
}

func isBidiControl(r rune) bool {
	switch {
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

func escapeRune(r rune) string {
	switch r {
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	}
	if r < 0x80 {
		return fmt.Sprintf(`\x%02x`, r)
	}
	return fmt.Sprintf(`\u%04x`, r)
}

// jsonPrintable escapes, as \uXXXX, the characters of printable's kind that JSON lets a string hold as
// they are (C1 controls, bidirectional marks, U+2028 and U+2029); a byte that is not UTF-8 becomes U+FFFD.
// Outside its strings a JSON document holds none of them, and a valid one holds no raw C0 control: the
// document means the same, and a terminal shows it rather than obeys it.
func jsonPrintable(js []byte) []byte {
	escape := func(r rune) bool { return r == utf8.RuneError || r == 0x2028 || r == 0x2029 || unsafeRune(r, "\n\t\r") }
	s := string(js)
	if strings.IndexFunc(s, escape) < 0 {
		return js
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for _, r := range s {
		if r != utf8.RuneError && escape(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return []byte(b.String())
}
