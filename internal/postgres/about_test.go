package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// TestSaveAbout keeps what a version says about itself for its publisher only, its icon once by content,
// and the package's changes as the changelog of a version published without one, not of one with its
// publisher's own.
func TestSaveAbout(t *testing.T) {
	op := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(op, tenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 1; i <= 2; i++ {
		if err := db.CreateUser(op, &marketplace.User{Name: "u"}, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	pub, other := marketplace.WithCaller(op, marketplace.Caller{UserID: 1}), marketplace.WithCaller(op, marketplace.Caller{UserID: 2})
	a := &marketplace.Application{Name: "described", PublisherID: 1, HourlyRate: marketplace.MustMoney("1"),
		Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}, Inputs: []marketplace.Input{}}
	if err := db.CreateApp(pub, a); err != nil {
		t.Fatal(err)
	}
	v := &marketplace.AppVersion{ApplicationID: a.ID, HourlyRate: a.HourlyRate, Deployment: a.Deployment, Changelog: "my own words"}
	if err := db.CreateVersion(pub, v); err != nil {
		t.Fatal(err)
	}
	if about, err := db.FindAbout(pub, a.ID, 1); err != nil || about != nil {
		t.Fatalf("before it is read: %v, %v; want nil", about, err)
	}
	icon := []byte("\x89PNG not really, but bytes")
	about := &marketplace.About{AppVersion: "1.0", ReadmeHTML: "<p>hi</p>", ReadAt: time.Now().UTC()}
	if err := db.SaveAbout(other, a.ID, 1, about, icon, "- changes"); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Fatalf("another user saves the publisher's about: %v, want ENOTFOUND", err)
	}
	for version := 1; version <= 2; version++ {
		if err := db.SaveAbout(pub, a.ID, version, about, icon, "- changes"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.FindAbout(other, a.ID, 1)
	if err != nil || got == nil || got.AppVersion != "1.0" || got.ReadmeHTML != "<p>hi</p>" || len(got.Icon) != len("/icons/")+64+len(".png") {
		t.Fatalf("FindAbout: %+v, %v", got, err)
	}
	png, err := db.FindIcon(other, got.Icon[len("/icons/"):len(got.Icon)-len(".png")])
	if err != nil || string(png) != string(icon) {
		t.Errorf("FindIcon: %q, %v", png, err)
	}
	if _, err := db.FindIcon(other, "../etc"); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Errorf("FindIcon of a name that is no SHA-256: %v", err)
	}
	vs, _, err := db.FindVersions(other, marketplace.VersionFilter{ApplicationID: a.ID, Page: marketplace.Page{Number: 1, Limit: 10}})
	if err != nil || len(vs) != 2 || vs[0].Changelog != "- changes" || vs[1].Changelog != "my own words" {
		t.Fatalf("changelogs: %+v, %v; want the package's changes on version 1 only", vs, err)
	}
}
