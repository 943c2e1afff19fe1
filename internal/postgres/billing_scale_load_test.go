package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/httpapi"
	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// billingScale is the shape of a month of billing at scale (issue #19 item 6): deployments that ran in
// March 2025, each upgraded to a new rate recordsPer-1 times (a usage record per rate), one consumer
// (big) owning bigDeployments of them and the rest spread over consumers-1 others.
type billingScale struct {
	deployments, recordsPer, consumers, bigDeployments int
}

// scaleMonth is the month every record of the load runs in; the store's clock stands an hour after it,
// the last metering run half an hour after it.
var scaleMonth = marketplace.Period{Start: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}

func scaleNow() time.Time     { return scaleMonth.End().Add(time.Hour) }
func scaleMetered() time.Time { return scaleMonth.End().Add(30 * time.Minute) }

// scaleLoad is a loaded database: its store (clock at scaleNow), the big consumer and its bearer token.
type scaleLoad struct {
	url       string
	db        *postgres.DB
	big       int64
	bigToken  string
	consumers []int64
}

// loadBillingScale fills a fresh database with s.
//
// Users, publishers' applications (and their versions, one per rate), consumers and their projects go
// through the store's own methods, as the API creates them. Deployments and usage records are inserted
// by set-based SQL (generate_series): a million records through the API would mean a million installs
// and upgrades on a cluster, hours of work that is not what is measured here. The SQL writes each record
// exactly as the store's transitions leave it (CompleteInstall opens one, CompleteUpgrade with a new rate
// closes it and opens the next at the same instant, closeUsage at an uninstall): a deployment's records
// tile its life with no gap or overlap, each at the rate of the version it ran; a closed record has
// amount = usage_amount(rate, started, ended) and metered_at = ended_at, at most one record per
// deployment is open and carries what the last metering run stored. Records are inserted in the order of
// their start, so, as in production, a consumer's records are spread over the whole table rather than
// packed together. The audit event links (opened_event_id, closed_event_id) stay NULL: neither the close
// nor a statement reads them. VACUUM ANALYZE follows, as autovacuum would after such growth.
func loadBillingScale(tb testing.TB, s billingScale) *scaleLoad {
	tb.Helper()
	ctx := marketplace.OperatorContext(context.Background())
	began := time.Now()
	defer func() { tb.Logf("loaded %+v in %s", s, time.Since(began).Round(time.Second)) }()
	l := &scaleLoad{url: tenv.Database(tb)}
	var err error
	l.db, err = postgres.Open(ctx, l.url, postgres.WithClock(scaleNow),
		postgres.WithBillingTerms(marketplace.BillingTerms{Currency: "EUR", FeePercent: decimal.RequireFromString("12.5")}))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(l.db.Close)

	// Ten publishers with two applications each; version v of an application has its own rate.
	var apps []int64
	for p := range 10 {
		pub := &marketplace.User{Name: fmt.Sprintf("publisher-%d", p)}
		if err := l.db.CreateUser(ctx, pub, httpapi.HashToken(scaleToken())); err != nil {
			tb.Fatal(err)
		}
		for a := range 2 {
			app := newApp(pub.ID)
			app.Name = fmt.Sprintf("app-%d-%d", p, a)
			app.HourlyRate = marketplace.MustMoney(fmt.Sprintf("0.%06d", 13_579+p*7_919+a*104_729))
			if err := l.db.CreateApp(ctx, app); err != nil {
				tb.Fatal(err)
			}
			for v := 2; v <= s.recordsPer; v++ {
				ver := &marketplace.AppVersion{ApplicationID: app.ID, Deployment: app.Deployment, Inputs: app.Inputs,
					HourlyRate: marketplace.Money{Decimal: app.HourlyRate.Add(decimal.New(int64(v*10_007), -6))}}
				if err := l.db.CreateVersion(ctx, ver); err != nil {
					tb.Fatal(err)
				}
			}
			apps = append(apps, app.ID)
		}
	}
	// Consumers with a project each; the first is the big one, whose token reads its statement.
	var projects []int64
	for c := range s.consumers {
		token := scaleToken()
		u := &marketplace.User{Name: fmt.Sprintf("consumer-%d", c)}
		if err := l.db.CreateUser(ctx, u, httpapi.HashToken(token)); err != nil {
			tb.Fatal(err)
		}
		p := &marketplace.Project{Name: "p", UserID: u.ID}
		if err := l.db.CreateProject(ctx, p); err != nil {
			tb.Fatal(err)
		}
		if c == 0 {
			l.big, l.bigToken = u.ID, token
		}
		l.consumers = append(l.consumers, u.ID)
		projects = append(projects, p.ID)
	}

	conn, err := pgx.Connect(ctx, l.url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	start, end := scaleMonth.Start, scaleMonth.End()
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		// Deployment i belongs to the big consumer while i <= bigDeployments, then round robin to the
		// others; installed in the first three days of the month at an instant with milliseconds, every
		// tenth one uninstalled since; each is at its last version now.
		{`INSERT INTO deployments (application_id, project_id, consumer_id, type, status, namespace, release_name, chart_version,
                         attempts, hourly_rate, version, created_at, updated_at, next_attempt_at)
SELECT a.app, p.project, p.consumer, 'k8s', CASE WHEN i % 10 = 0 THEN 'uninstalled' ELSE 'installed' END,
       'mp-' || i, 'r' || i, '1.0.0', 1, v.hourly_rate, v.version, t.installed, t.installed, t.installed
FROM generate_series(1, $1::int) i
CROSS JOIN LATERAL (SELECT ($2::bigint[])[1 + i % array_length($2::bigint[], 1)] AS app) a
CROSS JOIN LATERAL (SELECT CASE WHEN i <= $4::int THEN 1 ELSE 2 + (i - $4::int - 1) % (array_length($3::bigint[], 1) - 1) END AS k) c
CROSS JOIN LATERAL (SELECT ($3::bigint[])[c.k] AS project, ($5::bigint[])[c.k] AS consumer) p
CROSS JOIN LATERAL (SELECT $6::timestamptz + (i * 7919 % 259200) * interval '1 second' + (i % 997) * interval '1 millisecond' AS installed) t
JOIN application_versions v ON v.application_id = a.app AND v.version = $7::int`,
			[]any{s.deployments, apps, projects, s.bigDeployments, l.consumers, start, s.recordsPer}},
		// Record k of a deployment runs from its k-th upgrade to its (k+1)-th: the life up to 12 hours
		// before the month's end cut in recordsPer, with a few milliseconds either way.
		{`INSERT INTO usage_records (deployment_id, user_id, application_id, hourly_rate, started_at, ended_at, amount, metered_at)
SELECT id, consumer_id, application_id, hourly_rate, started_at, ended_at,
       usage_amount(hourly_rate, started_at, coalesce(ended_at, $3)), coalesce(ended_at, $3)
FROM (SELECT d.id, d.consumer_id, d.application_id, v.hourly_rate,
             d.created_at + k * e.step + CASE WHEN k = 0 THEN interval '0' ELSE ((d.id * 31 + k * 17) % 1000) * interval '1 millisecond' END AS started_at,
             CASE WHEN k < $1 - 1 THEN d.created_at + (k + 1) * e.step + ((d.id * 31 + (k + 1) * 17) % 1000) * interval '1 millisecond'
                  WHEN d.status = 'uninstalled' THEN d.created_at + (k + 1) * e.step END AS ended_at
      FROM deployments d
      CROSS JOIN generate_series(0, $1::int - 1) k
      CROSS JOIN LATERAL (SELECT ($2::timestamptz - interval '12 hours' - d.created_at) / $1::int AS step) e
      JOIN application_versions v ON v.application_id = d.application_id AND v.version = k + 1) r
ORDER BY started_at`, []any{s.recordsPer, end, scaleMetered()}},
		{`VACUUM ANALYZE usage_records`, nil}, {`ANALYZE`, nil},
	} {
		if _, err := conn.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			tb.Fatalf("load: %v\n%s", err, stmt.sql)
		}
	}
	return l
}

// scaleToken is a fresh user token of the API's shape.
func scaleToken() string {
	secret := make([]byte, 32)
	rand.Read(secret)
	return "mpt_" + base64.RawURLEncoding.EncodeToString(secret)
}
