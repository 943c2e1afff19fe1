package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/webhook"
)

// The webhooks page registers the caller's webhooks as POST /api/webhooks does (the same validation,
// the same check of the URL against the fetch guard, the same store call), shows the signing secret
// once, in the answer to the registration, and lists each webhook's deliveries with their outcome.

type webhooksView struct {
	Webhooks []*marketplace.Webhook
	Events   []string
	Pager    pager
	// Created and Secret are the webhook just registered and its signing secret, shown this once.
	Created *marketplace.Webhook
	Secret  string
	// URL and Chosen are what a refused form was posted with.
	URL    string
	Chosen map[string]bool
	Error  string
}

func (s *server) webhooksPage(w http.ResponseWriter, r *http.Request) {
	s.renderWebhooks(w, r, http.StatusOK, webhooksView{})
}

func (s *server) renderWebhooks(w http.ResponseWriter, r *http.Request, status int, v webhooksView) {
	v.Events = marketplace.WebhookEvents()
	v.Pager = pagerOf(r, "page", 100, "webhooks", "Previous", "Next")
	if v.Chosen == nil {
		v.Chosen = map[string]bool{}
	}
	var total int
	var err error
	if v.Webhooks, total, err = s.Store.FindWebhooks(r.Context(), v.Pager.page()); err != nil {
		s.domainError(w, r, err)
		return
	}
	v.Pager = v.Pager.of(r, "page", total, len(v.Webhooks))
	s.render(w, r, status, "webhooks", "Webhooks", v)
}

// createWebhook registers a webhook of the caller's and answers its secret, once: the page is not a
// redirect, so a reload does not show it again (the browser asks before posting the form again, and a
// repost registers another webhook with another secret).
func (s *server) createWebhook(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	c := marketplace.CallerFrom(r.Context())
	hook := &marketplace.Webhook{UserID: c.UserID, URL: strings.TrimSpace(r.PostForm.Get("url")), Events: r.PostForm["events"]}
	var err error
	if c.Operator {
		err = marketplace.Errorf(marketplace.EINVALID, "the operator has no deployments or invoices to report: sign in as a user")
	}
	if err == nil {
		err = hook.Validate()
	}
	if err == nil && s.URLs != nil {
		if cerr := s.URLs.CheckURL(r.Context(), hook.URL); cerr != nil {
			err = marketplace.Errorf(marketplace.EINVALID, "url %q: %v", hook.URL, cerr)
		}
	}
	key, secret := webhook.NewSecret()
	if err == nil {
		err = s.Store.CreateWebhook(r.Context(), hook, key)
	}
	if err != nil {
		chosen := map[string]bool{}
		for _, e := range r.PostForm["events"] {
			chosen[e] = true
		}
		s.refuse(w, r, err, func(status int, message string) {
			s.renderWebhooks(w, r, status, webhooksView{URL: hook.URL, Chosen: chosen, Error: "Webhook not registered: " + message})
		})
		return
	}
	// 201, not a redirect: the secret is in this answer only. The audit trail records it as a change.
	s.renderWebhooks(w, r, http.StatusCreated, webhooksView{Created: hook, Secret: secret})
}

// deleteWebhook removes one of the caller's webhooks.
func (s *server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	id, ok := webhookIDOf(w, r, s)
	if !ok {
		return
	}
	if err := s.Store.DeleteWebhook(r.Context(), id); err != nil {
		s.refuse(w, r, err, func(status int, message string) {
			s.renderWebhooks(w, r, status, webhooksView{Error: fmt.Sprintf("Webhook %d not deleted: %s", id, message)})
		})
		return
	}
	http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
}

type deliveriesView struct {
	Webhook    *marketplace.Webhook
	Deliveries []*marketplace.WebhookDelivery
	Pager      pager
}

// webhookPage lists a page of one webhook's deliveries, newest first, with each one's latest outcome.
func (s *server) webhookPage(w http.ResponseWriter, r *http.Request) {
	id, ok := webhookIDOf(w, r, s)
	if !ok {
		return
	}
	v := deliveriesView{Pager: pagerOf(r, "page", 50, "deliveries", "Newer", "Older")}
	var total int
	var err error
	if v.Deliveries, total, err = s.Store.FindWebhookDeliveries(r.Context(), id, v.Pager.page()); err != nil {
		s.domainError(w, r, err)
		return
	}
	v.Pager = v.Pager.of(r, "page", total, len(v.Deliveries))
	// The webhook itself, from the caller's list (the store has no lookup by id; an owner has at most
	// MaxWebhooksPerOwner).
	hooks, _, err := s.Store.FindWebhooks(r.Context(), marketplace.Page{Number: 1, Limit: 100})
	if err != nil {
		s.domainError(w, r, err)
		return
	}
	for _, h := range hooks {
		if h.ID == id {
			v.Webhook = h
		}
	}
	if v.Webhook == nil {
		v.Webhook = &marketplace.Webhook{ID: id}
	}
	s.render(w, r, http.StatusOK, "webhook", fmt.Sprintf("Webhook %d", id), v)
}

func webhookIDOf(w http.ResponseWriter, r *http.Request, s *server) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id < 1 {
		s.fail(w, r, http.StatusNotFound, "There is nothing at this address.")
		return 0, false
	}
	return id, true
}
