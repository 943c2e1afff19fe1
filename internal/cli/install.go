package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/marketplace/marketplace/internal/cli/apiclient"
)

// inputFlags are --values and --set, the inputs of an install or an upgrade.
type inputFlags struct {
	values []string
	set    []string
}

func (f *inputFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.set, "set", nil, "an input, name=value (repeatable; a name is a dotted path such as service.port)")
	cmd.Flags().StringArrayVar(&f.values, "values", nil, "a YAML file of inputs, nested maps read as dotted names (repeatable; --set wins)")
}

// inputs merges the values files, then the --set pairs. A --set value is read as the type the
// application declares for that input (a string input keeps "007"), otherwise as YAML would read it
// (true, 3, 1.5, text); the API checks the types again.
func (f *inputFlags) inputs(declared []apiclient.Input) (map[string]any, error) {
	if len(f.values) == 0 && len(f.set) == 0 {
		return nil, nil
	}
	types := map[string]string{}
	for _, in := range declared {
		types[in.Name] = string(deref(in.Type))
	}
	out := map[string]any{}
	for _, file := range f.values {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageError("--values %s: %v", file, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, usageError("--values %s is not a YAML map: %v", file, err)
		}
		flatten("", m, out)
	}
	for _, kv := range f.set {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, usageError("--set %q: want name=value", kv)
		}
		out[name] = scalar(value, types[name])
	}
	return out, nil
}

func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			flatten(prefix+k+".", sub, out)
			continue
		}
		out[prefix+k] = v
	}
}

// scalar reads a --set value as the declared type, or guesses it when the input is not declared.
func scalar(s, declared string) any {
	switch declared {
	case "string":
		return s
	case "integer", "number":
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return json.Number(s)
		}
		return s // the API says what is wrong with it
	case "boolean":
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
		return s
	}
	if b, err := strconv.ParseBool(s); err == nil && (s == "true" || s == "false") {
		return b
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "xXn_") {
		return json.Number(s)
	}
	return s
}

func installCommand(o *options) *cobra.Command {
	var project, policy string
	var version, user int64
	var dryRun bool
	var in inputFlags
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "install APP --project PROJECT [--set name=value] [--values file.yaml] [--wait] [--dry-run]",
		Short: "Deploy an application (id or name) into a project (id or name)",
		Long: "install asks the marketplace to deploy APP into PROJECT; a worker installs it. --wait follows its\n" +
			"status until it is installed (exit 0) or failed (exit 4, with the reason). --dry-run checks the request\n" +
			"and shows what would be created and what it costs, creating nothing.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := o.session()
			if err != nil {
				return err
			}
			app, err := s.app(ctx, args[0])
			if err != nil {
				return err
			}
			projectID, err := s.project(ctx, project, user)
			if err != nil {
				return err
			}
			inputs, err := in.inputs(deref(app.Inputs))
			if err != nil {
				return err
			}
			body := apiclient.InstallJSONRequestBody{ApplicationId: app.Id, ProjectId: projectID}
			if inputs != nil {
				body.Inputs = &inputs
			}
			if version > 0 {
				body.Version = &version
			}
			if policy != "" {
				body.UpgradePolicy = ptr(apiclient.InstallInputBodyUpgradePolicy(policy))
			}
			if user > 0 {
				body.ConsumerId = &user
			}
			q, a, err := decode[apiclient.Queued](s.api.Install(ctx, &apiclient.InstallParams{DryRun: &dryRun}, body))
			if err != nil {
				return err
			}
			if dryRun {
				return o.show(a.body, func() (table, error) { return previewTable(o, q.Preview), nil })
			}
			id := deref(q.DeploymentID)
			fmt.Fprintf(o.env.Stdout, "Deployment %d of %s into project %d: %s\n", id, printable(app.Name, ""), projectID, printable(deref(q.Status), ""))
			if !w.wait {
				return nil
			}
			return o.waitFor(ctx, s, id, w, untilInstalled(0))
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the project (id or name)")
	cmd.MarkFlagRequired("project")
	cmd.Flags().Int64Var(&version, "version", 0, "the application version (default its latest one not deprecated)")
	cmd.Flags().StringVar(&policy, "upgrade-policy", "", "manual (default) or auto: follow the application's new versions")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check and preview the install (objects, cost) without creating anything")
	cmd.Flags().Int64Var(&user, "user", 0, "the consumer (the operator acting for a user; default: the token's user)")
	in.register(cmd)
	w.register(cmd)
	return cmd
}

// previewTable shows what a dry run would do: the version, the cost and the objects.
func previewTable(o *options, p *apiclient.Preview) table {
	if p == nil {
		return table{{"preview"}, {"none"}}
	}
	fmt.Fprintf(o.env.Stdout, "Dry run: nothing was changed. Version %d at %s an hour, %s for 30 days.\n",
		p.Version, p.HourlyRate, p.Cost30Days)
	t := table{{"change", "kind", "name", "api version"}}
	add := func(change string, rs *[]apiclient.PreviewResource) {
		list := deref(rs)
		sort.SliceStable(list, func(i, j int) bool { return list[i].Kind+list[i].Name < list[j].Kind+list[j].Name })
		for _, r := range list {
			t = append(t, []string{change, r.Kind, r.Name, r.ApiVersion})
		}
	}
	if p.Diff != nil {
		add("add", p.Diff.Added)
		add("change", p.Diff.Changed)
		add("remove", p.Diff.Removed)
	} else {
		add("create", p.Resources)
	}
	return t
}
