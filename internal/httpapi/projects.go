package httpapi

import (
	"context"
	"log/slog"

	"github.com/marketplace/marketplace/internal/marketplace"
)

type createProjectInput struct {
	Body struct {
		Name   string `json:"name" minLength:"1" maxLength:"100"`
		UserID int64  `json:"user_id" required:"false" minimum:"1" doc:"defaults to the caller; must be the caller unless the operator acts"`
		// OrganizationID makes the project the organization's (the caller must be one of its admins).
		OrganizationID int64 `json:"organization_id" required:"false" minimum:"1" doc:"the organization that owns the project (you must be one of its admins); without it, the project is user_id's"`
	}
}

func createProject(projects marketplace.ProjectService, log *slog.Logger) func(context.Context, *createProjectInput) (*body[*marketplace.Project], error) {
	return func(ctx context.Context, in *createProjectInput) (*body[*marketplace.Project], error) {
		owner, err := marketplace.CallerFrom(ctx).ResolveOwner("user_id", in.Body.UserID)
		if err == nil {
			err = marketplace.ValidateName("name", in.Body.Name)
		}
		p := &marketplace.Project{Name: in.Body.Name, UserID: owner, OrganizationID: in.Body.OrganizationID}
		if err == nil {
			err = projects.CreateProject(ctx, p)
		}
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		p.Deployments = []*marketplace.Deployment{}
		return &body[*marketplace.Project]{p}, nil
	}
}

type userProjectsInput struct {
	UserID int64 `path:"userID" minimum:"1"`
	PageQuery
}

func listUserProjects(projects marketplace.ProjectService, log *slog.Logger) func(context.Context, *userProjectsInput) (*paged[[]*marketplace.Project], error) {
	return func(ctx context.Context, in *userProjectsInput) (*paged[[]*marketplace.Project], error) {
		ps, total, err := projects.FindProjectsByUser(ctx, in.UserID, in.page())
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, total, ps), nil
	}
}

type projectInput struct {
	ID int64 `path:"id" minimum:"1"`
	PageQuery
}

// getProject answers the project with a page of its deployments (newest first); X-Total-Count and Link
// are about its deployments.
func getProject(s Store, log *slog.Logger) func(context.Context, *projectInput) (*paged[*marketplace.Project], error) {
	return func(ctx context.Context, in *projectInput) (*paged[*marketplace.Project], error) {
		p, err := s.FindProjectByID(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		ds, total, err := s.FindDeployments(ctx, marketplace.DeploymentFilter{ProjectID: p.ID, Page: in.page()})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		p.Deployments = redactDeployments(ds)
		return newPaged(&in.PageQuery, total, p), nil
	}
}

func deleteProject(projects marketplace.ProjectService, log *slog.Logger) func(context.Context, *idInput) (*struct{}, error) {
	return func(ctx context.Context, in *idInput) (*struct{}, error) {
		if err := projects.DeleteProject(ctx, in.ID); err != nil {
			return nil, problem(ctx, log, err)
		}
		return nil, nil
	}
}
