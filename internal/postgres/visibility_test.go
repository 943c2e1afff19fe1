package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// TestPrivateApplications checks who sees a private application, everywhere the store reads one: the
// catalog's pages (the first block, deep pages, searches, filters, totals, as structs and as JSON), the
// application by id, its versions, what it says about itself, installs and upgrades. A caller who may
// not see it is told it does not exist; a member removed from the organization it is shared with loses
// sight at once; a deployment made before it became private keeps running.
func TestPrivateApplications(t *testing.T) {
	op := marketplace.OperatorContext(context.Background())
	url := tenv.Database(t)
	db, err := postgres.Open(op, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := pgx.Connect(op, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(op)
	as := func(id int64) context.Context {
		return marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: id})
	}
	for i, name := range []string{"owner", "member", "other", "stranger", "admin", "orgpublisher"} {
		if err := db.CreateUser(op, &marketplace.User{Name: name}, []byte{byte(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	const owner, member, other, stranger, admin, orgPublisher = 1, 2, 3, 4, 5, 6
	// A personal page shares the kept public answers: SQL computes their slots as Go does.
	for _, key := range []string{"0  23 0 ", "2 vm 120 4380 grafana dashbo", "0 k8s 21 0 ünïcode wörds 日本"} {
		var slot int32
		if err := conn.QueryRow(op, `SELECT catalog_kept_slot($1)`, key).Scan(&slot); err != nil {
			t.Fatal(err)
		}
		if want := postgres.KeptSlot(key); slot != want {
			t.Errorf("catalog_kept_slot(%q) = %d, keptHash gives %d", key, slot, want)
		}
	}
	shared, otherOrg := &marketplace.Organization{Name: "shared"}, &marketplace.Organization{Name: "other"}
	if err := db.CreateOrganization(as(admin), shared); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateOrganization(as(other), otherOrg); err != nil {
		t.Fatal(err)
	}
	if err := db.AddMember(as(admin), &marketplace.Member{OrganizationID: shared.ID, UserID: member, Role: "deployer"}); err != nil {
		t.Fatal(err)
	}
	if err := db.AddMember(as(other), &marketplace.Member{OrganizationID: otherOrg.ID, UserID: orgPublisher, Role: "publisher"}); err != nil {
		t.Fatal(err)
	}

	// 300 public applications (deep pages are kept answers from id 256 on) and three private ones among
	// them: the owner's, shared with the organization "shared"; the organization "other"'s; the owner's,
	// shared with nobody.
	newApp := func(name string, publisher, org int64) *marketplace.Application {
		return &marketplace.Application{Name: name, Description: "an application", PublisherID: publisher, OrganizationID: org,
			HourlyRate: marketplace.MustMoney("1"), Inputs: []marketplace.Input{},
			Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}}
	}
	var public []int64
	var sharedApp, orgApp, lonelyApp *marketplace.Application
	for i := range 303 {
		a := newApp(fmt.Sprintf("public %d", i), owner, 0)
		ctx := as(owner)
		switch i {
		case 3:
			a = newApp("secret shared", owner, 0)
			a.Private, a.Shared, sharedApp = true, []int64{shared.ID}, a
		case 150:
			a = newApp("secret of other", orgPublisher, otherOrg.ID)
			a.Private, orgApp, ctx = true, a, as(orgPublisher)
		case 290:
			a = newApp("secret lonely", owner, 0)
			a.Private, lonelyApp = true, a
		}
		if err := db.CreateApp(ctx, a); err != nil {
			t.Fatal(err)
		}
		if !a.Private {
			public = append(public, a.ID)
		}
	}
	sees := map[int64][]int64{
		owner:        {sharedApp.ID, lonelyApp.ID},
		member:       {sharedApp.ID},
		other:        {orgApp.ID},
		orgPublisher: {orgApp.ID},
		stranger:     nil,
		0:            {sharedApp.ID, orgApp.ID, lonelyApp.ID}, // the operator
	}
	ctxOf := func(user int64) context.Context {
		if user == 0 {
			return op
		}
		return as(user)
	}
	checkCatalog := func(when string, user int64) {
		t.Helper()
		ctx := ctxOf(user)
		want := slices.Sorted(slices.Values(append(slices.Clone(public), sees[user]...)))
		for _, limit := range []int{7, 100} {
			var got []int64
			for page := 1; ; page++ {
				apps, total, err := db.FindApps(ctx, marketplace.AppFilter{Page: page, Limit: limit})
				if err != nil {
					t.Fatal(err)
				}
				if total != len(want) {
					t.Fatalf("%s: user %d, limit %d, page %d: total %d, want %d", when, user, limit, page, total, len(want))
				}
				if len(apps) == 0 {
					break
				}
				for _, a := range apps {
					got = append(got, a.ID)
					if a.Private != slices.Contains(sees[user], a.ID) {
						t.Errorf("%s: user %d: application %d private %v", when, user, a.ID, a.Private)
					}
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: user %d, limit %d: pages hold %v\nwant %v", when, user, limit, got, want)
			}
		}
		// The JSON pages, a deep one included, and a search.
		for _, f := range []marketplace.AppFilter{{Page: 1, Limit: 20}, {Page: 15, Limit: 20}, {Page: 1, Limit: 50, Query: "secret"}} {
			b, total, err := db.AppendAppsJSON(ctx, nil, f)
			if err != nil {
				t.Fatal(err)
			}
			var apps []marketplace.Application
			if err := json.Unmarshal(append(append([]byte("["), b...), ']'), &apps); err != nil {
				t.Fatalf("%s: %v: %s", when, err, b)
			}
			var got []int64
			for _, a := range apps {
				got = append(got, a.ID)
			}
			w := want
			if f.Query != "" {
				w = slices.DeleteFunc(slices.Clone(want), func(id int64) bool {
					return id != sharedApp.ID && id != orgApp.ID && id != lonelyApp.ID
				})
			}
			wantTotal := len(w)
			start, end := min((f.Page-1)*f.Limit, len(w)), min(f.Page*f.Limit, len(w))
			if total != wantTotal || !slices.Equal(got, w[start:end]) {
				t.Errorf("%s: user %d, %+v: total %d, ids %v; want %d, %v", when, user, f, total, got, wantTotal, w[start:end])
			}
		}
		for _, a := range []*marketplace.Application{sharedApp, orgApp, lonelyApp} {
			_, err := db.FindAppByID(ctx, a.ID)
			_, _, verr := db.FindVersions(ctx, marketplace.VersionFilter{ApplicationID: a.ID, Page: marketplace.Page{Number: 1, Limit: 10}})
			_, aerr := db.FindAbout(ctx, a.ID, 1)
			wantCode := marketplace.ENOTFOUND
			if slices.Contains(sees[user], a.ID) || slices.Contains(public, a.ID) {
				wantCode = ""
			}
			for what, e := range map[string]error{"application": err, "versions": verr, "about": aerr} {
				if marketplace.ErrorCode(e) != wantCode {
					t.Errorf("%s: user %d reads the %s of %d: %v, want %q", when, user, what, a.ID, e, wantCode)
				}
			}
		}
	}
	for user := range sees {
		checkCatalog("published", user)
	}

	// The storefront's session and a bearer token nobody has looked up yet are checked by the catalog's
	// statement itself: the same pages; a page with private applications is the caller's own (Personal),
	// read whatever generation the storefront knows.
	for user, idHash := range map[int64]string{owner: "owner session", stranger: "stranger session"} {
		if err := db.CreateSession(op, []byte(idHash), []byte{byte(user)}, &marketplace.Session{CSRFToken: "csrf", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		personal, want := len(sees[user]) > 0, len(public)+len(sees[user])
		var known int64
		for round := range 2 {
			c, err := db.FindAppsInSession(context.Background(), []byte(idHash), marketplace.AppFilter{Page: 1, Limit: 20}, known)
			if err != nil {
				t.Fatal(err)
			}
			if c.Personal != personal || c.Unchanged != (round == 1 && !personal) || (!c.Unchanged && c.Total != want) || c.Session.UserID != user {
				t.Errorf("user %d's session, round %d: personal %v, unchanged %v, total %d (want personal %v, total %d)",
					user, round, c.Personal, c.Unchanged, c.Total, personal, want)
			}
			known = c.Generation
		}
		_, total, err := db.FindApps(marketplace.WithCaller(context.Background(), marketplace.Caller{TokenHash: []byte{byte(user)}}),
			marketplace.AppFilter{Page: 1, Limit: 20})
		if err != nil || total != want {
			t.Errorf("user %d's token checked by the catalog: total %d, %v; want %d", user, total, err, want)
		}
	}

	// Installs: a stranger and a member of another organization are told it does not exist; a member of
	// the organization it is shared with installs it.
	install := func(user, app int64) (*marketplace.Deployment, error) {
		p := &marketplace.Project{Name: "p", UserID: user}
		if err := db.CreateProject(as(user), p); err != nil {
			t.Fatal(err)
		}
		d := &marketplace.Deployment{ApplicationID: app, ProjectID: p.ID, ConsumerID: user}
		return d, db.CreateDeployment(as(user), d)
	}
	for _, user := range []int64{stranger, other} {
		if _, err := install(user, sharedApp.ID); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
			t.Errorf("user %d installs the shared application: %v, want not found", user, err)
		}
	}
	if _, err := install(member, sharedApp.ID); err != nil {
		t.Fatalf("a member of the organization it is shared with installs it: %v", err)
	}
	// Only its managers read or change its visibility; the others are told it does not exist.
	if _, err := db.FindVisibility(as(member), sharedApp.ID); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Errorf("a member of a sharing organization reads the visibility: %v", err)
	}
	if err := db.SetVisibility(as(stranger), sharedApp.ID, &marketplace.Visibility{Visibility: "public"}); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Errorf("a stranger makes it public: %v", err)
	}
	if err := db.SetVisibility(as(owner), sharedApp.ID, &marketplace.Visibility{Visibility: "private", SharedWith: []int64{999}}); marketplace.ErrorCode(err) != marketplace.EINVALID {
		t.Errorf("shared with an organization that does not exist: %v", err)
	}
	if v, err := db.FindVisibility(as(owner), sharedApp.ID); err != nil || v.Visibility != "private" || !slices.Equal(v.SharedWith, []int64{shared.ID}) {
		t.Errorf("after a refused change: %+v, %v", v, err)
	}

	// A member removed from the organization loses sight at once.
	if err := db.RemoveMember(as(admin), shared.ID, member); err != nil {
		t.Fatal(err)
	}
	sees[member] = nil
	checkCatalog("member removed", member)
	if _, err := install(member, sharedApp.ID); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Errorf("a removed member installs: %v", err)
	}

	// Made public, everyone sees it; a stranger installs it; made private again (shared with the other
	// organization), the stranger's deployment stays but an upgrade of it is not found.
	if err := db.SetVisibility(as(owner), sharedApp.ID, &marketplace.Visibility{Visibility: "public"}); err != nil {
		t.Fatal(err)
	}
	public = slices.Sorted(slices.Values(append(public, sharedApp.ID)))
	for user, ids := range sees {
		sees[user] = slices.DeleteFunc(ids, func(id int64) bool { return id == sharedApp.ID })
		checkCatalog("made public", user)
	}
	d, err := install(stranger, sharedApp.ID)
	if err != nil {
		t.Fatalf("a stranger installs a public application: %v", err)
	}
	if err := db.SetVisibility(as(owner), sharedApp.ID, &marketplace.Visibility{Visibility: "private", SharedWith: []int64{otherOrg.ID}}); err != nil {
		t.Fatal(err)
	}
	public = slices.DeleteFunc(public, func(id int64) bool { return id == sharedApp.ID })
	for _, user := range []int64{owner, other, orgPublisher, 0} {
		sees[user] = slices.Sorted(slices.Values(append(sees[user], sharedApp.ID)))
	}
	for user := range sees {
		checkCatalog("made private again", user)
	}
	if _, err := db.FindDeploymentByID(as(stranger), d.ID); err != nil {
		t.Errorf("the stranger's deployment of an application made private: %v", err)
	}
	if _, err := db.RequestUpgrade(as(stranger), d.ID, 1, nil); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Errorf("the stranger upgrades its deployment of an application made private: %v, want not found", err)
	}
}
