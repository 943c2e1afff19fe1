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
	// CreateUser stores the user with the hash of its token.
	CreateUser(ctx context.Context, u *User, tokenHash []byte) error
	// FindUserByTokenHash returns the user a token belongs to, or ENOTFOUND.
	FindUserByTokenHash(ctx context.Context, tokenHash []byte) (*User, error)
	FindUserByID(ctx context.Context, id int64) (*User, error)
	// FindUsers lists the users the caller may see: all for the operator, itself otherwise.
	FindUsers(ctx context.Context) ([]*User, error)
}

// Project is a consumer's place to deploy into: one Kubernetes namespace, one group of VMs.
type Project struct {
	ID          int64         `json:"id"`
	Name        string        `json:"name"`
	UserID      int64         `json:"user_id"`
	CreatedAt   time.Time     `json:"created_at"`
	Deployments []*Deployment `json:"deployments,omitempty"`
}

// ProjectService stores projects, scoped to the caller.
type ProjectService interface {
	CreateProject(ctx context.Context, p *Project) error
	FindProjectByID(ctx context.Context, id int64) (*Project, error)
	FindProjectsByUser(ctx context.Context, userID int64) ([]*Project, error)
	// DeleteProject refuses (ECONFLICT) while the project has live deployments.
	DeleteProject(ctx context.Context, id int64) error
}
