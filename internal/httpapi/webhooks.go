package httpapi

import (
	"context"
	"log/slog"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/webhook"
)

type createWebhookInput struct {
	Body struct {
		URL    string   `json:"url" minLength:"1" maxLength:"2000" doc:"where events are POSTed: http or https, not an address inside the operator's network (unless MARKETPLACE_FETCH_ALLOW allows it)"`
		Events []string `json:"events" minItems:"1" maxItems:"10" doc:"the event types to send: deployment.status_changed, upgrade.failed, invoice.closed"`
		UserID int64    `json:"user_id" required:"false" minimum:"1" doc:"the owner; defaults to the caller, must be the caller unless the operator acts"`
	}
}

type createdWebhook struct {
	marketplace.Webhook
	Secret string `json:"secret" doc:"the signing secret (whsec_ and base64) of the webhook-signature header; shown only now"`
}

func createWebhook(webhooks marketplace.WebhookService, urls URLChecker, log *slog.Logger) func(context.Context, *createWebhookInput) (*body[createdWebhook], error) {
	return func(ctx context.Context, in *createWebhookInput) (*body[createdWebhook], error) {
		owner, err := marketplace.CallerFrom(ctx).ResolveOwner("user_id", in.Body.UserID)
		w := marketplace.Webhook{UserID: owner, URL: in.Body.URL, Events: in.Body.Events}
		if err == nil {
			err = w.Validate()
		}
		if err == nil && urls != nil {
			// Refused now when it is known to point inside the operator's network; every attempt's dial is
			// checked again, whatever the name resolves to by then.
			if cerr := urls.CheckURL(ctx, w.URL); cerr != nil {
				err = marketplace.Errorf(marketplace.EINVALID, "url %q: %v", w.URL, cerr)
			}
		}
		key, secret := webhook.NewSecret()
		if err == nil {
			err = webhooks.CreateWebhook(ctx, &w, key)
		}
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[createdWebhook]{createdWebhook{Webhook: w, Secret: secret}}, nil
	}
}

type listWebhooksInput struct {
	PageQuery
}

func listWebhooks(webhooks marketplace.WebhookService, log *slog.Logger) func(context.Context, *listWebhooksInput) (*paged[[]*marketplace.Webhook], error) {
	return func(ctx context.Context, in *listWebhooksInput) (*paged[[]*marketplace.Webhook], error) {
		ws, total, err := webhooks.FindWebhooks(ctx, in.page())
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, total, ws), nil
	}
}

func deleteWebhook(webhooks marketplace.WebhookService, log *slog.Logger) func(context.Context, *idInput) (*struct{}, error) {
	return func(ctx context.Context, in *idInput) (*struct{}, error) {
		if err := webhooks.DeleteWebhook(ctx, in.ID); err != nil {
			return nil, problem(ctx, log, err)
		}
		return nil, nil
	}
}

type webhookDeliveriesInput struct {
	ID int64 `path:"id" minimum:"1"`
	PageQuery
}

func listWebhookDeliveries(webhooks marketplace.WebhookService, log *slog.Logger) func(context.Context, *webhookDeliveriesInput) (*paged[[]*marketplace.WebhookDelivery], error) {
	return func(ctx context.Context, in *webhookDeliveriesInput) (*paged[[]*marketplace.WebhookDelivery], error) {
		ds, total, err := webhooks.FindWebhookDeliveries(ctx, in.ID, in.page())
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, total, ds), nil
	}
}
