package cli

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/marketplace/marketplace/internal/cli/apiclient"
)

// targetsCommand is the operator's registry of clusters and VM hosts.
func targetsCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "targets", Aliases: []string{"target"}, Short: "Clusters and VM hosts deployments run on (the operator only): list, show, register, remove"}
	list := &cobra.Command{
		Use:   "list",
		Short: "Every target with its health and a VM host's free capacity",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := o.session()
			if err != nil {
				return err
			}
			l, a, err := decode[apiclient.TargetList](s.api.ListTargets(cmd.Context()))
			if err != nil {
				return err
			}
			return o.show(a.body, func() (table, error) {
				t := table{{"id", "kind", "name", "labels", "address", "reachable", "version", "free", "deployments"}}
				for _, tg := range deref(l.Targets) {
					t = append(t, []string{itoa(tg.Id), string(tg.Kind), printable(tg.Name, ""), labelsText(tg.Labels),
						printable(deref(tg.Address), ""), reachableText(tg.Health), printable(orDash(deref(tg.Health.Version)), ""),
						freeText(tg.Capacity), itoa(tg.Deployments)})
				}
				return t, nil
			})
		},
	}
	show := &cobra.Command{
		Use:   "show ID",
		Short: "One target: health, the error when unreachable, a VM host's capacity",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ok := parseID(args[0])
			if !ok {
				return usageError("%q is not a target id (mpctl targets list shows them)", args[0])
			}
			s, err := o.session()
			if err != nil {
				return err
			}
			tg, a, err := decode[apiclient.Target](s.api.GetTarget(cmd.Context(), id))
			if err != nil {
				return err
			}
			return o.show(a.body, func() (table, error) {
				t := table{{"field", "value"},
					{"id", itoa(tg.Id)}, {"kind", string(tg.Kind)}, {"name", printable(tg.Name, "")},
					{"labels", labelsText(tg.Labels)}, {"address", printable(orDash(deref(tg.Address)), "")},
					{"reachable", reachableText(tg.Health)}, {"version", printable(orDash(deref(tg.Health.Version)), "")},
					{"error", printable(orDash(deref(tg.Health.Error)), "")}, {"deployments", itoa(tg.Deployments)}}
				if c := tg.Capacity; c != nil {
					t = append(t, []string{"total", sizeText(c.Total)}, []string{"allocatable", sizeText(c.Allocatable)},
						[]string{"placed", sizeText(c.Placed)}, []string{"free", sizeText(c.Free)})
				}
				return t, nil
			})
		},
	}
	var kubeconfig, uri string
	var labels []string
	register := &cobra.Command{
		Use:   "register NAME (--kubeconfig FILE | --uri LIBVIRT_URI)",
		Short: "Register a cluster by its kubeconfig (sealed, never shown again) or a VM host by its libvirt URI",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := apiclient.RegisterTargetJSONRequestBody{Name: args[0]}
			switch {
			case (kubeconfig == "") == (uri == ""):
				return usageError("give exactly one of --kubeconfig FILE (a cluster) and --uri LIBVIRT_URI (a VM host)")
			case kubeconfig != "":
				b, err := os.ReadFile(kubeconfig)
				if err != nil {
					return usageError("--kubeconfig %s: %v", kubeconfig, err)
				}
				body.Kind, body.Kubeconfig = apiclient.RegisterTargetInputBodyKindK8s, ptr(string(b))
			default:
				body.Kind, body.Uri = apiclient.RegisterTargetInputBodyKindVm, &uri
			}
			if len(labels) > 0 {
				m := map[string]string{}
				for _, l := range labels {
					k, v, ok := strings.Cut(l, "=")
					if !ok || k == "" {
						return usageError("--label %q: key=value", l)
					}
					m[k] = v
				}
				body.Labels = &m
			}
			s, err := o.session()
			if err != nil {
				return err
			}
			tg, a, err := decode[apiclient.Target](s.api.RegisterTarget(cmd.Context(), body))
			if err != nil {
				return err
			}
			if o.output == "json" || o.output == "yaml" {
				return o.show(a.body, nil)
			}
			fmt.Fprintf(o.env.Stdout, "Registered %s target %d (%s); a worker checks its health within TARGET_CHECK_INTERVAL\n", tg.Kind, tg.Id, printable(tg.Name, ""))
			return nil
		},
	}
	register.Flags().StringVar(&kubeconfig, "kubeconfig", "", "the cluster's kubeconfig file (its current context)")
	register.Flags().StringVar(&uri, "uri", "", "the VM host's libvirt URI: qemu+tcp://host/system, qemu+ssh://user@host/system, qemu+unix:///system?socket=PATH")
	register.Flags().StringArrayVar(&labels, "label", nil, "a label key=value (repeatable): region=eu, env=prod")
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a target nothing runs on (refused while deployments run on it, and for a default)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ok := parseID(args[0])
			if !ok {
				return usageError("%q is not a target id (mpctl targets list shows them)", args[0])
			}
			s, err := o.session()
			if err != nil {
				return err
			}
			if _, err := read(s.api.RemoveTarget(cmd.Context(), id)); err != nil {
				return err
			}
			fmt.Fprintf(o.env.Stdout, "Removed target %d\n", id)
			return nil
		},
	}
	cmd.AddCommand(list, show, register, remove)
	return cmd
}

func labelsText(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, printable(k+"="+labels[k], ""))
	}
	return orDash(strings.Join(parts, ","))
}

func reachableText(h apiclient.TargetHealth) string {
	switch {
	case h.CheckedAt == nil:
		return "unchecked"
	case h.Reachable:
		return "yes"
	}
	return "no"
}

func sizeText(s apiclient.VMSize) string {
	return fmt.Sprintf("%d vCPUs, %d MiB", s.Vcpus, s.MemoryMib)
}

func freeText(c *apiclient.TargetCapacity) string {
	if c == nil {
		return "-"
	}
	return sizeText(c.Free)
}
