package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/marketplace/marketplace/internal/cli/apiclient"
)

// The ledger's endpoints answer JSON or CSV as bytes, which the OpenAPI document describes only as a
// string, so the generated client has no models for them: these are the fields the tables show.
type statement struct {
	From     time.Time       `json:"from"`
	To       time.Time       `json:"to"`
	Currency string          `json:"currency"`
	Seconds  int64           `json:"seconds"`
	Total    decimal.Decimal `json:"total"`
	Lines    []struct {
		UsageRecordID int64           `json:"usage_record_id"`
		DeploymentID  int64           `json:"deployment_id"`
		ApplicationID int64           `json:"application_id"`
		HourlyRate    decimal.Decimal `json:"hourly_rate"`
		StartedAt     time.Time       `json:"started_at"`
		EndedAt       *time.Time      `json:"ended_at"`
		Seconds       int64           `json:"seconds"`
		Amount        decimal.Decimal `json:"amount"`
	} `json:"lines"`
}

type invoice struct {
	Number   string          `json:"number"`
	Period   string          `json:"period"`
	IssuedAt time.Time       `json:"issued_at"`
	Currency string          `json:"currency"`
	Total    decimal.Decimal `json:"total"`
	Lines    []struct {
		Kind          string          `json:"kind"`
		DeploymentID  int64           `json:"deployment_id"`
		ApplicationID int64           `json:"application_id"`
		HourlyRate    decimal.Decimal `json:"hourly_rate"`
		Seconds       int64           `json:"seconds"`
		Amount        decimal.Decimal `json:"amount"`
		Charge        decimal.Decimal `json:"charge"`
	} `json:"lines"`
}

func billsCommand(o *options) *cobra.Command {
	var user, org int64
	var csv bool
	cmd := &cobra.Command{Use: "bills", Aliases: []string{"bill"}, Short: "What you (or an organization, --org) owe: the statement so far, invoices"}
	cmd.PersistentFlags().Int64Var(&user, "user", 0, "whose bills (the operator acting for a user; default: the token's user)")
	cmd.PersistentFlags().Int64Var(&org, "org", 0, "an organization's bills instead (you must be one of its admins, deployers or viewers)")
	cmd.PersistentFlags().BoolVar(&csv, "csv", false, "print the server's CSV document, for a spreadsheet")

	var from, to string
	var page int64
	cmd.PersistentFlags().Int64Var(&page, "page", 1, fmt.Sprintf("which page of the statement's lines or of the invoices (%d a page)", pageLimit))
	stmt := &cobra.Command{
		Use:   "statement [--from DATE] [--to DATE] [--csv]",
		Short: "Your usage over [from, to): by default the current month so far",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, me, account, err := billsSession(cmd, o, user, org)
			if err != nil {
				return err
			}
			params := &apiclient.GetStatementParams{Format: ptr(apiclient.GetStatementParamsFormat(format(csv))), Page: &page, Limit: ptr[int64](pageLimit)}
			if from != "" {
				params.From = &from
			}
			if to != "" {
				params.To = &to
			}
			var a answer
			if org > 0 {
				a, err = read(s.api.GetOrgStatement(cmd.Context(), org, &apiclient.GetOrgStatementParams{From: params.From, To: params.To,
					Format: ptr(apiclient.GetOrgStatementParamsFormat(format(csv))), Page: params.Page, Limit: params.Limit}))
			} else {
				a, err = read(s.api.GetStatement(cmd.Context(), me, params))
			}
			o.morePages(a, page, "lines")
			if err != nil || csv {
				return o.raw(a.body, err)
			}
			return o.show(a.body, func() (table, error) {
				var st statement
				if err := json.Unmarshal(a.body, &st); err != nil {
					return nil, err
				}
				fmt.Fprintf(o.env.Stdout, "Statement of %s, %s to %s: %s %s\n", account,
					st.From.UTC().Format(time.RFC3339), st.To.UTC().Format(time.RFC3339), st.Total, st.Currency)
				t := table{{"deployment", "app", "rate/h", "started", "ended", "seconds", "amount"}}
				for _, l := range st.Lines {
					ended := "running"
					if l.EndedAt != nil {
						ended = stamp(*l.EndedAt)
					}
					t = append(t, []string{itoa(l.DeploymentID), itoa(l.ApplicationID), l.HourlyRate.String(),
						stamp(l.StartedAt), ended, itoa(l.Seconds), l.Amount.StringFixed(6)})
				}
				return append(t, []string{"total", "", "", "", "", itoa(st.Seconds), st.Total.StringFixed(6) + " " + st.Currency}), nil
			})
		},
	}
	stmt.Flags().StringVar(&from, "from", "", "start, yyyy-mm-dd or RFC 3339 (UTC); default the start of the month")
	stmt.Flags().StringVar(&to, "to", "", "end (excluded); default now")

	invoices := &cobra.Command{
		Use:   "invoices [NUMBER] [--csv]",
		Short: "Your invoices, or one invoice with its lines",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, me, _, err := billsSession(cmd, o, user, org)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				var a answer
				if org > 0 {
					a, err = read(s.api.GetOrgInvoice(cmd.Context(), org, args[0],
						&apiclient.GetOrgInvoiceParams{Format: ptr(apiclient.GetOrgInvoiceParamsFormat(format(csv)))}))
				} else {
					a, err = read(s.api.GetInvoice(cmd.Context(), me, args[0],
						&apiclient.GetInvoiceParams{Format: ptr(apiclient.GetInvoiceParamsFormat(format(csv)))}))
				}
				if err != nil || csv {
					return o.raw(a.body, err)
				}
				return o.show(a.body, func() (table, error) {
					var inv invoice
					if err := json.Unmarshal(a.body, &inv); err != nil {
						return nil, err
					}
					fmt.Fprintf(o.env.Stdout, "Invoice %s, %s, issued %s: %s %s\n", inv.Number, inv.Period,
						inv.IssuedAt.UTC().Format("2006-01-02"), inv.Total.StringFixed(2), inv.Currency)
					t := table{{"kind", "deployment", "app", "rate/h", "seconds", "amount", "charge"}}
					for _, l := range inv.Lines {
						t = append(t, []string{l.Kind, itoa(l.DeploymentID), itoa(l.ApplicationID), l.HourlyRate.String(),
							itoa(l.Seconds), l.Amount.StringFixed(6), l.Charge.StringFixed(2)})
					}
					return t, nil
				})
			}
			var a answer
			if org > 0 {
				a, err = read(s.api.ListOrgInvoices(cmd.Context(), org,
					&apiclient.ListOrgInvoicesParams{Format: ptr(apiclient.ListOrgInvoicesParamsFormat(format(csv))), Page: &page, Limit: ptr[int64](pageLimit)}))
			} else {
				a, err = read(s.api.ListInvoices(cmd.Context(), me,
					&apiclient.ListInvoicesParams{Format: ptr(apiclient.ListInvoicesParamsFormat(format(csv))), Page: &page, Limit: ptr[int64](pageLimit)}))
			}
			o.morePages(a, page, "invoices")
			if err != nil || csv {
				return o.raw(a.body, err)
			}
			return o.show(a.body, func() (table, error) {
				var list struct {
					Invoices []invoice `json:"invoices"`
				}
				if err := json.Unmarshal(a.body, &list); err != nil {
					return nil, err
				}
				t := table{{"number", "period", "issued", "total", "currency"}}
				for _, inv := range list.Invoices {
					t = append(t, []string{inv.Number, inv.Period, inv.IssuedAt.UTC().Format("2006-01-02"), inv.Total.StringFixed(2), inv.Currency})
				}
				return t, nil
			})
		},
	}
	cmd.AddCommand(stmt, invoices)
	return cmd
}

// billsSession opens a session for the bills of a user (me) or, with org, of an organization; account
// names whose they are.
func billsSession(cmd *cobra.Command, o *options, user, org int64) (s *session, me int64, account string, err error) {
	if org > 0 {
		if user > 0 {
			return nil, 0, "", usageError("--user and --org name two accounts: give one")
		}
		s, err = o.session()
		return s, 0, fmt.Sprintf("organization %d", org), err
	}
	s, me, err = o.userSession(cmd.Context(), user)
	return s, me, fmt.Sprintf("user %d", me), err
}

// pageLimit is how many statement lines or invoices one page of bills shows.
const pageLimit = 500

// morePages tells, on standard error, how to read the page after a, when the list goes on past it.
func (o *options) morePages(a answer, page int64, what string) {
	if a.total > int(page)*pageLimit {
		fmt.Fprintf(o.env.Stderr, "(page %d of the %d %s: --page %d for the next)\n", page, a.total, what, page+1)
	}
}

func format(csv bool) string {
	if csv {
		return "csv"
	}
	return "json"
}

// raw prints a document as the server wrote it (the CSV of --csv).
func (o *options) raw(b []byte, err error) error {
	if err != nil {
		return err
	}
	_, err = o.env.Stdout.Write(b)
	return err
}
