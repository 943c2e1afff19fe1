package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"

	"github.com/marketplace/marketplace/internal/marketplace"
)

type createUserInput struct {
	Body struct {
		Name string `json:"name" minLength:"1" maxLength:"100" doc:"the user's display name"`
	}
}

type createdUser struct {
	marketplace.User
	Token string `json:"token" doc:"the bearer token of this user; shown only now"`
}

// tokenPrefix starts every user token, so a token is recognisable (in a leaked file, by a secret scanner)
// and a string that cannot be one is refused without asking the database.
const tokenPrefix = "mpt_"

// tokenLength is the length of a user token: the prefix and 32 random bytes in unpadded base64url.
const tokenLength = len(tokenPrefix) + 43

// newToken returns a fresh random user token.
func newToken() string {
	secret := make([]byte, 32)
	rand.Read(secret)
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
}

func createUser(users marketplace.UserService, log *slog.Logger) func(context.Context, *createUserInput) (*body[createdUser], error) {
	return func(ctx context.Context, in *createUserInput) (*body[createdUser], error) {
		if err := marketplace.ValidateName("name", in.Body.Name); err != nil {
			return nil, problem(ctx, log, err)
		}
		token := newToken()
		u := createdUser{User: marketplace.User{Name: in.Body.Name}, Token: token}
		if err := users.CreateUser(ctx, &u.User, HashToken(token)); err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[createdUser]{u}, nil
	}
}

type listUsersInput struct {
	PageQuery
}

func listUsers(users marketplace.UserService, log *slog.Logger) func(context.Context, *listUsersInput) (*paged[[]*marketplace.User], error) {
	return func(ctx context.Context, in *listUsersInput) (*paged[[]*marketplace.User], error) {
		us, total, err := users.FindUsers(ctx, in.page())
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, total, us), nil
	}
}

type userDeploymentsInput struct {
	ID     int64  `path:"id" minimum:"1"`
	Status string `query:"status" enum:"pending,installing,installed,failed,uninstalling,uninstalled,upgrading" doc:"only deployments in this status"`
	PageQuery
}

func listUserDeployments(s Store, log *slog.Logger) func(context.Context, *userDeploymentsInput) (*paged[[]*marketplace.Deployment], error) {
	return func(ctx context.Context, in *userDeploymentsInput) (*paged[[]*marketplace.Deployment], error) {
		if _, err := s.FindUserByID(ctx, in.ID); err != nil {
			return nil, problem(ctx, log, err)
		}
		ds, total, err := s.FindDeployments(ctx, marketplace.DeploymentFilter{ConsumerID: in.ID,
			Status: marketplace.Status(in.Status), Page: in.page()})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, total, redactDeployments(ds)), nil
	}
}

// body is a response with only a JSON body.
type body[T any] struct {
	Body T
}

// idInput is a request with an id in its path.
type idInput struct {
	ID int64 `path:"id" minimum:"1"`
}
