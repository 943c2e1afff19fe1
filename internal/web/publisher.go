package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// revenueMonths is how many months, this one included, the publisher's revenue chart shows.
const revenueMonths = 6

type publisherView struct {
	Apps    []*marketplace.Application
	Total   int
	Months  []monthRevenue
	Chart   revenueChart
	Message string
}

// monthRevenue is a publisher's gross in one month, by the billing rule.
type monthRevenue struct {
	Month string
	Gross decimal.Decimal
}

// revenueChart is the bar chart of monthRevenue as SVG geometry, computed here so the template only
// draws.
type revenueChart struct {
	Width, Height int
	Bars          []chartBar
	Max           string
}

type chartBar struct {
	X, Y, W, H int
	Label      string
	Value      string
}

// publisherPage shows the caller's applications, a form to publish a new version of each, and what
// they earned month by month.
func (s *server) publisherPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.publisherView(r)
	if err != nil {
		s.domainError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "publisher", "My applications", v)
}

func (s *server) publisherView(r *http.Request) (*publisherView, error) {
	c := marketplace.CallerFrom(r.Context())
	if c.Operator {
		return nil, marketplace.Errorf(marketplace.ENOTFOUND, "the operator publishes nothing: sign in as a publisher")
	}
	v := &publisherView{}
	var err error
	if v.Apps, v.Total, err = s.Store.FindApps(r.Context(), marketplace.AppFilter{PublisherID: c.UserID, Page: 1, Limit: 100}); err != nil {
		return nil, err
	}
	month := marketplace.PeriodOf(time.Now())
	for range revenueMonths - 1 {
		month = marketplace.Period{Start: month.Start.AddDate(0, -1, 0)}
	}
	now := time.Now().UTC()
	for range revenueMonths {
		end := month.End()
		if end.After(now) {
			end = now
		}
		rev, err := s.Store.FindRevenue(r.Context(), c.UserID, month.Start, end)
		if err != nil {
			return nil, err
		}
		v.Months = append(v.Months, monthRevenue{Month: month.String(), Gross: rev.Gross})
		month = month.Next()
	}
	v.Chart = chartOf(v.Months)
	return v, nil
}

// chartOf lays out one bar per month, scaled to the largest.
func chartOf(months []monthRevenue) revenueChart {
	const w, h, top, bottom = 600, 220, 20, 30
	c := revenueChart{Width: w, Height: h}
	largest := decimal.Zero
	for _, m := range months {
		largest = decimal.Max(largest, m.Gross)
	}
	c.Max = largest.String()
	slot := w / max(1, len(months))
	for i, m := range months {
		height := 0
		if largest.IsPositive() {
			height = int(m.Gross.Div(largest).Mul(decimal.NewFromInt(h - top - bottom)).IntPart())
		}
		c.Bars = append(c.Bars, chartBar{X: i*slot + slot/6, Y: h - bottom - height, W: slot * 2 / 3, H: height,
			Label: m.Month, Value: m.Gross.String()})
	}
	return c
}

// publishVersion publishes the next version of one of the caller's applications: a new rate, chart
// version and changelog, the rest as the current version has it (its repository was checked when it
// was published, and is checked again whenever it is fetched).
func (s *server) publishVersion(w http.ResponseWriter, r *http.Request) {
	app, ok := s.findApp(w, r)
	if !ok {
		return
	}
	refuse := func(message string) {
		v, err := s.publisherView(r)
		if err != nil {
			s.domainError(w, r, err)
			return
		}
		v.Message = fmt.Sprintf("Version of %s not published: %s", app.Name, message)
		s.render(w, r, http.StatusUnprocessableEntity, "publisher", "My applications", v)
	}
	rate, err := decimal.NewFromString(strings.TrimSpace(r.PostFormValue("hourly_rate")))
	if err != nil {
		refuse("the hourly rate must be a decimal number such as 1.25")
		return
	}
	spec := app.Deployment
	if app.Deployment.Type == marketplace.TypeK8s {
		spec.ChartVersion = strings.TrimSpace(r.PostFormValue("chart_version"))
	}
	v := &marketplace.AppVersion{ApplicationID: app.ID, HourlyRate: marketplace.Money{Decimal: rate}, Deployment: spec,
		Inputs: app.Inputs, Changelog: r.PostFormValue("changelog")}
	// Its chart is checked as the API checks it (package chartsign).
	if s.Charts != nil {
		publisher := app.PublisherID
		if c := marketplace.CallerFrom(r.Context()); c.UserID > 0 {
			publisher = c.UserID
		}
		v.Signature, err = s.Charts.CheckChart(r.Context(), app.ID, publisher, v.Deployment)
	}
	if err == nil {
		err = s.Store.CreateVersion(r.Context(), v)
	}
	if err != nil {
		if code := marketplace.ErrorCode(err); code == marketplace.EINVALID || code == marketplace.ECONFLICT {
			refuse(marketplace.RedactURLs(marketplace.ErrorMessage(err)))
			return
		}
		s.domainError(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/apps/%d", app.ID), http.StatusSeeOther)
}
