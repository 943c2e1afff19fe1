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

func createUser(users marketplace.UserService, log *slog.Logger) func(context.Context, *createUserInput) (*body[createdUser], error) {
	return func(ctx context.Context, in *createUserInput) (*body[createdUser], error) {
		if err := marketplace.ValidateName("name", in.Body.Name); err != nil {
			return nil, problem(ctx, log, err)
		}
		secret := make([]byte, 32)
		rand.Read(secret)
		token := "mpt_" + base64.RawURLEncoding.EncodeToString(secret)
		u := createdUser{User: marketplace.User{Name: in.Body.Name}, Token: token}
		if err := users.CreateUser(ctx, &u.User, HashToken(token)); err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[createdUser]{u}, nil
	}
}

func listUsers(users marketplace.UserService, log *slog.Logger) func(context.Context, *struct{}) (*body[[]*marketplace.User], error) {
	return func(ctx context.Context, _ *struct{}) (*body[[]*marketplace.User], error) {
		us, err := users.FindUsers(ctx)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[[]*marketplace.User]{us}, nil
	}
}

type userDeploymentsInput struct {
	ID     int64  `path:"id" minimum:"1"`
	Status string `query:"status" enum:"pending,installing,installed,failed,uninstalling,uninstalled" doc:"only deployments in this status"`
}

func listUserDeployments(s Store, log *slog.Logger) func(context.Context, *userDeploymentsInput) (*body[[]*marketplace.Deployment], error) {
	return func(ctx context.Context, in *userDeploymentsInput) (*body[[]*marketplace.Deployment], error) {
		if _, err := s.FindUserByID(ctx, in.ID); err != nil {
			return nil, problem(ctx, log, err)
		}
		ds, err := s.FindDeployments(ctx, marketplace.DeploymentFilter{ConsumerID: in.ID, Status: marketplace.Status(in.Status)})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[[]*marketplace.Deployment]{ds}, nil
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
