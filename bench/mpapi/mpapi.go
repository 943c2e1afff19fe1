// Package mpapi is the little marketplace API client the benchmarks share: JSON requests with a bearer
// token, and polling a deployment until it reaches a status.
package mpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client calls the marketplace's API at Base.
type Client struct {
	Base, Token string
	HTTP        *http.Client
}

// New returns a client of the API at base, without a token yet.
func New(base string) *Client {
	return &Client{Base: strings.TrimSuffix(base, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Do sends a JSON request and decodes the answer into out, failing unless the status is want.
func (c *Client) Do(ctx context.Context, want int, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, buf)
	}
	if out != nil {
		if err := json.Unmarshal(buf, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// Deployment is what the benchmarks read of GET /api/deployments/{id}.
type Deployment struct {
	Status        string `json:"status"`
	FailureReason string `json:"failure_reason"`
	Placement     struct {
		VMName    string `json:"vm_name"`
		IPAddress string `json:"ip_address"`
	} `json:"placement"`
}

// WaitFor polls deployment id every poll until it has status want; failed is an error.
func (c *Client) WaitFor(ctx context.Context, id int64, want string, poll, timeout time.Duration) (Deployment, error) {
	deadline := time.Now().Add(timeout)
	for {
		var d Deployment
		if err := c.Do(ctx, 200, "GET", fmt.Sprintf("/api/deployments/%d", id), nil, &d); err != nil {
			return d, err
		}
		switch {
		case d.Status == want:
			return d, nil
		case d.Status == "failed":
			return d, fmt.Errorf("deployment %d failed: %s", id, d.FailureReason)
		case time.Now().After(deadline):
			return d, fmt.Errorf("deployment %d still %s after %v, want %s (%s)", id, d.Status, timeout, want, d.FailureReason)
		}
		time.Sleep(poll)
	}
}

// Listed is what the benchmarks read of one deployment of GET /api/deployments.
type Listed struct {
	ID            int64  `json:"id"`
	Status        string `json:"status"`
	FailureReason string `json:"failure_reason"`
	Attempts      int    `json:"attempts"`
}

// Deployments lists all the caller's deployments, 500 a request (the API's largest page): what a
// benchmark polls when it waits for a burst.
func (c *Client) Deployments(ctx context.Context) ([]Listed, error) {
	const limit = 500 // the API's largest page
	var all []Listed
	for page := 1; ; page++ {
		var l []Listed
		if err := c.Do(ctx, 200, "GET", fmt.Sprintf("/api/deployments?page=%d&limit=%d", page, limit), nil, &l); err != nil {
			return nil, err
		}
		all = append(all, l...)
		if len(l) < limit {
			return all, nil
		}
	}
}
