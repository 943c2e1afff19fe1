package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/marketplace/marketplace/internal/testenv"
)

// ssoMarketplace starts a marketplace that signs in through the test's Hydra, with its client registered
// there, and returns it with the client's id and secret.
func ssoMarketplace(t *testing.T, extra map[string]string) (mp *instance, clientID, secret string) {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	clientID, secret = tenv.Hydra(t).Client(t, []string{"http://" + addr + "/signin/oidc/callback", cliRedirect}, "marketplace-api")
	env := map[string]string{"MARKETPLACE_ADDR": addr, "OIDC_ISSUER": tenv.Hydra(t).Issuer, "OIDC_CLIENT_ID": clientID,
		"OIDC_CLIENT_SECRET": secret, "OIDC_AUDIENCE": "marketplace-api", "OIDC_PROVIDER_NAME": "Test provider"}
	for k, v := range extra {
		env[k] = v
	}
	return startMarketplace(t, "serve", env), clientID, secret
}

// cliRedirect is a redirect URI nothing listens on: Hydra.Tokens stops at it and takes the code.
const cliRedirect = "http://127.0.0.1:1/callback"

// ssoSignIn signs subject in through the provider in a fresh browser context, from the storefront's
// sign-in page to the catalog.
func ssoSignIn(t *testing.T, mp *instance, subject string) {
	t.Helper()
	ctx := browserContext(t)
	var location, signout string
	step, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := chromedp.Run(step,
		chromedp.Navigate(mp.URL+"/signin"),
		chromedp.Click(`#sso`, chromedp.ByQuery),
		chromedp.WaitVisible(`#subject`, chromedp.ByQuery),
		chromedp.SendKeys(`#subject`, subject, chromedp.ByQuery),
		chromedp.Click(`#login`, chromedp.ByQuery),
		chromedp.WaitVisible(`form.signout`, chromedp.ByQuery),
		chromedp.Location(&location),
		chromedp.AttributeValue(`form.signout`, "action", &signout, nil, chromedp.ByQuery))
	if err != nil {
		var body string
		look, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		chromedp.Run(look, chromedp.Location(&location), chromedp.Text(`body`, &body, chromedp.ByQuery))
		t.Fatalf("sign in through the provider as %s: %v; the browser is at %s: %.2000s", subject, err, location, body)
	}
	if location != mp.URL+"/" || signout != "/signout" {
		t.Fatalf("after signing in through the provider: at %s (sign-out form %q), want the catalog signed in", location, signout)
	}
}

// roles are subject's user's roles by organization id, as the organizations' founder reads them.
func roles(t *testing.T, mp *instance, founder string, user int64, orgs ...int64) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	for _, org := range orgs {
		for _, m := range mp.must(t, 200, "GET", fmt.Sprintf("/api/orgs/%d/members", org), founder, nil).JSON(t)["members"].([]any) {
			m := m.(map[string]any)
			if num(t, m["user_id"]) == user {
				out[org] = m["role"].(string)
			}
		}
	}
	return out
}

// TestSingleSignOn signs a user in through a real OpenID provider (Ory Hydra) in Chromium: created on
// first sign-in, its groups mapped to organization roles at each sign-in (a group removed at the provider
// removes its role, a role granted by hand stays), each sign-in audited; the provider's access tokens
// work on the API when their audience is the marketplace's, and are refused otherwise or forged.
func TestSingleSignOn(t *testing.T) {
	mp, clientID, secret := ssoMarketplace(t, map[string]string{
		"OIDC_GROUP_ROLES": "platform-admins=platform:admin, devs=platform:deployer, devs=tools:publisher"})
	_, founder := mp.user(t, "founder")
	platform := num(t, mp.must(t, 201, "POST", "/api/orgs/new", founder, map[string]any{"name": "platform"}).JSON(t)["id"])
	tools := num(t, mp.must(t, 201, "POST", "/api/orgs/new", founder, map[string]any{"name": "tools"}).JSON(t)["id"])

	subject := testenv.Name("alice-")
	tenv.Hydra(t).SetGroups(subject, "platform-admins", "devs", "unrelated")
	ssoSignIn(t, mp, subject)
	var user int64
	query(t, mp.DatabaseURL, `SELECT user_id FROM oidc_identities WHERE issuer = $1 AND subject = $2`, []any{tenv.Hydra(t).Issuer, subject}, &user)
	if got := roles(t, mp, founder, user, platform, tools); got[platform] != "admin" || got[tools] != "publisher" {
		t.Fatalf("after the first sign-in: roles %v, want admin of platform (its first grant) and publisher of tools", got)
	}

	// An admin makes the user a viewer of tools by hand: sign-ins leave that role alone from now on.
	mp.must(t, 200, "PUT", fmt.Sprintf("/api/orgs/%d/members/%d", tools, user), founder, map[string]any{"role": "viewer"})
	tenv.Hydra(t).SetGroups(subject, "devs")
	ssoSignIn(t, mp, subject)
	if got := roles(t, mp, founder, user, platform, tools); got[platform] != "deployer" || got[tools] != "viewer" {
		t.Fatalf("after platform-admins was removed: roles %v, want deployer of platform, viewer of tools (by hand)", got)
	}
	tenv.Hydra(t).SetGroups(subject)
	ssoSignIn(t, mp, subject)
	if got := roles(t, mp, founder, user, platform, tools); len(got) != 1 || got[tools] != "viewer" {
		t.Fatalf("after every group was removed: roles %v, want only viewer of tools (by hand)", got)
	}
	var users int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM oidc_identities WHERE subject = $1`, []any{subject}, &users)
	if users != 1 {
		t.Fatalf("three sign-ins of one subject made %d users, want 1", users)
	}

	// Every sign-in is in the audit trail: who, how, through which provider, and what it changed.
	var signins []map[string]any
	for _, e := range mp.must(t, 200, "GET", "/api/audit?limit=500", mp.Environ["MARKETPLACE_ADMIN_TOKEN"], nil).List(t) {
		if e["action"] == "signin" && e["actor"] == fmt.Sprintf("user:%d", user) {
			signins = append(signins, e["detail"].(map[string]any))
		}
	}
	if len(signins) != 3 || signins[0]["how"] != "oidc" || signins[0]["issuer"] != tenv.Hydra(t).Issuer || signins[0]["subject"] != subject ||
		fmt.Sprint(signins[2]["removed"]) != "[platform:deployer]" {
		t.Fatalf("sign-ins in the audit trail: %v, want 3 through %s, the last removing platform:deployer", signins, tenv.Hydra(t).Issuer)
	}

	// The provider's access token is a bearer token of the API for the same user.
	tok := tenv.Hydra(t).Tokens(t, clientID, secret, cliRedirect, subject, "marketplace-api")
	access := tok["access_token"].(string)
	orgs := mp.must(t, 200, "GET", "/api/orgs", access, nil).JSON(t)["organizations"].([]any)
	if len(orgs) != 1 || num(t, orgs[0].(map[string]any)["id"]) != tools {
		t.Fatalf("GET /api/orgs with the provider's access token: %v, want tools only", orgs)
	}
	// Refused: a signature not the provider's, an ID token, another audience's access token, garbage.
	parts := strings.Split(access, ".")
	sig := []byte(parts[2])
	if sig[len(sig)/2] == 'A' { // another base64url character: the same length, another signature
		sig[len(sig)/2] = 'B'
	} else {
		sig[len(sig)/2] = 'A'
	}
	forged := parts[0] + "." + parts[1] + "." + string(sig)
	otherID, otherSecret := tenv.Hydra(t).Client(t, []string{cliRedirect}, "other-api")
	other := tenv.Hydra(t).Tokens(t, otherID, otherSecret, cliRedirect, subject, "other-api")["access_token"].(string)
	for what, bad := range map[string]string{"a forged signature": forged, "an ID token": tok["id_token"].(string),
		"another audience's access token": other, "three dots": "a.b.c"} {
		if r := mp.call(t, "GET", "/api/orgs", bad, nil); r.Status != http.StatusUnauthorized {
			t.Errorf("GET /api/orgs with %s: %d %s, want 401", what, r.Status, r.Body)
		}
	}
}

// TestSingleSignOnStateMismatch: a callback whose state is not the one this browser was given, or that
// this browser never started, opens no session.
func TestSingleSignOnStateMismatch(t *testing.T) {
	mp, _, _ := ssoMarketplace(t, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(mp.URL + "/signin/oidc?next=/deployments")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	to, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(to.String(), tenv.Hydra(t).Issuer) ||
		to.Query().Get("code_challenge_method") != "S256" || to.Query().Get("nonce") == "" || to.Query().Get("state") == "" {
		t.Fatalf("GET /signin/oidc: %d to %s, want a redirect to the provider with state, nonce and an S256 PKCE challenge", resp.StatusCode, to)
	}
	var flow *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "mp_oidc" {
			flow = c
		}
	}
	if flow == nil || !flow.HttpOnly {
		t.Fatalf("GET /signin/oidc set no HttpOnly flow cookie: %v", resp.Cookies())
	}
	for what, cookie := range map[string]*http.Cookie{"another state": flow, "no flow cookie": nil} {
		req, _ := http.NewRequest("GET", mp.URL+"/signin/oidc/callback?code=stolen&state=not-"+url.QueryEscape(to.Query().Get("state")), nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("callback with %s: %d, want 400", what, resp.StatusCode)
		}
		for _, c := range resp.Cookies() {
			if c.Name == "mp_session" && c.Value != "" {
				t.Errorf("callback with %s opened a session", what)
			}
		}
	}
	var sessions int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM web_sessions`, nil, &sessions)
	if sessions != 0 {
		t.Fatalf("%d sessions after refused callbacks, want 0", sessions)
	}
}

// TestTokenSignInTurnedOff: with STOREFRONT_TOKEN_SIGNIN=false a user's token opens no session (the
// operator's still does), and the sign-in page offers the provider.
func TestTokenSignInTurnedOff(t *testing.T) {
	mp, _, _ := ssoMarketplace(t, map[string]string{"STOREFRONT_TOKEN_SIGNIN": "false"})
	_, token := mp.user(t, "tokenuser")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signIn := func(token string) int {
		req, _ := http.NewRequest("POST", mp.URL+"/signin", strings.NewReader(url.Values{"token": {token}, "next": {"/"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := signIn(token); got != http.StatusForbidden {
		t.Errorf("a user's token sign-in with STOREFRONT_TOKEN_SIGNIN=false: %d, want 403", got)
	}
	if got := signIn(mp.Environ["MARKETPLACE_ADMIN_TOKEN"]); got != http.StatusSeeOther {
		t.Errorf("the operator's token sign-in: %d, want 303", got)
	}
	page := mp.must(t, 200, "GET", "/signin", "", nil)
	if !strings.Contains(string(page.Body), `id="sso" href="/signin/oidc?next=%2f"`) {
		t.Errorf("the sign-in page offers no provider: %s", page.Body)
	}
}
