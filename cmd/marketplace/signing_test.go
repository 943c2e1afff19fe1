package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"helm.sh/helm/v4/pkg/provenance"
	"helm.sh/helm/v4/pkg/registry"

	"github.com/marketplace/marketplace/internal/chartrepo"
	"github.com/marketplace/marketplace/internal/testenv"
)

// signingKey generates an OpenPGP key and returns it with its armored public half.
func signingKey(t *testing.T, name string) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return e, b.String()
}

// provenanceOf is Helm's provenance of archive named file (as helm package --sign writes it), signed by e.
func provenanceOf(t *testing.T, e *openpgp.Entity, file string, archive []byte) []byte {
	t.Helper()
	prov, err := (&provenance.Signatory{Entity: e}).ClearSign(archive, file, []byte("apiVersion: v2\nname: x\nversion: 0.1.0\n"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(prov)
}

// signChart writes dir/file.prov, the provenance of archive signed by e.
func signChart(t *testing.T, e *openpgp.Entity, dir, file string, archive []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, file+".prov"), provenanceOf(t, e, file, archive), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSignedCharts publishes charts from a real chart repository that serves .prov files beside them: one
// signed with the publisher's registered key is verified (the mark in the application and its versions),
// a tampered one and one signed by another key are refused at publish (422), an unsigned one is published
// unverified; OCI charts pushed with a provenance layer likewise. With MARKETPLACE_REQUIRE_SIGNED_CHARTS
// the unsigned chart is refused at publish, the install of the unverified version already published is
// refused too, and a verified chart replaced in the repository since fails its install. Another user
// neither reads nor deletes the keys.
func TestSignedCharts(t *testing.T) {
	publisherKey, publisherArmored := signingKey(t, "publisher")
	otherKey, _ := signingKey(t, "other")
	src, built := t.TempDir(), t.TempDir()
	for _, name := range []string{"signed", "tampered", "wrongkey", "unsigned"} {
		writeChart(t, src, name, `{"type": "object"}`)
	}
	if err := chartrepo.Build(src, built); err != nil {
		t.Fatal(err)
	}
	read := func(file string) []byte {
		b, err := os.ReadFile(filepath.Join(built, file))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	signChart(t, publisherKey, built, "signed-0.1.0.tgz", read("signed-0.1.0.tgz"))
	signChart(t, publisherKey, built, "tampered-0.1.0.tgz", append(read("tampered-0.1.0.tgz"), 0)) // signs other bytes
	signChart(t, otherKey, built, "wrongkey-0.1.0.tgz", read("wrongkey-0.1.0.tgz"))
	repo := httptest.NewServer(http.FileServer(http.Dir(built)))
	t.Cleanup(repo.Close)
	allow := testRepositories() + "," + repo.Listener.Addr().String()

	mp := startMarketplace(t, "serve", map[string]string{"DEPLOY_MAX_ATTEMPTS": "1", "MARKETPLACE_FETCH_ALLOW": allow})
	pubID, pub := mp.user(t, "publisher")
	_, stranger := mp.user(t, "stranger")
	keys := fmt.Sprintf("/api/users/%d/signing-keys", pubID)
	app := func(name string) map[string]any {
		return map[string]any{"name": name, "hourly_rate": 1, "deployment": map[string]any{"type": "k8s", "repoURL": repo.URL, "chartName": name}}
	}

	// Before a key is registered nothing is checked: unchecked, not verified.
	before := mp.must(t, 201, "POST", "/api/apps/new", pub, app("signed")).JSON(t)
	if sig := before["signature"].(map[string]any); sig["verified"] != false || sig["outcome"] != "unchecked" {
		t.Errorf("published without keys: signature %v, want unchecked", sig)
	}

	key := mp.must(t, 201, "POST", keys, pub, map[string]any{"armored_key": publisherArmored}).JSON(t)
	fingerprint := key["fingerprint"].(string)
	if len(fingerprint) != 40 {
		t.Fatalf("fingerprint %q", fingerprint)
	}
	mp.must(t, 409, "POST", keys, pub, map[string]any{"armored_key": publisherArmored})
	mp.must(t, 422, "POST", keys, pub, map[string]any{"armored_key": "not a key"})
	mp.must(t, 404, "GET", keys, stranger, nil)
	mp.must(t, 404, "DELETE", fmt.Sprintf("%s/%d", keys, num(t, key["id"])), stranger, nil)
	if got := mp.must(t, 200, "GET", keys, pub, nil).List(t); len(got) != 1 || got[0]["fingerprint"] != fingerprint {
		t.Fatalf("the publisher's keys: %v", got)
	}

	var verifiedID int64
	t.Run("valid signature: verified", func(t *testing.T) {
		a := mp.must(t, 201, "POST", "/api/apps/new", pub, app("signed")).JSON(t)
		verifiedID = num(t, a["id"])
		sig := a["signature"].(map[string]any)
		if sig["verified"] != true || sig["signer"] != fingerprint || !strings.HasPrefix(sig["digest"].(string), "sha256:") {
			t.Fatalf("signature %v", sig)
		}
		got := mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d", num(t, a["id"])), stranger, nil).JSON(t)
		if got["signature"].(map[string]any)["verified"] != true {
			t.Errorf("GET /api/apps/{id}: signature %v", got["signature"])
		}
		vs := mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d/versions", num(t, a["id"])), stranger, nil).List(t)
		if vs[0]["signature"].(map[string]any)["signer"] != fingerprint {
			t.Errorf("versions: %v", vs)
		}
		// The storefront's application page shows the mark, with the signer's key.
		client, _ := webSession(t, mp, stranger)
		page := get(t, client, fmt.Sprintf("%s/apps/%d", mp.URL, num(t, a["id"])), http.StatusOK)
		if !strings.Contains(page, `data-testid="verified-mark"`) || !strings.Contains(page, fingerprint) {
			t.Errorf("the application page has no verified mark")
		}
		unchecked := get(t, client, fmt.Sprintf("%s/apps/%d", mp.URL, num(t, before["id"])), http.StatusOK)
		if strings.Contains(unchecked, `data-testid="verified-mark"`) {
			t.Errorf("an unchecked version's page has the verified mark")
		}
		// A new version of the application that was published unchecked is verified now.
		v := mp.must(t, 201, "POST", fmt.Sprintf("/api/apps/%d/versions", num(t, before["id"])), pub,
			map[string]any{"hourly_rate": 1, "deployment": app("signed")["deployment"]}).JSON(t)
		if v["signature"].(map[string]any)["verified"] != true {
			t.Errorf("new version: signature %v", v["signature"])
		}
	})

	for name, want := range map[string]string{"tampered": "tampered chart", "wrongkey": "bad signature"} {
		t.Run(name+": refused", func(t *testing.T) {
			r := mp.must(t, 422, "POST", "/api/apps/new", pub, app(name))
			if !strings.Contains(string(r.Body), want) || r.ContentType != "application/problem+json" {
				t.Errorf("%s: %s %s", name, r.ContentType, r.Body)
			}
		})
	}

	unsigned := mp.must(t, 201, "POST", "/api/apps/new", pub, app("unsigned")).JSON(t)
	if sig := unsigned["signature"].(map[string]any); sig["verified"] != false || sig["outcome"] != "unsigned" {
		t.Errorf("unsigned: signature %v", sig)
	}

	t.Run("OCI: the provenance layer helm push adds", func(t *testing.T) {
		signed, tampered := testenv.Name("ocisigned"), testenv.Name("ocitampered")
		ociSrc, ociBuilt := t.TempDir(), t.TempDir()
		writeChart(t, ociSrc, signed, `{"type": "object"}`)
		writeChart(t, ociSrc, tampered, `{"type": "object"}`)
		if err := chartrepo.Build(ociSrc, ociBuilt); err != nil {
			t.Fatal(err)
		}
		credentials := filepath.Join(t.TempDir(), "credentials.json")
		if err := os.WriteFile(credentials, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		rc, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptCredentialsFile(credentials), registry.ClientOptWriter(io.Discard))
		if err != nil {
			t.Fatal(err)
		}
		push := func(chart string, signedBytes func([]byte) []byte) {
			file := chart + "-0.1.0.tgz"
			archive, err := os.ReadFile(filepath.Join(ociBuilt, file))
			if err != nil {
				t.Fatal(err)
			}
			ref := strings.TrimPrefix(tenv.OCIRepo, "oci://") + "/" + chart + ":0.1.0"
			if _, err := rc.Push(archive, ref, registry.PushOptProvData(provenanceOf(t, publisherKey, file, signedBytes(archive)))); err != nil {
				t.Fatalf("push %s: %v", ref, err)
			}
		}
		push(signed, func(b []byte) []byte { return b })
		push(tampered, func(b []byte) []byte { return append(b, 0) })
		oci := func(chart string) map[string]any {
			return map[string]any{"name": chart, "hourly_rate": 1, "deployment": map[string]any{"type": "k8s", "repoURL": tenv.OCIRepo + "/" + chart}}
		}
		a := mp.must(t, 201, "POST", "/api/apps/new", pub, oci(signed)).JSON(t)
		if sig := a["signature"].(map[string]any); sig["verified"] != true || sig["signer"] != fingerprint {
			t.Errorf("OCI signed: signature %v", sig)
		}
		if r := mp.must(t, 422, "POST", "/api/apps/new", pub, oci(tampered)); !strings.Contains(string(r.Body), "tampered chart") {
			t.Errorf("OCI tampered: %s", r.Body)
		}
		// The bundled chart in the registry has no provenance layer: unsigned.
		u := mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "bundled", "hourly_rate": 1,
			"deployment": map[string]any{"type": "k8s", "repoURL": tenv.OCIRepo + "/hello-web"}}).JSON(t)
		if sig := u["signature"].(map[string]any); sig["outcome"] != "unsigned" {
			t.Errorf("OCI unsigned: signature %v", sig)
		}
	})

	// The operator turns the setting on: the same marketplace, restarted (so no archive is in its memory).
	mp.stop()
	// Meanwhile the verified chart is replaced in the repository: the same chart, packaged again with
	// other values, another archive under the same name.
	if err := os.WriteFile(filepath.Join(src, "signed", "values.yaml"), []byte("greeting: swapped\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chartrepo.Build(src, built); err != nil {
		t.Fatal(err)
	}
	strict := sameMarketplace(mp)
	strict["MARKETPLACE_FETCH_ALLOW"], strict["MARKETPLACE_REQUIRE_SIGNED_CHARTS"] = allow, "true"
	mp2 := startMarketplace(t, "serve", strict)
	t.Run("required: unsigned refused at publish and at install", func(t *testing.T) {
		r := mp2.must(t, 422, "POST", "/api/apps/new", pub, app("unsigned"))
		if !strings.Contains(string(r.Body), "MARKETPLACE_REQUIRE_SIGNED_CHARTS") {
			t.Errorf("publish: %s", r.Body)
		}
		_, consumer := mp2.user(t, "consumer2")
		project := num(t, mp2.must(t, 201, "POST", "/api/user/project/new", consumer, map[string]any{"name": "p"}).JSON(t)["id"])
		r = mp2.must(t, 409, "POST", "/api/deployments/install", consumer, map[string]any{"application_id": num(t, unsigned["id"]), "project_id": project})
		if !strings.Contains(string(r.Body), "not a verified signed chart") {
			t.Errorf("install: %s", r.Body)
		}

		// The storefront's publisher page checks a new version's chart as the API does.
		client, csrf := webSession(t, mp2, pub)
		if s := webPost(t, mp2, client, fmt.Sprintf("/apps/%d/versions", num(t, unsigned["id"])),
			url.Values{"hourly_rate": {"2"}, "chart_version": {"0.1.0"}, "csrf": {csrf}}, nil); s != http.StatusUnprocessableEntity {
			t.Errorf("a version of the unsigned chart from the publisher page: status %d, want 422", s)
		}

		// The verified version is accepted, and its install fails on the replaced archive.
		id := num(t, mp2.must(t, 202, "POST", "/api/deployments/install", consumer, map[string]any{"application_id": verifiedID, "project_id": project}).JSON(t)["deploymentID"])
		d := mp2.waitForStatus(t, consumer, id, "failed", 2*time.Minute)
		if reason := fmt.Sprint(d["failure_reason"]); !strings.Contains(reason, "not the one verified") {
			t.Errorf("failure reason %q", reason)
		}
	})
}
