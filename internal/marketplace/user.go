package marketplace

import (
	"context"
	"time"
)

// User is a person or team that publishes applications, consumes them, or both.
type User struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// UserService stores users and their tokens. Tokens are stored only as hashes.
type UserService interface {
	// CreateUser stores the user with the hash of its first token.
	CreateUser(ctx context.Context, u *User, tokenHash []byte) error
	// FindUserByTokenHash returns the user a token belongs to, or EUNAUTHORIZED. It asks the database
	// every time, so a revoked token is refused at once by every replica.
	FindUserByTokenHash(ctx context.Context, tokenHash []byte) (*User, error)
	FindUserByID(ctx context.Context, id int64) (*User, error)
	// FindUsers lists a page of the users the caller may see (all for the operator, itself otherwise)
	// by id, and how many there are in all.
	FindUsers(ctx context.Context, p Page) ([]*User, int, error)
}

// MaxTokensPerUser bounds the tokens a user holds at once, so rotation cannot grow without bound.
const MaxTokensPerUser = 20

// Token is one bearer token of a user, without its secret (which is shown once, at creation).
type Token struct {
	ID         int64      `json:"id"`
	UserID     int64      `json:"user_id"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at" doc:"when a request last used it, to within a minute; null if never"`
}

// TokenService rotates and revokes tokens. Only the user itself or the operator finds a user's tokens.
type TokenService interface {
	// CreateToken stores one more token of a user by its hash; ECONFLICT beyond MaxTokensPerUser.
	CreateToken(ctx context.Context, userID int64, tokenHash []byte) (*Token, error)
	FindTokens(ctx context.Context, userID int64) ([]*Token, error)
	// DeleteToken revokes a token: from the moment it returns, no request is authenticated by it.
	DeleteToken(ctx context.Context, userID, tokenID int64) error
}

// Project is a consumer's place to deploy into: one Kubernetes namespace, one group of VMs.
type Project struct {
	ID          int64         `json:"id"`
	Name        string        `json:"name"`
	UserID      int64         `json:"user_id"`
	CreatedAt   time.Time     `json:"created_at"`
	Deployments []*Deployment `json:"deployments,omitempty"`

	// OrganizationID is the organization that owns it (0: its user does, and UserID only says who created it otherwise).
	OrganizationID int64 `json:"organization_id,omitempty" doc:"the organization that owns it; without it, user_id owns it"`
}

// ProjectService stores projects, scoped to the caller.
type ProjectService interface {
	// CreateProject refuses (ECONFLICT) beyond the user's project quota.
	CreateProject(ctx context.Context, p *Project) error
	// FindProjectByID returns one of the caller's projects, without its deployments.
	FindProjectByID(ctx context.Context, id int64) (*Project, error)
	// FindProjectsByUser lists a page of a user's projects by id, and how many it has in all.
	FindProjectsByUser(ctx context.Context, userID int64, p Page) ([]*Project, int, error)
	// DeleteProject refuses (ECONFLICT) while the project has live deployments.
	DeleteProject(ctx context.Context, id int64) error
}

// Quotas bound what one user may own at once, whoever acts for it (the operator too): a shared cluster
// must not be filled by one tenant. Zero means no limit.
type Quotas struct {
	Projects       int // projects not deleted
	Deployments    int // deployments not uninstalled
	Apps           int // applications in the catalog (neither deleted nor retired)
	VersionsPerApp int // versions of one application
	// UpgradesPerHour bounds the upgrades and rollbacks requested of one deployment in an hour.
	UpgradesPerHour int
}
