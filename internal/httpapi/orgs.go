package httpapi

import (
	"context"
	"log/slog"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Organizations, their members and roles, and their bills. Whether the caller may is the store's
// decision (a stranger gets 404, a member without the role 403); handlers only read and validate input.

type createOrgInput struct {
	Body struct {
		Name string `json:"name" minLength:"1" maxLength:"100"`
	}
}

func createOrg(orgs marketplace.OrganizationService, log *slog.Logger) func(context.Context, *createOrgInput) (*body[*marketplace.Organization], error) {
	return func(ctx context.Context, in *createOrgInput) (*body[*marketplace.Organization], error) {
		o := &marketplace.Organization{Name: in.Body.Name}
		err := marketplace.ValidateName("name", o.Name)
		if err == nil {
			err = orgs.CreateOrganization(ctx, o)
		}
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Organization]{o}, nil
	}
}

type orgList struct {
	Organizations []*marketplace.Organization `json:"organizations"`
}

func listOrgs(orgs marketplace.OrganizationService, log *slog.Logger) func(context.Context, *struct{ PageQuery }) (*paged[orgList], error) {
	return func(ctx context.Context, in *struct{ PageQuery }) (*paged[orgList], error) {
		list, total, err := orgs.FindOrganizations(ctx, in.page())
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, total, orgList{Organizations: list}), nil
	}
}

func getOrg(orgs marketplace.OrganizationService, log *slog.Logger) func(context.Context, *idInput) (*body[*marketplace.Organization], error) {
	return func(ctx context.Context, in *idInput) (*body[*marketplace.Organization], error) {
		o, err := orgs.FindOrganizationByID(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Organization]{o}, nil
	}
}

type memberList struct {
	Members []*marketplace.Member `json:"members"`
}

func listMembers(orgs marketplace.OrganizationService, log *slog.Logger) func(context.Context, *idInput) (*body[memberList], error) {
	return func(ctx context.Context, in *idInput) (*body[memberList], error) {
		members, err := orgs.FindMembers(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[memberList]{memberList{Members: members}}, nil
	}
}

type addMemberInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		UserID int64  `json:"user_id" required:"false" minimum:"1" doc:"the user to add; or name"`
		Name   string `json:"name" required:"false" maxLength:"100" doc:"the name of the user to add, when no other user has it; or user_id"`
		Role   string `json:"role" enum:"viewer,deployer,publisher,admin"`
	}
}

func addMember(orgs marketplace.OrganizationService, log *slog.Logger) func(context.Context, *addMemberInput) (*body[*marketplace.Member], error) {
	return func(ctx context.Context, in *addMemberInput) (*body[*marketplace.Member], error) {
		m := &marketplace.Member{OrganizationID: in.ID, UserID: in.Body.UserID, Name: in.Body.Name, Role: in.Body.Role}
		var err error
		if (m.UserID == 0) == (m.Name == "") {
			err = marketplace.Errorf(marketplace.EINVALID, "give the member to add by user_id or by name (one of them)")
		} else {
			err = orgs.AddMember(ctx, m)
		}
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		marketplace.NoteDetail(ctx, map[string]any{"user_id": m.UserID, "role": m.Role})
		return &body[*marketplace.Member]{m}, nil
	}
}

// MemberPath is exported because huma reads only exported embedded fields.
type MemberPath struct {
	ID     int64 `path:"id" minimum:"1"`
	UserID int64 `path:"userID" minimum:"1"`
}

type setRoleInput struct {
	MemberPath
	Body struct {
		Role string `json:"role" enum:"viewer,deployer,publisher,admin"`
	}
}

func setMemberRole(orgs marketplace.OrganizationService, log *slog.Logger) func(context.Context, *setRoleInput) (*body[*marketplace.Member], error) {
	return func(ctx context.Context, in *setRoleInput) (*body[*marketplace.Member], error) {
		m := &marketplace.Member{OrganizationID: in.ID, UserID: in.UserID, Role: in.Body.Role}
		if err := orgs.SetMemberRole(ctx, m); err != nil {
			return nil, problem(ctx, log, err)
		}
		marketplace.NoteDetail(ctx, map[string]any{"user_id": m.UserID, "role": m.Role})
		return &body[*marketplace.Member]{m}, nil
	}
}

func removeMember(orgs marketplace.OrganizationService, log *slog.Logger) func(context.Context, *MemberPath) (*struct{}, error) {
	return func(ctx context.Context, in *MemberPath) (*struct{}, error) {
		if err := orgs.RemoveMember(ctx, in.ID, in.UserID); err != nil {
			return nil, problem(ctx, log, err)
		}
		marketplace.NoteDetail(ctx, map[string]any{"user_id": in.UserID})
		return nil, nil
	}
}

type orgProjectsInput struct {
	ID int64 `path:"id" minimum:"1"`
	PageQuery
}

func listOrgProjects(orgs marketplace.OrganizationService, log *slog.Logger) func(context.Context, *orgProjectsInput) (*paged[[]*marketplace.Project], error) {
	return func(ctx context.Context, in *orgProjectsInput) (*paged[[]*marketplace.Project], error) {
		ps, total, err := orgs.FindProjectsByOrganization(ctx, in.ID, in.page())
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, total, ps), nil
	}
}

func listOrgApps(orgs marketplace.OrganizationService, log *slog.Logger) func(context.Context, *orgProjectsInput) (*paged[[]*marketplace.Application], error) {
	return func(ctx context.Context, in *orgProjectsInput) (*paged[[]*marketplace.Application], error) {
		apps, total, err := orgs.FindAppsByOrganization(ctx, in.ID, in.page())
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		for i, a := range apps {
			apps[i] = redactApp(a)
		}
		return newPaged(&in.PageQuery, total, apps), nil
	}
}

// orgInvoiceList is the JSON of an organization's invoices.
type orgInvoiceList struct {
	OrganizationID int64                  `json:"organization_id"`
	Invoices       []*marketplace.Invoice `json:"invoices"`
}

func listOrgInvoices(ledger marketplace.OrganizationLedgerService, log *slog.Logger) func(context.Context, *invoicesInput) (*pagedDocument, error) {
	return func(ctx context.Context, in *invoicesInput) (*pagedDocument, error) {
		invoices, total, err := ledger.FindOrganizationInvoices(ctx, in.ID, in.page())
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		d, err := answer(ctx, log, in.FormatQuery, orgInvoiceList{OrganizationID: in.ID, Invoices: invoices}, func() [][]string {
			return invoiceListTable(invoices)
		})
		return pageOf(&in.PageQuery, total, d), err
	}
}

func getOrgInvoice(ledger marketplace.OrganizationLedgerService, log *slog.Logger) func(context.Context, *invoiceInput) (*document, error) {
	return func(ctx context.Context, in *invoiceInput) (*document, error) {
		inv, err := ledger.FindOrganizationInvoice(ctx, in.ID, in.Number)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return answer(ctx, log, in.FormatQuery, inv, inv.Rows)
	}
}

func getOrgStatement(ledger marketplace.OrganizationLedgerService, log *slog.Logger) func(context.Context, *statementInput) (*pagedDocument, error) {
	return func(ctx context.Context, in *statementInput) (*pagedDocument, error) {
		from, to, err := in.times()
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		st, err := ledger.FindOrganizationStatement(ctx, in.ID, from, to, in.page())
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		d, err := answer(ctx, log, in.FormatQuery, st, func() [][]string { return statementTable(st) })
		return pageOf(&in.PageQuery, st.LineCount, d), err
	}
}

func getOrgRevenue(ledger marketplace.OrganizationLedgerService, log *slog.Logger) func(context.Context, *revenueInput) (*document, error) {
	return func(ctx context.Context, in *revenueInput) (*document, error) {
		from, to, err := in.times()
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		r, err := ledger.FindOrganizationRevenue(ctx, in.ID, from, to)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return answer(ctx, log, in.FormatQuery, r, func() [][]string { return revenueTable(r) })
	}
}

func getOrgPayout(ledger marketplace.OrganizationLedgerService, log *slog.Logger) func(context.Context, *payoutInput) (*document, error) {
	return func(ctx context.Context, in *payoutInput) (*document, error) {
		p, err := marketplace.ParsePeriod(in.Period)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		r, err := ledger.FindOrganizationPayout(ctx, in.ID, p)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return answer(ctx, log, in.FormatQuery, r, func() [][]string { return revenueTable(r) })
	}
}
