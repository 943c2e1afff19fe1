package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// TestOrganizationRoles checks the store's one rule of access on an organization's project, deployment
// and application, per role: ENOTFOUND for a stranger, EFORBIDDEN for a member whose role does not
// allow it, and the last admin kept.
func TestOrganizationRoles(t *testing.T) {
	op := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(op, tenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	as := func(id int64) context.Context {
		return marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: id})
	}
	for i, name := range []string{"admin", "deployer", "viewer", "publisher", "stranger"} {
		if err := db.CreateUser(op, &marketplace.User{Name: name}, []byte{byte(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	const admin, deployer, viewer, publisher, stranger = 1, 2, 3, 4, 5
	org := &marketplace.Organization{Name: "team"}
	if err := db.CreateOrganization(as(admin), org); err != nil {
		t.Fatal(err)
	}
	for user, role := range map[int64]string{deployer: "deployer", viewer: "viewer", publisher: "publisher"} {
		if err := db.AddMember(as(admin), &marketplace.Member{OrganizationID: org.ID, UserID: user, Role: role}); err != nil {
			t.Fatal(err)
		}
	}
	app := &marketplace.Application{Name: "app", PublisherID: publisher, OrganizationID: org.ID, HourlyRate: marketplace.MustMoney("1"),
		Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}, Inputs: []marketplace.Input{}}
	if err := db.CreateApp(as(publisher), app); err != nil {
		t.Fatal(err)
	}
	project := &marketplace.Project{Name: "p", UserID: admin, OrganizationID: org.ID}
	if err := db.CreateProject(as(admin), project); err != nil {
		t.Fatal(err)
	}
	install := func(user int64) error {
		return db.CreateDeployment(as(user), &marketplace.Deployment{ApplicationID: app.ID, ProjectID: project.ID, ConsumerID: user})
	}
	if err := install(deployer); err != nil {
		t.Fatal(err)
	}
	check := func(what string, err error, want string) {
		t.Helper()
		if got := marketplace.ErrorCode(err); got != want {
			t.Errorf("%s: %q (%v), want %q", what, got, err, want)
		}
	}
	check("viewer installs", install(viewer), marketplace.EFORBIDDEN)
	check("publisher installs", install(publisher), marketplace.EFORBIDDEN)
	check("stranger installs", install(stranger), marketplace.ENOTFOUND)
	_, err = db.FindDeploymentByID(as(viewer), 1)
	check("viewer reads the deployment", err, "")
	_, err = db.FindDeploymentByID(as(publisher), 1)
	check("publisher reads the deployment", err, marketplace.EFORBIDDEN)
	_, err = db.FindDeploymentByID(as(stranger), 1)
	check("stranger reads the deployment", err, marketplace.ENOTFOUND)
	_, err = db.RequestUninstall(as(viewer), 1)
	check("viewer deletes the deployment", err, marketplace.EFORBIDDEN)
	check("deployer deletes the project", db.DeleteProject(as(deployer), project.ID), marketplace.EFORBIDDEN)
	check("deployer retires the app", db.RetireApp(as(deployer), app.ID), marketplace.EFORBIDDEN)
	check("stranger retires the app", db.RetireApp(as(stranger), app.ID), marketplace.ENOTFOUND)
	check("deployer adds a member", db.AddMember(as(deployer), &marketplace.Member{OrganizationID: org.ID, UserID: stranger, Role: "admin"}), marketplace.EFORBIDDEN)
	check("deployer promotes itself", db.SetMemberRole(as(deployer), &marketplace.Member{OrganizationID: org.ID, UserID: deployer, Role: "admin"}), marketplace.EFORBIDDEN)
	check("the last admin steps down", db.SetMemberRole(as(admin), &marketplace.Member{OrganizationID: org.ID, UserID: admin, Role: "viewer"}), marketplace.ECONFLICT)
	check("the last admin leaves", db.RemoveMember(as(admin), org.ID, admin), marketplace.ECONFLICT)
	// The organization's applications and deployments, for its members; a stranger finds none.
	apps, total, err := db.FindAppsByOrganization(as(viewer), org.ID, marketplace.Page{Number: 1, Limit: 10})
	if err != nil || total != 1 || len(apps) != 1 || apps[0].ID != app.ID || apps[0].OrganizationID != org.ID {
		t.Errorf("the viewer's list of the organization's applications: %v, %d, %v", apps, total, err)
	}
	_, _, err = db.FindAppsByOrganization(as(stranger), org.ID, marketplace.Page{Number: 1, Limit: 10})
	check("stranger lists the organization's applications", err, marketplace.ENOTFOUND)
	inOrg := marketplace.DeploymentFilter{OrganizationID: org.ID, Page: marketplace.Page{Number: 1, Limit: 10}}
	if ds, total, err := db.FindDeployments(as(viewer), inOrg); err != nil || total != 1 || len(ds) != 1 || ds[0].ConsumerID != deployer {
		t.Errorf("the viewer's list of the organization's deployments: %v, %d, %v", ds, total, err)
	}
	if ds, total, err := db.FindDeployments(as(stranger), inOrg); err != nil || total != 0 || len(ds) != 0 {
		t.Errorf("a stranger's list of the organization's deployments: %v, %d, %v", ds, total, err)
	}
	check("a viewer leaves", db.RemoveMember(as(viewer), org.ID, viewer), "")
	_, err = db.FindDeploymentByID(as(viewer), 1)
	check("a former viewer reads the deployment", err, marketplace.ENOTFOUND)
	ds, total, err := db.FindDeployments(as(deployer), marketplace.DeploymentFilter{Page: marketplace.Page{Number: 1, Limit: 10}})
	if err != nil || total != 1 || len(ds) != 1 || ds[0].OrganizationID != org.ID {
		t.Errorf("the deployer's deployments: %v, %d, %v", ds, total, err)
	}
	_, err = db.RequestUninstall(as(deployer), 1)
	check("deployer deletes the deployment", err, "")
}

// TestOrganizationInvoice closes a month in which two members deployed into their organization's
// project and one of them into its own: the organization's invoice is the sum of its members'
// deployments, line by line with who asked for each; the member's own invoice has only its own.
func TestOrganizationInvoice(t *testing.T) {
	op := marketplace.OperatorContext(context.Background())
	url := tenv.Database(t)
	db, err := postgres.Open(op, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	as := func(id int64) context.Context {
		return marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: id})
	}
	for i, name := range []string{"admin", "deployer", "publisher"} {
		if err := db.CreateUser(op, &marketplace.User{Name: name}, []byte{byte(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	const admin, deployer, publisher = 1, 2, 3
	org := &marketplace.Organization{Name: "team"}
	if err := db.CreateOrganization(as(admin), org); err != nil {
		t.Fatal(err)
	}
	if err := db.AddMember(as(admin), &marketplace.Member{OrganizationID: org.ID, UserID: deployer, Role: "deployer"}); err != nil {
		t.Fatal(err)
	}
	app := &marketplace.Application{Name: "app", PublisherID: publisher, HourlyRate: marketplace.MustMoney("1.1"),
		Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}, Inputs: []marketplace.Input{}}
	if err := db.CreateApp(as(publisher), app); err != nil {
		t.Fatal(err)
	}
	team := &marketplace.Project{Name: "team", UserID: admin, OrganizationID: org.ID}
	own := &marketplace.Project{Name: "own", UserID: deployer}
	for _, p := range []*marketplace.Project{team, own} {
		if err := db.CreateProject(as(p.UserID), p); err != nil {
			t.Fatal(err)
		}
	}
	// 2 h, 1 h and 3 h at 1.1/h: the organization owes 2.20 + 1.10, the deployer itself 3.30.
	for _, d := range []struct {
		user, project int64
		hours         int
	}{{deployer, team.ID, 2}, {admin, team.ID, 1}, {deployer, own.ID, 3}} {
		dep := &marketplace.Deployment{ApplicationID: app.ID, ProjectID: d.project, ConsumerID: d.user}
		if err := db.CreateDeployment(as(d.user), dep); err != nil {
			t.Fatal(err)
		}
		execSQL(t, url, `INSERT INTO usage_records (deployment_id, user_id, application_id, hourly_rate, started_at, ended_at, amount)
SELECT id, consumer_id, application_id, hourly_rate, '2025-03-10Z', '2025-03-10Z'::timestamptz + make_interval(hours => $2),
  usage_amount(hourly_rate, '2025-03-10Z', '2025-03-10Z'::timestamptz + make_interval(hours => $2)) FROM deployments WHERE id = $1`, dep.ID, d.hours)
	}
	march, err := marketplace.ParsePeriod("2025-03")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClosePeriod(op, march, "test"); err != nil {
		t.Fatal(err)
	}
	invoices, _, err := db.FindOrganizationInvoices(as(deployer), org.ID, marketplace.Page{Number: 1, Limit: 10})
	if err != nil || len(invoices) != 1 {
		t.Fatalf("the organization's invoices: %v, %v", invoices, err)
	}
	inv, err := db.FindOrganizationInvoice(as(admin), org.ID, invoices[0].Number)
	if err != nil {
		t.Fatal(err)
	}
	byMember := map[int64]string{}
	for _, l := range inv.Lines {
		byMember[l.RequestedBy] = l.Charge.StringFixed(2)
	}
	if inv.Total.StringFixed(2) != "3.30" || len(byMember) != 2 || byMember[deployer] != "2.20" || byMember[admin] != "1.10" {
		t.Fatalf("the organization's invoice: total %s, lines by member %v; want 3.30 = 2.20 (deployer) + 1.10 (admin)", inv.Total, byMember)
	}
	mine, _, err := db.FindInvoices(as(deployer), deployer, marketplace.Page{Number: 1, Limit: 10})
	if err != nil || len(mine) != 1 || mine[0].Total.StringFixed(2) != "3.30" {
		t.Fatalf("the deployer's own invoices: %v, %v; want one of 3.30", mine, err)
	}
	if theirs, _, err := db.FindInvoices(as(admin), admin, marketplace.Page{Number: 1, Limit: 10}); err != nil || len(theirs) != 0 {
		t.Fatalf("the admin's own invoices: %v, %v; want none", theirs, err)
	}
	if _, _, err := db.FindOrganizationInvoices(as(publisher), org.ID, marketplace.Page{Number: 1, Limit: 10}); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Fatalf("a stranger reads the organization's invoices: %v", err)
	}
}

func execSQL(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
