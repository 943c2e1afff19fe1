package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// TestSignInIdentity: a user is its (issuer, subject), created once; its provider-granted memberships
// follow the grants of each sign-in, the first grant of an organization winning; a membership given by
// hand is never touched; grants of unknown organizations are reported, not applied.
func TestSignInIdentity(t *testing.T) {
	op := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(op, tenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	founder := &marketplace.User{Name: "founder"}
	if err := db.CreateUser(op, founder, []byte{1}); err != nil {
		t.Fatal(err)
	}
	asFounder := marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: founder.ID})
	platform, tools := &marketplace.Organization{Name: "platform"}, &marketplace.Organization{Name: "tools"}
	for _, o := range []*marketplace.Organization{platform, tools} {
		if err := db.CreateOrganization(asFounder, o); err != nil {
			t.Fatal(err)
		}
	}
	id := marketplace.Identity{Issuer: "https://idp.example", Subject: "alice", Name: "Alice"}
	roles := func(user int64) string {
		t.Helper()
		var out string
		for _, o := range []*marketplace.Organization{platform, tools} {
			ms, err := db.FindMembers(asFounder, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.UserID == user {
					out += fmt.Sprintf("%s:%s ", o.Name, m.Role)
				}
			}
		}
		return out
	}
	g := func(org, role string) marketplace.RoleGrant {
		return marketplace.RoleGrant{Organization: org, Role: role}
	}

	in, err := db.SignInIdentity(op, id, []marketplace.RoleGrant{g("platform", "admin"), g("platform", "viewer"), g("tools", "deployer"), g("nowhere", "admin")})
	if err != nil {
		t.Fatal(err)
	}
	if !in.Created || roles(in.UserID) != "platform:admin tools:deployer " || fmt.Sprint(in.Unknown) != "[nowhere]" {
		t.Fatalf("first sign-in: %+v, roles %q", in, roles(in.UserID))
	}
	user := in.UserID
	// By hand: tools becomes viewer; sign-ins no longer touch it.
	if err := db.SetMemberRole(asFounder, &marketplace.Member{OrganizationID: tools.ID, UserID: user, Role: "viewer"}); err != nil {
		t.Fatal(err)
	}
	in, err = db.SignInIdentity(op, id, []marketplace.RoleGrant{g("platform", "deployer"), g("tools", "admin")})
	if err != nil {
		t.Fatal(err)
	}
	if in.Created || in.UserID != user || roles(user) != "platform:deployer tools:viewer " || fmt.Sprint(in.Kept) != "[tools:viewer]" {
		t.Fatalf("second sign-in: %+v, roles %q", in, roles(user))
	}
	in, err = db.SignInIdentity(op, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if roles(user) != "tools:viewer " || fmt.Sprint(in.Removed) != "[platform:deployer]" {
		t.Fatalf("sign-in without groups: %+v, roles %q", in, roles(user))
	}
	// The same subject of another issuer is another user; IdentityUser finds the same one.
	if other, err := db.IdentityUser(op, marketplace.Identity{Issuer: "https://other.example", Subject: "alice"}); err != nil || other == user {
		t.Fatalf("another issuer's alice: %d %v, want a user other than %d", other, err, user)
	}
	if same, err := db.IdentityUser(op, id); err != nil || same != user {
		t.Fatalf("IdentityUser: %d %v, want %d", same, err, user)
	}
	// A session opened through the provider is found, and tied to no token.
	s := &marketplace.Session{CSRFToken: "c", ExpiresAt: founder.CreatedAt.AddDate(1, 0, 0)}
	if err := db.CreateIdentitySession(op, []byte("session"), user, id.Issuer, s); err != nil {
		t.Fatal(err)
	}
	if got, err := db.FindSession(op, []byte("session")); err != nil || got.UserID != user {
		t.Fatalf("FindSession: %+v %v", got, err)
	}

	// A membership the groups gave cannot be removed by hand (it would come back at the next sign-in).
	if _, err := db.SignInIdentity(op, id, []marketplace.RoleGrant{g("platform", "deployer")}); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveMember(asFounder, platform.ID, user); marketplace.ErrorCode(err) != marketplace.ECONFLICT ||
		!strings.Contains(marketplace.ErrorMessage(err), "identity provider") {
		t.Fatalf("removing a member the groups made: %v, want a conflict naming the identity provider", err)
	}
	if roles(user) != "platform:deployer tools:viewer " {
		t.Fatalf("after the refused removal: roles %q", roles(user))
	}
	// A stranger's organization of the same name makes the grant ambiguous: it grants nothing, and the
	// real organization's membership stays.
	stranger := &marketplace.User{Name: "stranger"}
	if err := db.CreateUser(op, stranger, []byte{2}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateOrganization(marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: stranger.ID}),
		&marketplace.Organization{Name: "platform"}); err != nil {
		t.Fatal(err)
	}
	in, err = db.SignInIdentity(op, id, []marketplace.RoleGrant{g("platform", "deployer")})
	if err != nil {
		t.Fatal(err)
	}
	if roles(user) != "platform:deployer tools:viewer " || fmt.Sprint(in.Unknown) != "[platform]" || len(in.Removed) != 0 {
		t.Fatalf("sign-in with a namesake organization: %+v, roles %q", in, roles(user))
	}
}
