package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// TestBoundedReads: a deployment's usage records and revisions, an application's versions, a
// statement's lines and a consumer's invoices are read a page at a time, in either order where asked,
// with the totals of all of them.
func TestBoundedReads(t *testing.T) {
	f := newFixture(t, marketplace.Quotas{})
	if _, err := f.deploy(f.ctx); err != nil {
		t.Fatal(err)
	}
	// Deployment 1 has five usage records of an hour at 1 an hour (1.25 each as stored) and ten
	// revisions; the application has four versions, the third deprecated.
	f.exec(t, `INSERT INTO usage_records (deployment_id, user_id, application_id, hourly_rate, started_at, ended_at, amount)
SELECT 1, 1, 1, 1, now() - interval '2 hours', now() - interval '1 hour', 1.25 FROM generate_series(1, 5)`)
	f.exec(t, `INSERT INTO deployment_revisions (deployment_id, revision, version, inputs) SELECT 1, n, 1, '{}' FROM generate_series(1, 10) n`)
	for range 3 {
		if err := f.db.CreateVersion(f.ctx, &marketplace.AppVersion{ApplicationID: 1, HourlyRate: marketplace.MustMoney("1.5"),
			Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}, Inputs: []marketplace.Input{}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.db.DeprecateVersion(f.ctx, 1, 3); err != nil {
		t.Fatal(err)
	}
	user1 := marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: 1})
	for _, tc := range []struct {
		name  string
		find  func(marketplace.Page) (string, int, error)
		page  marketplace.Page
		ids   string
		total int
	}{
		{"usage records of a deployment, newest first", func(p marketplace.Page) (string, int, error) {
			rs, totals, err := f.db.FindUsageRecords(user1, marketplace.UsageFilter{UserID: 1, DeploymentID: 1, NewestFirst: true, Page: p})
			if err == nil && (!totals.Amount.Equal(decimal.RequireFromString("6.25")) || !totals.Accrued.Equal(decimal.RequireFromString("5"))) {
				err = fmt.Errorf("the deployment's totals are %s and %s accrued, want 6.25 and 5 (all its records, not the page's)", totals.Amount, totals.Accrued)
			}
			return ids(len(rs), func(i int) int64 { return rs[i].ID }), totals.Records, err
		}, marketplace.Page{Number: 2, Limit: 2}, "3,2", 5},
		{"revisions, newest first", func(p marketplace.Page) (string, int, error) {
			rs, n, err := f.db.FindRevisions(user1, marketplace.RevisionFilter{DeploymentID: 1, NewestFirst: true, Page: p})
			return ids(len(rs), func(i int) int64 { return int64(rs[i].Revision) }), n, err
		}, marketplace.Page{Number: 2, Limit: 4}, "6,5,4,3", 10},
		{"revisions, oldest first", func(p marketplace.Page) (string, int, error) {
			rs, n, err := f.db.FindRevisions(user1, marketplace.RevisionFilter{DeploymentID: 1, Page: p})
			return ids(len(rs), func(i int) int64 { return int64(rs[i].Revision) }), n, err
		}, marketplace.Page{Number: 3, Limit: 4}, "9,10", 10},
		{"one revision", func(p marketplace.Page) (string, int, error) {
			rs, n, err := f.db.FindRevisions(user1, marketplace.RevisionFilter{DeploymentID: 1, Revision: 4, Page: p})
			return ids(len(rs), func(i int) int64 { return int64(rs[i].Revision) }), n, err
		}, marketplace.Page{Number: 1, Limit: 2}, "4", 1},
		{"versions", func(p marketplace.Page) (string, int, error) {
			vs, n, err := f.db.FindVersions(user1, marketplace.VersionFilter{ApplicationID: 1, Page: p})
			return ids(len(vs), func(i int) int64 { return int64(vs[i].Version) }), n, err
		}, marketplace.Page{Number: 2, Limit: 3}, "4", 4},
		{"versions after 1 taking installs, newest first", func(p marketplace.Page) (string, int, error) {
			vs, n, err := f.db.FindVersions(user1, marketplace.VersionFilter{ApplicationID: 1, After: 1, Open: true, NewestFirst: true, Page: p})
			return ids(len(vs), func(i int) int64 { return int64(vs[i].Version) }), n, err
		}, marketplace.Page{Number: 1, Limit: 2}, "4,2", 2},
		{"statement lines", func(p marketplace.Page) (string, int, error) {
			st, err := f.db.FindStatement(user1, 1, time.Now().Add(-3*time.Hour), time.Now(), p)
			if err != nil {
				return "", 0, err
			}
			if !st.Total.Equal(decimal.RequireFromString("5")) || st.Seconds != 5*3600 {
				err = fmt.Errorf("the statement's totals are %s and %d s, want 5 and 18000 s (all its lines, not the page's)", st.Total, st.Seconds)
			}
			return ids(len(st.Lines), func(i int) int64 { return st.Lines[i].UsageRecordID }), st.LineCount, err
		}, marketplace.Page{Number: 2, Limit: 3}, "4,5", 5},
		{"invoices", func(p marketplace.Page) (string, int, error) {
			is, n, err := f.db.FindInvoices(user1, 1, p)
			return ids(len(is), func(i int) int64 { return int64(is[i].PeriodStart.Month()) }), n, err
		}, marketplace.Page{Number: 1, Limit: 2}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := tc.find(tc.page)
			if err != nil || got != tc.ids || total != tc.total {
				t.Fatalf("ids %q, total %d, %v; want %q, %d", got, total, err, tc.ids, tc.total)
			}
		})
	}
}
