package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// appRequest is the body that creates or replaces an application.
type appRequest struct {
	Name        string `json:"name" minLength:"1" maxLength:"100"`
	Description string `json:"description" required:"false" maxLength:"10000"`
	PublisherID int64  `json:"publisher_id" required:"false" minimum:"1" doc:"defaults to the caller; must be the caller unless the operator acts"`
	// OrganizationID publishes in an organization's name (its admins and publishers may); only on creation.
	OrganizationID int64                      `json:"organization_id" required:"false" minimum:"1" doc:"publish in this organization's name (you must be its admin or publisher); ignored on update"`
	HourlyRate     marketplace.Money          `json:"hourly_rate" minimum:"0" doc:"price per hour, at most 6 decimal places"`
	Deployment     marketplace.DeploymentSpec `json:"deployment"`
	Inputs         []marketplace.Input        `json:"inputs" required:"false" maxItems:"100" doc:"install-time parameters a consumer may set; a vm application's ssh_authorized_keys (its consumer's SSH keys) may be declared, as a string, but never given a default"`
	// Visibility and SharedWith are read on creation only: PUT /api/apps/{id}/visibility changes them.
	Visibility string  `json:"visibility" required:"false" enum:"public,private" doc:"public (the default: everyone sees it) or private (its owner and the members of the organizations in shared_with only); ignored on update: see PUT /api/apps/{id}/visibility"`
	SharedWith []int64 `json:"shared_with" required:"false" maxItems:"100" doc:"private only: the organizations whose members see it; ignored on update"`
}

func (r *appRequest) application(ctx context.Context, c marketplace.Caller, urls URLChecker, vm marketplace.VMLimits) (*marketplace.Application, error) {
	publisher, err := c.ResolveOwner("publisher_id", r.PublisherID)
	if err != nil {
		return nil, err
	}
	v := marketplace.Visibility{Visibility: r.Visibility, SharedWith: r.SharedWith}
	if err := v.Validate(); err != nil {
		return nil, err
	}
	a := &marketplace.Application{Name: r.Name, Description: r.Description, PublisherID: publisher, OrganizationID: r.OrganizationID,
		HourlyRate: r.HourlyRate, Deployment: r.Deployment, Inputs: r.Inputs,
		Private: v.Visibility == marketplace.VisibilityPrivate, Shared: v.SharedWith}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if err := a.Deployment.CheckVMLimits(vm); err != nil {
		return nil, err
	}
	return a, checkURLs(ctx, urls, a.Deployment)
}

// URLChecker refuses a URL the marketplace would not fetch from for a publisher: one whose host is an
// internal address (loopback, private, link-local...) the operator did not allow. Its errors say why.
type URLChecker interface {
	CheckURL(ctx context.Context, rawURL string) error
}

// checkURLs refuses, before anything is stored, an application whose chart repository (or VM image URL)
// is known now to point inside the operator's network. Fetches are checked again when they dial.
func checkURLs(ctx context.Context, urls URLChecker, spec marketplace.DeploymentSpec) error {
	if urls == nil {
		return nil
	}
	field, u := "deployment.repoURL", spec.RepoURL
	if spec.Type == marketplace.TypeVM {
		field, u = "deployment.image", spec.Image
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil // a path on the VM host, not a fetch
		}
	}
	if err := urls.CheckURL(ctx, u); err != nil {
		return marketplace.Errorf(marketplace.EINVALID, "%s %q: %v", field, u, err)
	}
	return nil
}

type createAppInput struct {
	Body appRequest
}

func createApp(apps marketplace.AppService, urls URLChecker, vm marketplace.VMLimits, charts ChartChecker, log *slog.Logger) func(context.Context, *createAppInput) (*body[*marketplace.Application], error) {
	return func(ctx context.Context, in *createAppInput) (*body[*marketplace.Application], error) {
		a, err := in.Body.application(ctx, marketplace.CallerFrom(ctx), urls, vm)
		if err == nil && charts != nil {
			a.Signature, err = charts.CheckChart(ctx, 0, signer(ctx, a.PublisherID), a.Deployment)
		}
		if err == nil {
			err = apps.CreateApp(ctx, a)
		}
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Application]{redactApp(a)}, nil
	}
}

type listAppsInput struct {
	Page           int    `query:"page" minimum:"1" maximum:"1000000" default:"1"`
	Limit          int    `query:"limit" minimum:"1" maximum:"100" default:"20"`
	Publisher      int64  `query:"publisher" minimum:"0" doc:"only this publisher's applications"`
	DeploymentType string `query:"deploymentType" enum:"k8s,vm" doc:"only applications of this type"`
	Query          string `query:"q" maxLength:"200" doc:"search: only applications whose name or description has every word of it, each word as the start of a word (kube finds Kubernetes), case-insensitive; at most 200 characters, with a letter or digit; the order stays the catalog's (by id) and total_items counts the matches"`
	Category       string `query:"category" maxLength:"100" doc:"only applications listing this category (a keyword of their package, as categories shows them), any case"`
	PublisherName  string `query:"publisherName" maxLength:"100" doc:"only applications of the publishers of this name (publisher_name), any case"`
	Sort           string `query:"sort" enum:"name,newest,price,-price" doc:"the order: name (A to Z), newest (latest published first), price (cheapest first), -price (dearest first); by id when absent. total_items counts the filtered set whatever the order"`
}

// appPage is the catalog's answer; listApps writes it from precomputed JSON (CatalogJSON), this type
// is its schema in the OpenAPI document.
type appPage struct {
	Data       []*marketplace.Application `json:"data"`
	Page       int                        `json:"page"`
	Limit      int                        `json:"limit"`
	TotalItems int                        `json:"total_items"`
	TotalPages int                        `json:"total_pages"`
}

// CatalogJSON reads pages of the catalog already encoded as the API shows them.
type CatalogJSON interface {
	// AppendAppsJSON appends the page's applications (JSON objects, comma-separated) to dst and
	// returns the total number of matches.
	AppendAppsJSON(ctx context.Context, dst []byte, f marketplace.AppFilter) ([]byte, int, error)
}

// rawJSON is an answer written as it is: its schema is given by withBodySchema.
type rawJSON struct {
	Body func(huma.Context)
}

// withBodySchema documents T as the JSON body of o's success answer, for handlers that write their
// body themselves (rawJSON).
func withBodySchema[T any](api huma.API, o huma.Operation) huma.Operation {
	schema := api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[T](), true, "")
	o.Responses = map[string]*huma.Response{strconv.Itoa(o.DefaultStatus): {
		Description: http.StatusText(o.DefaultStatus),
		Content:     map[string]*huma.MediaType{"application/json": {Schema: schema}},
	}}
	return o
}

// listApps answers a page of the catalog. It is the most requested route, so nothing on its way is
// decoded and encoded again: the applications come from the database already in their JSON, into a
// buffer reused across requests, and go out in one write with their length.
func listApps(apps CatalogJSON, log *slog.Logger) func(context.Context, *listAppsInput) (*rawJSON, error) {
	buffers := sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}
	return func(ctx context.Context, in *listAppsInput) (*rawJSON, error) {
		q, err := marketplace.CleanQuery(in.Query)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		browse, err := marketplace.CleanBrowse(marketplace.Browse{Category: in.Category, PublisherName: in.PublisherName, Sort: in.Sort})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		buf := buffers.Get().(*[]byte)
		b := append((*buf)[:0], `{"data":[`...)
		b, total, err := apps.AppendAppsJSON(ctx, b, marketplace.AppFilter{
			PublisherID: in.Publisher, DeploymentType: in.DeploymentType, Query: q, Browse: browse, Page: in.Page, Limit: in.Limit})
		if err != nil {
			buffers.Put(buf)
			return nil, problem(ctx, log, err)
		}
		b = append(b, `],"page":`...)
		b = strconv.AppendInt(b, int64(in.Page), 10)
		b = append(b, `,"limit":`...)
		b = strconv.AppendInt(b, int64(in.Limit), 10)
		b = append(b, `,"total_items":`...)
		b = strconv.AppendInt(b, int64(total), 10)
		b = append(b, `,"total_pages":`...)
		b = strconv.AppendInt(b, int64((total+in.Limit-1)/in.Limit), 10)
		b = append(b, "}\n"...)
		return &rawJSON{Body: func(hctx huma.Context) {
			hctx.SetHeader("Content-Type", "application/json")
			hctx.SetHeader("Content-Length", strconv.Itoa(len(b)))
			hctx.SetStatus(http.StatusOK)
			hctx.BodyWriter().Write(b)
			*buf = b
			buffers.Put(buf)
		}}, nil
	}
}

// appsAbout reads applications and what their versions say about themselves.
type appsAbout interface {
	marketplace.AppService
	marketplace.AboutService
}

// getApp answers an application with what its latest version says about itself (About).
func getApp(apps appsAbout, log *slog.Logger) func(context.Context, *idInput) (*body[*marketplace.Application], error) {
	return func(ctx context.Context, in *idInput) (*body[*marketplace.Application], error) {
		a, err := apps.FindAppByID(ctx, in.ID)
		if err == nil {
			a.About, err = apps.FindAbout(ctx, a.ID, a.Version)
		}
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Application]{redactApp(a)}, nil
	}
}

type updateAppInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body appRequest
}

// updateApp replaces an application. Open usage records keep the rate they started with. A repoURL or
// image sent back as it was read (credentials redacted) keeps the stored credentials.
func updateApp(apps marketplace.AppService, urls URLChecker, vm marketplace.VMLimits, charts ChartChecker, log *slog.Logger) func(context.Context, *updateAppInput) (*body[*marketplace.Application], error) {
	return func(ctx context.Context, in *updateAppInput) (*body[*marketplace.Application], error) {
		caller := marketplace.CallerFrom(ctx)
		current, err := apps.FindAppByID(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		if in.Body.PublisherID == 0 && caller.Operator {
			in.Body.PublisherID = current.PublisherID
		}
		in.Body.Deployment.KeepStoredCredentials(current.Deployment)
		a, err := in.Body.application(ctx, caller, urls, vm)
		if err == nil && charts != nil && a.Deployment != current.Deployment {
			// A change of the chart is a new version: its chart is checked (the rate or inputs alone keep the signature).
			a.Signature, err = charts.CheckChart(ctx, in.ID, signer(ctx, current.PublisherID), a.Deployment)
		} else if err == nil {
			a.Signature = current.Signature
		}
		if err == nil {
			a.ID = in.ID
			err = apps.UpdateApp(ctx, a)
		}
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Application]{redactApp(a)}, nil
	}
}

// retireApp takes an application out of the catalog; its running deployments keep it.
func retireApp(apps marketplace.AppService, log *slog.Logger) func(context.Context, *idInput) (*body[*marketplace.Application], error) {
	return func(ctx context.Context, in *idInput) (*body[*marketplace.Application], error) {
		if err := apps.RetireApp(ctx, in.ID); err != nil {
			return nil, problem(ctx, log, err)
		}
		a, err := apps.FindAppByID(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Application]{Body: redactApp(a)}, nil
	}
}

func deleteApp(apps marketplace.AppService, log *slog.Logger) func(context.Context, *idInput) (*struct{}, error) {
	return func(ctx context.Context, in *idInput) (*struct{}, error) {
		if err := apps.DeleteApp(ctx, in.ID); err != nil {
			return nil, problem(ctx, log, err)
		}
		return nil, nil
	}
}
