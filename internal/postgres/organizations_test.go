package postgres_test

import (
	"context"
	"testing"

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
