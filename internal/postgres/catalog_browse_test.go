package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// TestCatalogBrowse filters a catalog by category and by publisher name and sorts it by name, age and
// price, with the other filters, a search and paging, and compares every page (as structs, as cards and
// as JSON) and its total with the same selection made in Go from the applications read by id; the
// category counts follow publishes, new versions, retirements and deletions.
func TestCatalogBrowse(t *testing.T) {
	op := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(op, tenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, name := range []string{"Acme Labs", "beta soft"} {
		if err := db.CreateUser(op, &marketplace.User{Name: name}, []byte{byte(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	keywords := [][]string{{"Database", "sql"}, {"monitoring"}, {"database", " cache "}, {}, {"monitoring", "web"}}
	var ids []int64
	for i := range 14 {
		pub := int64(1 + i%2)
		typ := marketplace.TypeK8s
		spec := marketplace.DeploymentSpec{Type: typ, RepoURL: "http://charts.example.com", ChartName: "c"}
		if i%3 == 0 {
			spec = marketplace.DeploymentSpec{Type: marketplace.TypeVM, Image: "x.qcow2", CPU: "1", Memory: "256Mi"}
		}
		a := &marketplace.Application{PublisherID: pub, Name: fmt.Sprintf("%c app %d", "zYxWvUtSrQpOnM"[i], i),
			Description: "browse " + strings.Repeat("word ", i%2), HourlyRate: marketplace.MustMoney(fmt.Sprintf("%d.5", (i*7)%5)),
			Deployment: spec, Inputs: []marketplace.Input{}}
		ctx := marketplace.WithCaller(op, marketplace.Caller{UserID: pub})
		if err := db.CreateApp(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := db.SaveAbout(ctx, a.ID, 1, &marketplace.About{Keywords: keywords[i%len(keywords)], AppVersion: "2.1." + fmt.Sprint(i),
			ReadAt: time.Now().UTC()}, []byte{byte(i)}, ""); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	// Published in an organization's name: the organization is its publisher's name.
	user2 := marketplace.WithCaller(op, marketplace.Caller{UserID: 2})
	org := &marketplace.Organization{Name: "Gamma Org"}
	if err := db.CreateOrganization(user2, org); err != nil {
		t.Fatal(err)
	}
	orgApp := &marketplace.Application{PublisherID: 2, OrganizationID: org.ID, Name: "org app", HourlyRate: marketplace.MustMoney("3"),
		Deployment: marketplace.DeploymentSpec{Type: marketplace.TypeK8s, RepoURL: "http://charts.example.com", ChartName: "c"}, Inputs: []marketplace.Input{}}
	if err := db.CreateApp(user2, orgApp); err != nil {
		t.Fatal(err)
	}
	if orgApp.PublisherName != "Gamma Org" {
		t.Errorf("an organization's application is published by %q, want Gamma Org", orgApp.PublisherName)
	}
	ids = append(ids, orgApp.ID)
	if err := db.RetireApp(op, ids[4]); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteApp(op, ids[9]); err != nil {
		t.Fatal(err)
	}
	// A new version is not read yet: no categories until it is.
	v := &marketplace.AppVersion{ApplicationID: ids[0], HourlyRate: marketplace.MustMoney("9"),
		Deployment: marketplace.DeploymentSpec{Type: marketplace.TypeVM, Image: "y.qcow2", CPU: "1", Memory: "256Mi"}}
	if err := db.CreateVersion(marketplace.WithCaller(op, marketplace.Caller{UserID: 1}), v); err != nil {
		t.Fatal(err)
	}

	// The live catalog as read by id.
	out := map[int64]bool{ids[4]: true, ids[9]: true}
	live := func() []*marketplace.Application {
		var apps []*marketplace.Application
		for _, id := range ids {
			if out[id] {
				continue
			}
			a, err := db.FindAppByID(op, id)
			if err != nil {
				t.Fatal(err)
			}
			apps = append(apps, a)
		}
		return apps
	}
	apps := live()
	if a := apps[0]; len(a.Categories) != 0 || a.AppVersion != "" || a.IconURL != "" || a.PublisherName != "Acme Labs" {
		t.Fatalf("an application at a version not read yet: %+v", a)
	}
	if a := apps[2]; !slices.Equal(a.Categories, []string{"cache", "database"}) || a.AppVersion != "2.1.2" ||
		!strings.HasPrefix(a.IconURL, "/icons/") || a.PublisherName != "Acme Labs" {
		t.Fatalf("application read: %+v", a)
	}

	want := func(f marketplace.AppFilter) ([]int64, int) {
		var sel []*marketplace.Application
		for _, a := range apps {
			if (f.PublisherID == 0 || a.PublisherID == f.PublisherID) && (f.DeploymentType == "" || a.Deployment.Type == f.DeploymentType) &&
				(f.Category == "" || slices.Contains(a.Categories, f.Category)) &&
				(f.PublisherName == "" || strings.EqualFold(a.PublisherName, f.PublisherName)) &&
				(f.Query == "" || strings.Contains(a.Description, "word")) {
				sel = append(sel, a)
			}
		}
		slices.SortStableFunc(sel, func(a, b *marketplace.Application) int {
			switch f.Sort {
			case marketplace.SortName:
				if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
					return c
				}
			case marketplace.SortNewest:
				if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
					return c
				}
				return int(b.ID - a.ID)
			case marketplace.SortPrice:
				if c := a.HourlyRate.Cmp(b.HourlyRate.Decimal); c != 0 {
					return c
				}
			case marketplace.SortPriceDesc:
				if c := b.HourlyRate.Cmp(a.HourlyRate.Decimal); c != 0 {
					return c
				}
				return int(b.ID - a.ID)
			}
			return int(a.ID - b.ID)
		})
		var page []int64
		for i, a := range sel {
			if i >= (f.Page-1)*f.Limit && i < f.Page*f.Limit {
				page = append(page, a.ID)
			}
		}
		return page, len(sel)
	}
	check := func(f marketplace.AppFilter) {
		t.Helper()
		wantIDs, wantTotal := want(f)
		found, total, err := db.FindApps(op, f)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, a := range found {
			got = append(got, a.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(wantIDs) || total != wantTotal {
			t.Errorf("%+v: %v total %d, want %v total %d", f, got, total, wantIDs, wantTotal)
		}
		js, total, err := db.AppendAppsJSON(op, nil, f)
		if err != nil {
			t.Fatal(err)
		}
		var listed []marketplace.Application
		if err := json.Unmarshal(append(append([]byte("["), js...), ']'), &listed); err != nil {
			t.Fatalf("%+v: %v\n%s", f, err, js)
		}
		got = nil
		for _, a := range listed {
			got = append(got, a.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(wantIDs) || total != wantTotal {
			t.Errorf("%+v as JSON: %v total %d, want %v total %d", f, got, total, wantIDs, wantTotal)
		}
	}
	filters := []marketplace.Browse{
		{Category: "database"}, {Category: "monitoring", Sort: marketplace.SortPrice}, {Category: "nothing"},
		{PublisherName: "ACME labs"}, {PublisherName: "beta soft", Category: "web", Sort: marketplace.SortName}, {PublisherName: "gamma org"},
		{Sort: marketplace.SortName}, {Sort: marketplace.SortNewest}, {Sort: marketplace.SortPrice}, {Sort: marketplace.SortPriceDesc},
	}
	for _, b := range filters {
		for _, f := range []marketplace.AppFilter{
			{Browse: b, Page: 1, Limit: 20}, {Browse: b, Page: 2, Limit: 3}, {Browse: b, Page: 9, Limit: 3},
			{Browse: b, DeploymentType: marketplace.TypeVM, Page: 1, Limit: 20}, {Browse: b, PublisherID: 2, Page: 1, Limit: 4},
			{Browse: b, Query: "word", Page: 1, Limit: 20},
		} {
			check(f)
		}
	}

	// The categories and their counts, the most listed first, as the catalog read by id has them.
	wantCats := func() []marketplace.CategoryCount {
		n := map[string]int{}
		for _, a := range apps {
			for _, c := range a.Categories {
				n[c]++
			}
		}
		var cats []marketplace.CategoryCount
		for c, k := range n {
			cats = append(cats, marketplace.CategoryCount{Name: c, Count: k})
		}
		slices.SortFunc(cats, func(a, b marketplace.CategoryCount) int {
			if a.Count != b.Count {
				return b.Count - a.Count
			}
			return strings.Compare(a.Name, b.Name)
		})
		return cats
	}
	checkCats := func(when string) {
		t.Helper()
		cats, err := db.FindCategories(op, 50)
		if err != nil {
			t.Fatal(err)
		}
		if w := wantCats(); fmt.Sprint(cats) != fmt.Sprint(w) {
			t.Errorf("%s: categories %v, want %v", when, cats, w)
		}
	}
	checkCats("published")
	if cats, _ := db.FindCategories(op, 2); len(cats) != 2 {
		t.Errorf("2 categories: %v", cats)
	}
	// The new version read: its categories now, in the counts and the pages kept before.
	if err := db.SaveAbout(marketplace.WithCaller(op, marketplace.Caller{UserID: 1}), ids[0], 2,
		&marketplace.About{Keywords: []string{"Web", "new"}, ReadAt: time.Now().UTC()}, nil, ""); err != nil {
		t.Fatal(err)
	}
	apps = live()
	if !slices.Equal(apps[0].Categories, []string{"new", "web"}) {
		t.Fatalf("after the new version is read: %v", apps[0].Categories)
	}
	checkCats("new version read")
	check(marketplace.AppFilter{Browse: marketplace.Browse{Category: "web"}, Page: 1, Limit: 20})
	check(marketplace.AppFilter{Browse: marketplace.Browse{Category: "database"}, Page: 1, Limit: 20})
	if err := db.RetireApp(op, ids[2]); err != nil {
		t.Fatal(err)
	}
	out[ids[2]] = true
	apps = live()
	checkCats("retired")
	check(marketplace.AppFilter{Browse: marketplace.Browse{Category: "database"}, Page: 1, Limit: 20})

	// Bad browsing is refused before any statement.
	for _, b := range []marketplace.Browse{{Sort: "price desc"}, {Category: strings.Repeat("x", 101)}, {PublisherName: "a\x00b"}, {Category: "\xff"}} {
		if _, err := marketplace.CleanBrowse(b); marketplace.ErrorCode(err) != marketplace.EINVALID {
			t.Errorf("CleanBrowse(%+v): %v, want EINVALID", b, err)
		}
	}
}
