package cli

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/marketplace/marketplace/internal/cli/apiclient"
)

func deploymentsCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "deployments", Aliases: []string{"deployment", "deploy"},
		Short: "Your deployments: list, show, upgrade, rollback, delete, logs"}
	var status string
	var updates bool
	var org int64
	list := &cobra.Command{
		Use:   "list",
		Short: "Your deployments, newest first (every page)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := o.session()
			if err != nil {
				return err
			}
			params := apiclient.ListDeploymentsParams{}
			if status != "" {
				params.Status = ptr(apiclient.ListDeploymentsParamsStatus(status))
			}
			if updates {
				params.UpdateAvailable = &updates
			}
			if org > 0 {
				params.OrganizationId = &org
			}
			raw, err := listAll(func(page, limit int64) (*http.Response, error) {
				p := params
				p.Page, p.Limit = &page, &limit
				return s.api.ListDeployments(cmd.Context(), &p)
			})
			if err != nil {
				return err
			}
			return o.show(rawList(raw), func() (table, error) {
				ds, err := decodeItems[apiclient.Deployment](raw)
				t := table{{"id", "app", "project", "type", "version", "status", "rate/h", "age", "reason"}}
				for _, d := range ds {
					t = append(t, []string{itoa(d.Id), itoa(d.ApplicationId), itoa(d.ProjectId), d.Type, versionCell(&d),
						d.Status, d.HourlyRate.String(), since(d.CreatedAt), orDash(truncate(deref(d.FailureReason), 60))})
				}
				return t, err
			})
		},
	}
	list.Flags().StringVar(&status, "status", "", "only deployments in this status (pending, installing, installed, failed, upgrading, uninstalling, uninstalled)")
	list.Flags().BoolVar(&updates, "update-available", false, "only deployments with a newer version of their application out")
	list.Flags().Int64Var(&org, "org", 0, "only the deployments of this organization's projects")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "One deployment: status, placement, health, inputs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, id, err := o.deploymentSession(args[0])
			if err != nil {
				return err
			}
			d, a, err := decode[apiclient.Deployment](s.api.GetDeployment(cmd.Context(), id))
			if err != nil {
				return err
			}
			return o.show(a.body, func() (table, error) { return deploymentTable(&d), nil })
		},
	}

	var version int64
	var dryRun bool
	var in inputFlags
	var w waitFlags
	upgrade := &cobra.Command{
		Use:   "upgrade ID [--version N] [--set name=value] [--values file.yaml] [--wait] [--dry-run]",
		Short: "Upgrade a deployment to another version or inputs; the running revision stays until the new one is ready",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, id, err := o.deploymentSession(args[0])
			if err != nil {
				return err
			}
			var declared []apiclient.Input
			if len(in.set) > 0 {
				d, _, err := decode[apiclient.Deployment](s.api.GetDeployment(ctx, id))
				if err != nil {
					return err
				}
				app, err := s.app(ctx, itoa(d.ApplicationId))
				if err != nil {
					return err
				}
				declared = deref(app.Inputs)
			}
			inputs, err := in.inputs(declared)
			if err != nil {
				return err
			}
			body := apiclient.UpgradeJSONRequestBody{}
			if version > 0 {
				body.Version = &version
			}
			if inputs != nil {
				body.Inputs = &inputs
			}
			q, a, err := decode[apiclient.Queued](s.api.Upgrade(ctx, id, &apiclient.UpgradeParams{DryRun: &dryRun}, body))
			if err != nil {
				return err
			}
			if dryRun {
				return o.show(a.body, func() (table, error) { return previewTable(o, q.Preview), nil })
			}
			fmt.Fprintf(o.env.Stdout, "%s: deployment %d %s\n", printable(q.Message, ""), id, printable(deref(q.Status), ""))
			if !w.wait {
				return nil
			}
			return o.waitFor(ctx, s, id, w, untilInstalled(version))
		},
	}
	upgrade.Flags().Int64Var(&version, "version", 0, "the version to move to (default the latest one not deprecated)")
	upgrade.Flags().BoolVar(&dryRun, "dry-run", false, "preview what would change and what it costs, changing nothing")
	in.register(upgrade)
	w.register(upgrade)

	var revision int64
	var rw waitFlags
	rollback := &cobra.Command{
		Use:   "rollback ID [--revision N] [--wait]",
		Short: "Return a deployment to an earlier revision's version and inputs (default the one before)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, id, err := o.deploymentSession(args[0])
			if err != nil {
				return err
			}
			body := apiclient.RollbackJSONRequestBody{}
			if revision > 0 {
				body.Revision = &revision
			}
			q, _, err := decode[apiclient.Queued](s.api.Rollback(cmd.Context(), id, body))
			if err != nil {
				return err
			}
			fmt.Fprintf(o.env.Stdout, "%s: deployment %d %s\n", printable(q.Message, ""), id, printable(deref(q.Status), ""))
			if !rw.wait {
				return nil
			}
			return o.waitFor(cmd.Context(), s, id, rw, untilInstalled(0))
		},
	}
	rollback.Flags().Int64Var(&revision, "revision", 0, "the revision to return to (see `deployments revisions`)")
	rw.register(rollback)

	revisions := &cobra.Command{
		Use:   "revisions ID",
		Short: "The revisions a deployment ran, oldest first (every page)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, id, err := o.deploymentSession(args[0])
			if err != nil {
				return err
			}
			raw, err := listAll(func(page, limit int64) (*http.Response, error) {
				return s.api.ListRevisions(cmd.Context(), id, &apiclient.ListRevisionsParams{Page: &page, Limit: &limit})
			})
			if err != nil {
				return err
			}
			return o.show(rawList(raw), func() (table, error) {
				revs, err := decodeItems[apiclient.Revision](raw)
				if err != nil {
					return nil, err
				}
				t := table{{"revision", "version", "chart version", "created", "inputs"}}
				for _, r := range revs {
					t = append(t, []string{itoa(r.Revision), itoa(r.Version), orDash(deref(r.ChartVersion)),
						stamp(r.CreatedAt), inputsCell(r.Inputs)})
				}
				return t, nil
			})
		},
	}

	var dw waitFlags
	del := &cobra.Command{
		Use:   "delete ID [--wait]",
		Short: "Delete a deployment: billing stops now, a worker uninstalls it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, id, err := o.deploymentSession(args[0])
			if err != nil {
				return err
			}
			q, _, err := decode[apiclient.Queued](s.api.Uninstall(cmd.Context(), id))
			if err != nil {
				return err
			}
			fmt.Fprintf(o.env.Stdout, "%s: deployment %d %s\n", printable(q.Message, ""), id, printable(deref(q.Status), ""))
			if !dw.wait {
				return nil
			}
			return o.waitFor(cmd.Context(), s, id, dw, untilUninstalled)
		},
	}
	dw.register(del)

	var tail int64
	logs := &cobra.Command{
		Use:   "logs ID",
		Short: "The tail of a vm deployment's serial console",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, id, err := o.deploymentSession(args[0])
			if err != nil {
				return err
			}
			c, a, err := decode[apiclient.ConsoleOutput](s.api.DeploymentConsole(cmd.Context(), id, &apiclient.DeploymentConsoleParams{Bytes: &tail}))
			if err != nil {
				return err
			}
			if o.output == "json" || o.output == "yaml" {
				return o.show(a.body, nil)
			}
			// The guest's console, colours and all, is shown as text: the guest runs the publisher's image.
			fmt.Fprint(o.env.Stdout, printable(c.Console, "\n\t"))
			if !strings.HasSuffix(c.Console, "\n") && c.Console != "" {
				fmt.Fprintln(o.env.Stdout)
			}
			fmt.Fprintf(o.env.Stderr, "deployment %d: %s, vm %s\n", c.DeploymentId, printable(c.Status, ""), printable(c.LiveState, ""))
			return nil
		},
	}
	logs.Flags().Int64Var(&tail, "bytes", 16384, "how much of the end of the console")

	cmd.AddCommand(list, show, upgrade, rollback, revisions, del, logs)
	return cmd
}

func versionCell(d *apiclient.Deployment) string {
	v := itoa(d.Version)
	if d.TargetVersion != nil && *d.TargetVersion != d.Version {
		v += "→" + itoa(*d.TargetVersion)
	}
	if d.UpdateAvailable != nil {
		v += " (" + itoa(d.UpdateAvailable.Version) + " out)"
	}
	return v
}

func deploymentTable(d *apiclient.Deployment) table {
	t := table{{"field", "value"},
		{"id", itoa(d.Id)}, {"application", itoa(d.ApplicationId)}, {"project", itoa(d.ProjectId)},
		{"type", d.Type}, {"version", versionCell(d)}, {"status", d.Status},
		{"rate/h", d.HourlyRate.String()}, {"attempts", itoa(d.Attempts)}, {"upgrade policy", string(d.UpgradePolicy)},
		{"created", stamp(d.CreatedAt)}, {"updated", stamp(d.UpdatedAt)}}
	p := d.Placement
	for _, kv := range [][2]string{{"namespace", deref(p.Namespace)}, {"release", deref(p.ReleaseName)},
		{"chart version", deref(p.ChartVersion)}, {"vm", deref(p.VmName)}, {"ip address", deref(p.IpAddress)},
		{"failure reason", deref(d.FailureReason)}} {
		if kv[1] != "" {
			t = append(t, []string{kv[0], kv[1]})
		}
	}
	if h := d.Health; h != nil {
		t = append(t, []string{"health", string(h.Status)})
		for _, w := range deref(h.Workloads) {
			t = append(t, []string{"  " + w.Kind + "/" + w.Name, fmt.Sprintf("%d/%d ready", w.Ready, w.Desired)})
		}
	}
	t = append(t, []string{"inputs", inputsCell(d.Inputs)})
	return t
}

func inputsCell(in map[string]any) string {
	if len(in) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(in))
	for k, v := range in {
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
