package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Transport is an HTTP transport that dials only addresses the guard allows and never uses a proxy. It
// does not cap bodies; HTTPClient does.
func (g *Guard) Transport() *http.Transport { return g.transport }

// HTTPClient is a client for publishers' URLs: every dial checked, at most 5 redirects and only to http
// or https, every response body capped at the guard's limit, the whole fetch bounded by its timeout.
func (g *Guard) HTTPClient() *http.Client {
	return &http.Client{
		Transport:     limitedTransport{next: g.transport, limit: g.maxBytes},
		Timeout:       g.timeout,
		CheckRedirect: checkRedirect,
	}
}

// MaxBytes is the cap of one download.
func (g *Guard) MaxBytes() int64 { return g.maxBytes }

// checkRedirect follows at most maxRedirects redirects, and only to http or https URLs (the dialer
// checks where each one goes).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("more than %d redirects", maxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("a redirect to a %s URL: only http and https are followed", req.URL.Scheme)
	}
	return nil
}

// Get fetches rawURL and returns its body, which must be 200 OK and at most the guard's limit. Its
// errors say what failed (the status, the refused address, the limit), never what the body said.
func (g *Guard) Get(ctx context.Context, rawURL, what string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, rawURL, err)
	}
	req.Header.Set("User-Agent", "marketplace")
	resp, err := g.HTTPClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s cannot be fetched: %w", what, rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// The status code, not the remote's own reason phrase: nothing the remote wrote is repeated.
		return nil, &StatusError{What: what, URL: rawURL, Code: resp.StatusCode}
	}
	body, err := ReadAll(resp.Body, g.maxBytes, what+" "+rawURL)
	if err != nil {
		return nil, err
	}
	return body, nil
}

// StatusError is a download answered with another status than 200 OK.
type StatusError struct {
	What, URL string
	Code      int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s cannot be fetched: the server answered %d %s", e.What, e.URL, e.Code, http.StatusText(e.Code))
}

// TooLargeError is a download over the guard's limit.
type TooLargeError struct {
	What  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than the limit of %d bytes (%s)", e.What, e.Limit, MaxBytesSetting)
}

// ReadAll reads r to its end, or fails with a *TooLargeError once it has more than limit bytes. what
// names the download in the error.
func ReadAll(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	var tooLarge *TooLargeError
	if errors.As(err, &tooLarge) {
		return nil, &TooLargeError{What: what, Limit: limit}
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{What: what, Limit: limit}
	}
	return b, nil
}

// limitedTransport caps response bodies: a Content-Length over the limit fails at once, a body that
// grows over it fails when the reader gets there.
type limitedTransport struct {
	next  http.RoundTripper
	limit int64
}

func (t limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	what := "the response of " + req.URL.Redacted()
	if resp.ContentLength > t.limit {
		resp.Body.Close()
		return nil, &TooLargeError{What: what, Limit: t.limit}
	}
	resp.Body = &limitedBody{body: resp.Body, left: t.limit, limit: t.limit, what: what}
	return resp, nil
}

// limitedBody is a response body that fails once it has given more than its limit.
type limitedBody struct {
	body  io.ReadCloser
	left  int64
	limit int64
	what  string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, &TooLargeError{What: b.what, Limit: b.limit}
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, &TooLargeError{What: b.what, Limit: b.limit}
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.body.Close() }
