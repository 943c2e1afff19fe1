package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/marketplace/marketplace/internal/cli/apiclient"
)

func appsCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "apps", Aliases: []string{"app"}, Short: "The catalog: list, show, publish, versions"}
	var typ, category, publisherName, sort string
	var publisher, page, limit int64
	list := &cobra.Command{
		Use:   "list",
		Short: "A page of the catalog",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := o.session()
			if err != nil {
				return err
			}
			params := &apiclient.ListAppsParams{Page: &page, Limit: &limit}
			if publisher > 0 {
				params.Publisher = &publisher
			}
			if typ != "" {
				params.DeploymentType = ptr(apiclient.ListAppsParamsDeploymentType(typ))
			}
			if category != "" {
				params.Category = &category
			}
			if publisherName != "" {
				params.PublisherName = &publisherName
			}
			if sort != "" {
				params.Sort = ptr(apiclient.ListAppsParamsSort(sort))
			}
			p, a, err := decode[apiclient.AppPage](s.api.ListApps(cmd.Context(), params))
			if err != nil {
				return err
			}
			return o.show(a.body, func() (table, error) {
				t := table{{"id", "name", "type", "version", "publisher", "rate/h", "categories", "chart or image"}}
				for _, app := range deref(p.Data) {
					name := app.Name
					if deref(app.Private) {
						name += " (private)"
					}
					t = append(t, []string{itoa(app.Id), name, string(app.Deployment.Type), itoa(app.Version),
						publisherOf(app), app.HourlyRate.String(), orDash(strings.Join(deref(app.Categories), ",")), source(app.Deployment)})
				}
				if p.TotalPages > 1 {
					fmt.Fprintf(o.env.Stderr, "page %d of %d (%d applications): --page N\n", p.Page, p.TotalPages, p.TotalItems)
				}
				return t, nil
			})
		},
	}
	list.Flags().StringVar(&typ, "type", "", "only k8s or vm applications")
	list.Flags().Int64Var(&publisher, "publisher", 0, "only this publisher's applications (a user id)")
	list.Flags().StringVar(&publisherName, "publisher-name", "", "only the applications of the publishers of this name (any case)")
	list.Flags().StringVar(&category, "category", "", "only applications of this category (a keyword of their package)")
	list.Flags().StringVar(&sort, "sort", "", "order: name, newest, price (cheapest first) or -price (dearest first); by id if absent")
	list.Flags().Int64Var(&page, "page", 1, "which page, from 1")
	list.Flags().Int64Var(&limit, "limit", 50, "applications per page (at most 100)")

	show := &cobra.Command{
		Use:   "show APP",
		Short: "One application (by id or name) with its inputs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := o.session()
			if err != nil {
				return err
			}
			id, ok := parseID(args[0])
			if !ok {
				named, err := s.app(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				id = named.Id
			}
			app, a, err := decode[apiclient.Application](s.api.GetApp(cmd.Context(), id))
			if err != nil {
				return err
			}
			return o.show(a.body, func() (table, error) {
				t := table{{"field", "value"},
					{"id", itoa(app.Id)}, {"name", app.Name}, {"description", orDash(app.Description)},
					{"type", string(app.Deployment.Type)}, {"source", source(app.Deployment)},
					{"version", itoa(app.Version)}, {"publisher", publisherOf(app)},
					{"categories", orDash(strings.Join(deref(app.Categories), ", "))},
					{"rate/h", app.HourlyRate.String()}, {"created", stamp(app.CreatedAt)}}
				if deref(app.Private) {
					t = append(t, []string{"visibility", "private"})
				}
				if app.RetiredAt != nil {
					t = append(t, []string{"retired", stamp(*app.RetiredAt)})
				}
				if sig := app.Signature; sig != nil {
					t = append(t, []string{"signature", signature(sig)})
				}
				for _, in := range deref(app.Inputs) {
					desc := string(deref(in.Type))
					if desc == "" {
						desc = "string"
					}
					if in.Default != nil {
						desc += fmt.Sprintf(", default %v", in.Default)
					}
					if deref(in.Required) {
						desc += ", required"
					}
					t = append(t, []string{"input " + in.Name, desc})
				}
				return append(t, aboutRows(app.About)...), nil
			})
		},
	}

	var file string
	var org int64
	publish := &cobra.Command{
		Use:   "publish -f app.yaml",
		Short: "Publish an application described in a YAML (or JSON) file, as POST /api/apps/new takes it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := readDocument(o.env.Stdin, file)
			if err != nil {
				return err
			}
			if org > 0 {
				if body, err = withField(body, "organization_id", org); err != nil {
					return usageError("-f %s: %v", file, err)
				}
			}
			s, err := o.session()
			if err != nil {
				return err
			}
			app, a, err := decode[apiclient.Application](s.api.CreateAppWithBody(cmd.Context(), "application/json", bytes.NewReader(body)))
			if err != nil {
				return err
			}
			if o.output == "json" || o.output == "yaml" {
				return o.show(a.body, nil)
			}
			fmt.Fprintf(o.env.Stdout, "Published application %d (%s), version %d, at %s an hour\n", app.Id, printable(app.Name, ""), app.Version, app.HourlyRate)
			return nil
		},
	}
	publish.Flags().StringVarP(&file, "file", "f", "", "the application: name, description, hourly_rate, deployment, inputs (- for stdin)")
	publish.MarkFlagRequired("file")
	publish.Flags().Int64Var(&org, "org", 0, "publish in this organization's name (you must be its admin or publisher); its revenue goes to it")

	versions := &cobra.Command{
		Use:   "versions APP",
		Short: "An application's versions, oldest first (every page)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := o.session()
			if err != nil {
				return err
			}
			app, err := s.app(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			raw, err := listAll(func(page, limit int64) (*http.Response, error) {
				return s.api.ListVersions(cmd.Context(), app.Id, &apiclient.ListVersionsParams{Page: &page, Limit: &limit})
			})
			if err != nil {
				return err
			}
			return o.show(rawList(raw), func() (table, error) {
				vs, err := decodeItems[apiclient.AppVersion](raw)
				if err != nil {
					return nil, err
				}
				t := table{{"version", "rate/h", "source", "created", "deprecated", "changelog"}}
				for _, v := range vs {
					dep := "-"
					if v.DeprecatedAt != nil {
						dep = v.DeprecatedAt.UTC().Format("2006-01-02")
					}
					t = append(t, []string{itoa(v.Version), v.HourlyRate.String(), source(v.Deployment),
						v.CreatedAt.UTC().Format("2006-01-02 15:04"), dep, orDash(firstLine(v.Changelog))})
				}
				return t, nil
			})
		},
	}
	icon := &cobra.Command{
		Use:   "icon APP FILE",
		Short: "Set a vm application's icon from a PNG, JPEG or GIF file (a chart's icon is the chart's)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			picture, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			s, err := o.session()
			if err != nil {
				return err
			}
			id, ok := parseID(args[0])
			if !ok {
				named, err := s.app(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				id = named.Id
			}
			answer, a, err := decode[apiclient.IconAnswer](s.api.SetAppIconWithBody(cmd.Context(), id, http.DetectContentType(picture), bytes.NewReader(picture)))
			if err != nil {
				return err
			}
			if o.output == "json" || o.output == "yaml" {
				return o.show(a.body, nil)
			}
			fmt.Fprintf(o.env.Stdout, "Application %d's icon is %s\n", id, answer.Icon)
			return nil
		},
	}
	cmd.AddCommand(list, show, publish, versions, icon, visibilityCommand(o))
	return cmd
}

// source is where an application's chart or image comes from.
func source(d apiclient.DeploymentSpec) string {
	if d.Type == "vm" {
		return fmt.Sprintf("%s (%s vCPU, %s)", deref(d.Image), deref(d.Cpu), deref(d.Memory))
	}
	s := deref(d.RepoURL) + " " + deref(d.ChartName)
	if v := deref(d.ChartVersion); v != "" {
		s += "@" + v
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// readDocument reads a YAML or JSON file (or stdin for "-") as JSON. A decimal number goes through a
// float64 on the way, which keeps the value of any number of up to 15 significant digits: every rate
// the API accepts (at most 6 decimal places) below a billion an hour.
func readDocument(stdin io.Reader, file string) ([]byte, error) {
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, usageError("-f %s: %v", file, err)
	}
	js, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, usageError("-f %s is neither YAML nor JSON: %v", file, err)
	}
	return js, nil
}

// withField sets one field of a JSON object.
func withField(doc []byte, field string, value any) ([]byte, error) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber() // numbers (a rate) as they were written
	if err := d.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("not an object: %v", err)
	}
	m[field] = value
	return json.Marshal(m)
}

// aboutRows are the rows of what an application's latest version says about itself; its README is on
// the application's page (and in -o json).
// publisherOf is an application's publisher as a table shows it: its name and id.
func publisherOf(app apiclient.Application) string {
	if app.PublisherName == "" {
		return itoa(app.PublisherId)
	}
	return app.PublisherName + " (" + itoa(app.PublisherId) + ")"
}

func aboutRows(a *apiclient.About) table {
	if a == nil {
		return table{{"about", "not read yet"}}
	}
	var t table
	add := func(field, value string) {
		if value != "" {
			t = append(t, []string{field, value})
		}
	}
	add("icon", deref(a.Icon))
	add("app version", deref(a.AppVersion))
	add("license", deref(a.License))
	add("keywords", strings.Join(deref(a.Keywords), ", "))
	add("home", deref(a.Home))
	for _, src := range deref(a.Sources) {
		add("source", src)
	}
	for _, m := range deref(a.Maintainers) {
		who := m.Name
		if e := deref(m.Email); e != "" {
			who += " <" + e + ">"
		}
		if u := deref(m.Url); u != "" {
			who += " " + u
		}
		add("maintainer", who)
	}
	for _, l := range deref(a.Links) {
		add("link", l.Name+" "+l.Url)
	}
	if deref(a.ReadmeHtml) != "" {
		add("readme", "yes: on the application's page, or -o json (readme_html)")
	}
	for _, n := range deref(a.Notes) {
		add("refused", n)
	}
	return t
}

// signature is a chart's provenance as checked at publish: "verified (signer FINGERPRINT)" or why not.
func signature(sig *apiclient.ChartSignature) string {
	if sig.Verified {
		return "verified (signer " + deref(sig.Signer) + ")"
	}
	why := string(sig.Outcome)
	if r := deref(sig.Reason); r != "" {
		why += ": " + r
	}
	return "not verified, " + why
}
