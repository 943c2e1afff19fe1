package cli

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/marketplace/marketplace/internal/cli/apiclient"
)

// webhookEvents are the event types a webhook may subscribe to; the server checks them too.
func webhookEvents() []string {
	return []string{"deployment.status_changed", "upgrade.failed", "invoice.closed"}
}

func webhooksCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "webhooks", Aliases: []string{"webhook", "hooks"},
		Short: "Your webhooks: list, create, delete, deliveries"}
	list := &cobra.Command{
		Use:   "list",
		Short: "Your webhooks (every page), without their secrets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := o.session()
			if err != nil {
				return err
			}
			raw, err := listAll(func(page, limit int64) (*http.Response, error) {
				return s.api.ListWebhooks(cmd.Context(), &apiclient.ListWebhooksParams{Page: &page, Limit: &limit})
			})
			if err != nil {
				return err
			}
			return o.show(rawList(raw), func() (table, error) {
				hooks, err := decodeItems[apiclient.Webhook](raw)
				t := table{{"id", "url", "events", "created"}}
				for _, h := range hooks {
					t = append(t, []string{itoa(h.Id), printable(h.Url, ""), strings.Join(deref(h.Events), ","), stamp(h.CreatedAt)})
				}
				return t, err
			})
		},
	}
	var events []string
	create := &cobra.Command{
		Use:   "create URL --event EVENT [--event EVENT...]",
		Short: "Register a webhook; its signing secret is printed once",
		Long: "Register URL for some events (" + strings.Join(webhookEvents(), ", ") + "). Deliveries are signed the\n" +
			"Standard Webhooks way with the secret printed now, and only now: keep it where your receiver reads it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(events) == 0 {
				return usageError("name at least one --event: %s", strings.Join(webhookEvents(), ", "))
			}
			s, err := o.session()
			if err != nil {
				return err
			}
			h, a, err := decode[apiclient.CreatedWebhook](s.api.CreateWebhook(cmd.Context(),
				apiclient.CreateWebhookJSONRequestBody{Url: args[0], Events: &events}))
			if err != nil {
				return err
			}
			if o.output == "json" || o.output == "yaml" {
				return o.show(a.body, nil)
			}
			fmt.Fprintf(o.env.Stdout, "Registered webhook %d for %s\nSigning secret (shown only now): %s\n", h.Id,
				strings.Join(deref(h.Events), ", "), h.Secret)
			return nil
		},
	}
	create.Flags().StringSliceVar(&events, "event", nil, "an event to send (repeat, or comma-separate): "+strings.Join(webhookEvents(), ", "))
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a webhook: nothing more is sent to it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ok := parseID(args[0])
			if !ok {
				return usageError("%q is not a webhook id (mpctl webhooks list shows them)", args[0])
			}
			s, err := o.session()
			if err != nil {
				return err
			}
			if _, err := read(s.api.DeleteWebhook(cmd.Context(), id)); err != nil {
				return err
			}
			fmt.Fprintf(o.env.Stdout, "Deleted webhook %d\n", id)
			return nil
		},
	}
	deliveries := &cobra.Command{
		Use:   "deliveries ID",
		Short: "A webhook's deliveries, newest first (every page), with each one's outcome",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ok := parseID(args[0])
			if !ok {
				return usageError("%q is not a webhook id (mpctl webhooks list shows them)", args[0])
			}
			s, err := o.session()
			if err != nil {
				return err
			}
			raw, err := listAll(func(page, limit int64) (*http.Response, error) {
				return s.api.ListWebhookDeliveries(cmd.Context(), id, &apiclient.ListWebhookDeliveriesParams{Page: &page, Limit: &limit})
			})
			if err != nil {
				return err
			}
			return o.show(rawList(raw), func() (table, error) {
				ds, err := decodeItems[apiclient.WebhookDelivery](raw)
				t := table{{"id", "message", "event", "occurred", "status", "attempts", "last answer", "error"}}
				for _, d := range ds {
					answer := "-"
					if d.LastStatusCode != nil {
						answer = itoa(*d.LastStatusCode)
					}
					t = append(t, []string{itoa(d.Id), d.MessageId, d.EventType, stamp(d.OccurredAt), string(d.Status), itoa(d.Attempts),
						answer, orDash(truncate(printable(deref(d.LastError), ""), 60))})
				}
				return t, err
			})
		},
	}
	cmd.AddCommand(list, create, del, deliveries)
	return cmd
}
