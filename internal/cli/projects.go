package cli

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/marketplace/marketplace/internal/cli/apiclient"
)

func projectsCommand(o *options) *cobra.Command {
	var user, org, listOrg int64
	cmd := &cobra.Command{Use: "projects", Aliases: []string{"project"}, Short: "Your projects: list, create, delete"}
	cmd.PersistentFlags().Int64Var(&user, "user", 0, "whose projects (the operator acting for a user; default: the token's user)")
	list := &cobra.Command{
		Use:   "list",
		Short: "Your projects, or an organization's (--org)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var raw []json.RawMessage
			if listOrg > 0 {
				s, err := o.session()
				if err != nil {
					return err
				}
				raw, err = listAll(func(page, limit int64) (*http.Response, error) {
					return s.api.ListOrgProjects(cmd.Context(), listOrg, &apiclient.ListOrgProjectsParams{Page: &page, Limit: &limit})
				})
				if err != nil {
					return err
				}
			} else {
				s, me, err := o.userSession(cmd.Context(), user)
				if err != nil {
					return err
				}
				if raw, err = listAll(func(page, limit int64) (*http.Response, error) {
					return s.api.ListUserProjects(cmd.Context(), me, &apiclient.ListUserProjectsParams{Page: &page, Limit: &limit})
				}); err != nil {
					return err
				}
			}
			return o.show(rawList(raw), func() (table, error) {
				ps, err := decodeItems[apiclient.Project](raw)
				t := table{{"id", "name", "created"}}
				for _, p := range ps {
					t = append(t, []string{itoa(p.Id), p.Name, stamp(p.CreatedAt)})
				}
				return t, err
			})
		},
	}
	list.Flags().Int64Var(&listOrg, "org", 0, "the projects of this organization (you must be one of its members)")
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := o.session()
			if err != nil {
				return err
			}
			body := apiclient.CreateProjectJSONRequestBody{Name: args[0]}
			if user > 0 {
				body.UserId = &user
			}
			if org > 0 {
				body.OrganizationId = &org
			}
			p, a, err := decode[apiclient.Project](s.api.CreateProject(cmd.Context(), body))
			if err != nil {
				return err
			}
			if o.output == "json" || o.output == "yaml" {
				return o.show(a.body, nil)
			}
			if org > 0 {
				fmt.Fprintf(o.env.Stdout, "Created project %d (%s) of organization %d\n", p.Id, printable(p.Name, ""), org)
				return nil
			}
			fmt.Fprintf(o.env.Stdout, "Created project %d (%s)\n", p.Id, printable(p.Name, ""))
			return nil
		},
	}
	create.Flags().Int64Var(&org, "org", 0, "create the project in this organization (you must be one of its admins); its deployments are billed to it")
	del := &cobra.Command{
		Use:   "delete PROJECT",
		Short: "Delete a project (by id or name); refused while it has live deployments",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := o.session()
			if err != nil {
				return err
			}
			id, err := s.project(cmd.Context(), args[0], user)
			if err != nil {
				return err
			}
			if _, err := read(s.api.DeleteProject(cmd.Context(), id)); err != nil {
				return err
			}
			fmt.Fprintf(o.env.Stdout, "Deleted project %d\n", id)
			return nil
		},
	}
	cmd.AddCommand(list, create, del)
	return cmd
}
