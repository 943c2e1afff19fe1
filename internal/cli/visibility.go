package cli

import (
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/marketplace/marketplace/internal/cli/apiclient"
)

// visibilityCommand shows or changes who may see an application: `apps visibility APP` shows it,
// `apps visibility APP private --share 3 --share 4`, `--unshare 4` or `public` change it (read, changed,
// written back whole with PUT /api/apps/{id}/visibility).
func visibilityCommand(o *options) *cobra.Command {
	var share, unshare []int64
	cmd := &cobra.Command{
		Use:   "visibility APP [public|private]",
		Short: "Show or change who sees an application: public, or private and shared with organizations (--share ORG, --unshare ORG)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 && args[1] != "public" && args[1] != "private" {
				return usageError("visibility: public or private, not %q", args[1])
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
			v, a, err := decode[apiclient.Visibility](s.api.GetAppVisibility(cmd.Context(), id))
			if err != nil {
				return err
			}
			if len(args) == 2 || len(share) > 0 || len(unshare) > 0 {
				orgs := slices.DeleteFunc(append(deref(v.SharedWith), share...), func(org int64) bool { return slices.Contains(unshare, org) })
				if len(args) == 2 {
					v.Visibility = apiclient.VisibilityVisibility(args[1])
				}
				if v.Visibility == "public" {
					orgs = nil
				}
				v.SharedWith = &orgs
				if v, a, err = decode[apiclient.Visibility](s.api.SetAppVisibility(cmd.Context(), id, v)); err != nil {
					return err
				}
			}
			return o.show(a.body, func() (table, error) {
				orgs := make([]string, 0, len(deref(v.SharedWith)))
				for _, org := range deref(v.SharedWith) {
					orgs = append(orgs, strconv.FormatInt(org, 10))
				}
				return table{{"application", "visibility", "shared with organizations"},
					{itoa(id), string(v.Visibility), orDash(strings.Join(orgs, ", "))}}, nil
			})
		},
	}
	cmd.Flags().Int64SliceVar(&share, "share", nil, "share a private application with this organization (repeatable)")
	cmd.Flags().Int64SliceVar(&unshare, "unshare", nil, "stop sharing with this organization (repeatable)")
	return cmd
}
