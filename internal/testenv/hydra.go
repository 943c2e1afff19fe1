package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hydra is Ory Hydra, a real OpenID provider, run as a process (scripts/hydra.sh builds it) with a
// PostgreSQL database of its own and this process's login and consent pages: a user signs in by typing
// its name, and its groups are those SetGroups last gave it (read at each consent, so a group removed is
// gone at the next sign-in).
type Hydra struct {
	// Issuer is the provider's issuer as its discovery document names it; AdminURL its admin API.
	Issuer   string
	AdminURL string
	cmd      *exec.Cmd
	login    *http.Server

	mu     sync.Mutex
	groups map[string][]string
}

// SetGroups sets the groups the provider gives subject from its next sign-in on.
func (h *Hydra) SetGroups(subject string, groups ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.groups[subject] = groups
}

func (h *Hydra) groupsOf(subject string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string{}, h.groups[subject]...)
}

// startHydra migrates a database of its own and starts `hydra serve all` on free loopback ports, with
// JWT access tokens.
func (e *Env) startHydra() (*Hydra, error) {
	bin := filepath.Join(getenv("MARKETPLACE_CACHE", filepath.Join(os.Getenv("HOME"), ".cache", "marketplace")), "bin", "hydra")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no Ory Hydra binary (%v): run `bash scripts/hydra.sh` or `make test`", err)
	}
	h := &Hydra{groups: map[string][]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	loginURL := "http://" + ln.Addr().String()
	h.login = &http.Server{Handler: h.pages()}
	go h.login.Serve(ln)
	e.cleanup = append(e.cleanup, func() { h.login.Close() })

	name := fmt.Sprintf("hydra_%d_%s", os.Getpid(), randHex(3))
	if err := e.createDatabase(name); err != nil {
		return nil, err
	}
	e.cleanup = append(e.cleanup, func() { e.dropDatabase(name) })
	public, err := FreePort()
	if err != nil {
		return nil, err
	}
	admin, err := FreePort()
	if err != nil {
		return nil, err
	}
	issuer := fmt.Sprintf("http://127.0.0.1:%d", public)
	env := append(os.Environ(),
		"DSN="+strings.Replace(e.url(name), "sslmode=disable", "sslmode=disable&max_conns=10", 1),
		"URLS_SELF_ISSUER="+issuer, "URLS_LOGIN="+loginURL+"/login", "URLS_CONSENT="+loginURL+"/consent",
		"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_PUBLIC_PORT="+strconv.Itoa(public),
		"SERVE_ADMIN_HOST=127.0.0.1", "SERVE_ADMIN_PORT="+strconv.Itoa(admin),
		"SECRETS_SYSTEM=marketplace-tests-hydra-system-secret-"+randHex(8),
		"STRATEGIES_ACCESS_TOKEN=jwt", "LOG_LEVEL=warn", "SQA_OPT_OUT=true")
	var out bytes.Buffer
	migrate := exec.Command(bin, "migrate", "sql", "up", "-e", "--yes")
	migrate.Env, migrate.Stdout, migrate.Stderr = env, &out, &out
	if err := migrate.Run(); err != nil {
		return nil, fmt.Errorf("hydra migrate sql: %v: %s", err, out.String())
	}
	logf, err := os.CreateTemp("", "mp-hydra-*.log")
	if err != nil {
		return nil, err
	}
	h.cmd = exec.Command(bin, "serve", "all", "--dev")
	h.cmd.Env, h.cmd.Stdout, h.cmd.Stderr = env, logf, logf
	if err := h.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start hydra: %w", err)
	}
	e.cleanup = append(e.cleanup, func() {
		h.cmd.Process.Kill()
		h.cmd.Wait()
		logf.Close()
		os.Remove(logf.Name())
	})
	h.AdminURL = fmt.Sprintf("http://127.0.0.1:%d", admin)
	deadline := time.Now().Add(90 * time.Second)
	for {
		var doc struct {
			Issuer string `json:"issuer"`
		}
		if err := getJSON(issuer+"/.well-known/openid-configuration", &doc); err == nil && doc.Issuer != "" {
			if err := getJSON(h.AdminURL+"/health/ready", &struct{}{}); err == nil {
				h.Issuer = doc.Issuer
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("hydra did not answer in 90s: %s", log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return h, nil
}

func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// admin calls Hydra's admin API.
func (h *Hydra) admin(method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.AdminURL+path, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("hydra %s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Client registers an OAuth 2 client (authorization code and refresh token grants, a secret) that may
// redirect to redirectURIs and ask for audiences; it returns its id and secret.
func (h *Hydra) Client(tb testing.TB, redirectURIs []string, audiences ...string) (id, secret string) {
	tb.Helper()
	secret = "secret-" + randHex(16)
	var c struct {
		ClientID string `json:"client_id"`
	}
	if err := h.admin(http.MethodPost, "/admin/clients", map[string]any{
		"client_secret": secret, "grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope": "openid profile email offline_access", "redirect_uris": redirectURIs, "audience": audiences,
		"token_endpoint_auth_method": "client_secret_basic",
	}, &c); err != nil {
		tb.Fatal(err)
	}
	return c.ClientID, secret
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html><html lang="en"><head><title>Test provider</title></head><body>
<form method="post" action="/login"><input type="hidden" name="challenge" value="{{.}}">
<label for="subject">User</label> <input id="subject" name="subject"> <button id="login" type="submit">Log in</button></form></body></html>`))

// pages are the provider's login and consent pages: a user logs in by its name; consent is given at
// once, with the user's groups in the ID token (claim "groups") and in the access token.
func (h *Hydra) pages() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		loginPage.Execute(w, r.URL.Query().Get("login_challenge"))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		var out struct {
			RedirectTo string `json:"redirect_to"`
		}
		if err := h.admin(http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(r.PostFormValue("challenge")),
			map[string]any{"subject": r.PostFormValue("subject")}, &out); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, out.RedirectTo, http.StatusFound)
	})
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		challenge := url.QueryEscape(r.URL.Query().Get("consent_challenge"))
		var req struct {
			Subject   string   `json:"subject"`
			Scope     []string `json:"requested_scope"`
			Audiences []string `json:"requested_access_token_audience"`
		}
		if err := h.admin(http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+challenge, nil, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		groups := h.groupsOf(req.Subject)
		var out struct {
			RedirectTo string `json:"redirect_to"`
		}
		if err := h.admin(http.MethodPut, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+challenge, map[string]any{
			"grant_scope": req.Scope, "grant_access_token_audience": req.Audiences,
			"session": map[string]any{
				"id_token":     map[string]any{"groups": groups, "name": req.Subject},
				"access_token": map[string]any{"groups": groups},
			},
		}, &out); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, out.RedirectTo, http.StatusFound)
	})
	return mux
}

// Tokens signs subject in without a browser (the authorization code flow, followed by hand up to the
// redirect to the client) and returns the token endpoint's answer: access_token, id_token, refresh_token.
func (h *Hydra) Tokens(tb testing.TB, clientID, secret, redirectURI, subject string, audience ...string) map[string]any {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	var code string
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirectURI) {
			code = req.URL.Query().Get("code")
			return http.ErrUseLastResponse
		}
		return nil
	}}
	q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "scope": {"openid offline_access"},
		"redirect_uri": {redirectURI}, "state": {"state-" + randHex(8)}, "nonce": {"nonce-" + randHex(8)}}
	if len(audience) > 0 {
		q.Set("audience", strings.Join(audience, " "))
	}
	resp, err := client.Get(h.Issuer + "/oauth2/auth?" + q.Encode())
	if err != nil {
		tb.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The login page: its challenge, posted back with the subject.
	i := bytes.Index(body, []byte(`name="challenge" value="`))
	if i < 0 {
		tb.Fatalf("no login page from the provider: %s %s", resp.Status, body)
	}
	rest := body[i+len(`name="challenge" value="`):]
	challenge := string(rest[:bytes.IndexByte(rest, '"')])
	resp, err = client.PostForm(resp.Request.URL.Scheme+"://"+resp.Request.URL.Host+"/login", url.Values{"challenge": {challenge}, "subject": {subject}})
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if code == "" {
		tb.Fatalf("the provider sent no code: %s", resp.Status)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, h.Issuer+"/oauth2/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var tok map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("token endpoint: %s %v %v", resp.Status, tok, err)
	}
	return tok
}
