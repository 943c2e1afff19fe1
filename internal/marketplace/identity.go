package marketplace

import "context"

// Identity is a user as an OpenID provider knows it: its (Issuer, Subject) is the user, created on the
// first sign-in with Name.
type Identity struct {
	Issuer  string
	Subject string
	Name    string
}

// RoleGrant is a role in an organization (by name) that the provider's groups give a user.
type RoleGrant struct {
	Organization string
	Role         string
}

// IdentitySignIn is what a sign-in through a provider did.
type IdentitySignIn struct {
	UserID  int64
	Created bool
	// Granted are the roles set by this sign-in ("platform:admin"), Removed those it took away because
	// their group is gone, Kept those it left alone because an admin granted them by hand, and Unknown
	// the organizations of grants that do not exist (or whose name is not one organization's).
	Granted, Removed, Kept, Unknown []string
}

// IdentityService keeps the users of OpenID providers and the roles their groups give them.
type IdentityService interface {
	// SignInIdentity finds or creates the user of id and makes its provider-granted memberships exactly
	// grants (the first grant of an organization wins): a membership a grant no longer names is removed,
	// one an admin granted by hand is never touched.
	SignInIdentity(ctx context.Context, id Identity, grants []RoleGrant) (*IdentitySignIn, error)
	// IdentityUser finds or creates the user of id without touching its memberships (a bearer access
	// token carries no groups).
	IdentityUser(ctx context.Context, id Identity) (int64, error)
	// CreateIdentitySession opens a storefront session for a user signed in through the provider issuer.
	CreateIdentitySession(ctx context.Context, idHash []byte, userID int64, issuer string, s *Session) error
}
