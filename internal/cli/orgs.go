package cli

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/marketplace/marketplace/internal/cli/apiclient"
)

// roles are the roles a member may hold; the server checks them too.
func roles() []string { return []string{"viewer", "deployer", "publisher", "admin"} }

func orgsCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "orgs", Aliases: []string{"org", "organizations"}, Short: "Your organizations and their members: list, create, members"}
	list := &cobra.Command{
		Use:   "list",
		Short: "Your organizations, with your role in each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := o.session()
			if err != nil {
				return err
			}
			limit := int64(500)
			l, a, err := decode[apiclient.OrgList](s.api.ListOrgs(cmd.Context(), &apiclient.ListOrgsParams{Limit: &limit}))
			if err != nil {
				return err
			}
			return o.show(a.body, func() (table, error) {
				t := table{{"id", "name", "role", "created"}}
				for _, org := range deref(l.Organizations) {
					t = append(t, []string{itoa(org.Id), printable(org.Name, ""), orDash(deref(org.Role)), stamp(org.CreatedAt)})
				}
				return t, nil
			})
		},
	}
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an organization; you are its first admin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := o.session()
			if err != nil {
				return err
			}
			org, a, err := decode[apiclient.Organization](s.api.CreateOrg(cmd.Context(), apiclient.CreateOrgJSONRequestBody{Name: args[0]}))
			if err != nil {
				return err
			}
			if o.output == "json" || o.output == "yaml" {
				return o.show(a.body, nil)
			}
			fmt.Fprintf(o.env.Stdout, "Created organization %d (%s); you are its admin\n", org.Id, printable(org.Name, ""))
			return nil
		},
	}
	cmd.AddCommand(list, create, membersCommand(o))
	return cmd
}

func membersCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "members", Aliases: []string{"member"}, Short: "An organization's members and roles: list, add, set-role, remove"}
	list := &cobra.Command{
		Use:   "list ORG",
		Short: "An organization's members and their roles",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, org, err := orgSession(o, args[0])
			if err != nil {
				return err
			}
			l, a, err := decode[apiclient.MemberList](s.api.ListOrgMembers(cmd.Context(), org))
			if err != nil {
				return err
			}
			return o.show(a.body, func() (table, error) {
				t := table{{"user", "name", "role", "added"}}
				for _, m := range deref(l.Members) {
					t = append(t, []string{itoa(m.UserId), printable(m.Name, ""), string(m.Role), stamp(m.AddedAt)})
				}
				return t, nil
			})
		},
	}
	var role string
	add := &cobra.Command{
		Use:   "add ORG USER",
		Short: "Add a user (by id or name) to an organization with --role (admins only)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(roles(), role) {
				return usageError("--role %q: use one of viewer, deployer, publisher, admin", role)
			}
			s, org, err := orgSession(o, args[0])
			if err != nil {
				return err
			}
			body := apiclient.AddOrgMemberJSONRequestBody{Role: apiclient.AddMemberInputBodyRole(role)}
			if id, ok := parseID(args[1]); ok {
				body.UserId = &id
			} else {
				body.Name = &args[1]
			}
			m, a, err := decode[apiclient.Member](s.api.AddOrgMember(cmd.Context(), org, body))
			if err != nil {
				return err
			}
			if o.output == "json" || o.output == "yaml" {
				return o.show(a.body, nil)
			}
			fmt.Fprintf(o.env.Stdout, "Added user %d (%s) to organization %d as %s\n", m.UserId, printable(m.Name, ""), org, m.Role)
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", "viewer", "the member's role: viewer, deployer, publisher or admin")
	setRole := &cobra.Command{
		Use:   "set-role ORG USER ROLE",
		Short: "Change a member's role (admins only); the last admin keeps the role",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(roles(), args[2]) {
				return usageError("role %q: use one of viewer, deployer, publisher, admin", args[2])
			}
			s, org, err := orgSession(o, args[0])
			if err != nil {
				return err
			}
			user, err := s.member(cmd.Context(), org, args[1])
			if err != nil {
				return err
			}
			m, a, err := decode[apiclient.Member](s.api.SetOrgMemberRole(cmd.Context(), org, user,
				apiclient.SetOrgMemberRoleJSONRequestBody{Role: apiclient.SetRoleInputBodyRole(args[2])}))
			if err != nil {
				return err
			}
			if o.output == "json" || o.output == "yaml" {
				return o.show(a.body, nil)
			}
			fmt.Fprintf(o.env.Stdout, "User %d is now %s of organization %d\n", m.UserId, m.Role, org)
			return nil
		},
	}
	remove := &cobra.Command{
		Use:   "remove ORG USER",
		Short: "Remove a member (admins, or yourself); its tokens reach nothing of the organization at once",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, org, err := orgSession(o, args[0])
			if err != nil {
				return err
			}
			user, err := s.member(cmd.Context(), org, args[1])
			if err != nil {
				return err
			}
			if _, err := read(s.api.RemoveOrgMember(cmd.Context(), org, user)); err != nil {
				return err
			}
			fmt.Fprintf(o.env.Stdout, "Removed user %d from organization %d\n", user, org)
			return nil
		},
	}
	cmd.AddCommand(list, add, setRole, remove)
	return cmd
}

// orgSession opens a session and reads an organization's id.
func orgSession(o *options, ref string) (*session, int64, error) {
	org, ok := parseID(ref)
	if !ok {
		return nil, 0, usageError("%q is not an organization id (mpctl orgs list shows them)", ref)
	}
	s, err := o.session()
	return s, org, err
}

// member finds a member of an organization by user id or by name.
func (s *session) member(ctx context.Context, org int64, ref string) (int64, error) {
	if id, ok := parseID(ref); ok {
		return id, nil
	}
	l, _, err := decode[apiclient.MemberList](s.api.ListOrgMembers(ctx, org))
	if err != nil {
		return 0, err
	}
	var found []int64
	for _, m := range deref(l.Members) {
		if m.Name == ref {
			found = append(found, m.UserId)
		}
	}
	switch len(found) {
	case 0:
		return 0, withCode(ExitNotFound, "organization %d has no member named %q", org, ref)
	case 1:
		return found[0], nil
	}
	return 0, usageError("several members of organization %d are named %q: give the user id", org, ref)
}
