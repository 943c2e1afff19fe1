package marketplace_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/marketplace/marketplace/internal/marketplace"
)

func TestValidateRate(t *testing.T) {
	for _, tc := range []struct {
		rate string
		ok   bool
	}{
		{"0", true}, {"1.1", true}, {"0.000001", true}, {"1.100000000", true}, {"999999999999.999999", true},
		{"-0.01", false}, {"0.0000001", false}, {"1.1234567", false}, {"1000000000000", false},
	} {
		err := marketplace.ValidateRate(marketplace.MustMoney(tc.rate))
		if (err == nil) != tc.ok {
			t.Errorf("ValidateRate(%s) = %v, want ok=%v", tc.rate, err, tc.ok)
		}
		if err != nil && marketplace.ErrorCode(err) != marketplace.EINVALID {
			t.Errorf("ValidateRate(%s) code %s, want %s", tc.rate, marketplace.ErrorCode(err), marketplace.EINVALID)
		}
	}
}

func TestMoneyJSONIsExact(t *testing.T) {
	var m marketplace.Money
	if err := m.UnmarshalJSON([]byte("0.1")); err != nil {
		t.Fatal(err)
	}
	sum := marketplace.Money{Decimal: m.Add(m.Decimal).Add(m.Decimal)}
	if b, _ := sum.MarshalJSON(); string(b) != "0.3" {
		t.Fatalf("0.1 + 0.1 + 0.1 = %s, want 0.3", b)
	}
}

func TestValues(t *testing.T) {
	app := &marketplace.Application{ID: 7, Inputs: []marketplace.Input{
		{Name: "replicaCount", Type: "integer", Default: float64(2)},
		{Name: "service.port", Type: "integer"},
		{Name: "image.tag", Type: "string", Required: true},
		{Name: "debug", Type: "boolean", Default: false},
	}}
	for _, tc := range []struct {
		name     string
		consumer map[string]any
		want     map[string]any
		err      string
	}{
		{"defaults and required", map[string]any{"image.tag": "1.27"},
			map[string]any{"replicaCount": int64(2), "image": map[string]any{"tag": "1.27"}, "debug": false}, ""},
		{"consumer overrides", map[string]any{"image.tag": "1", "replicaCount": float64(5), "service.port": float64(8080)},
			map[string]any{"replicaCount": int64(5), "service": map[string]any{"port": int64(8080)}, "image": map[string]any{"tag": "1"}, "debug": false}, ""},
		{"missing required", map[string]any{}, nil, "inputs.image.tag is required"},
		{"unknown name", map[string]any{"image.tag": "1", "colour": "red"}, nil, "inputs.colour is not a parameter of application 7"},
		{"wrong type", map[string]any{"image.tag": "1", "replicaCount": "two"}, nil, "inputs.replicaCount: two is not a integer"},
		{"fraction for an integer", map[string]any{"image.tag": "1", "replicaCount": 1.5}, nil, "not a integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := app.Values(tc.consumer)
			if tc.err != "" {
				if err == nil || marketplace.ErrorCode(err) != marketplace.EINVALID || !strings.Contains(marketplace.ErrorMessage(err), tc.err) {
					t.Fatalf("err %v, want EINVALID containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Values = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestResolveOwner(t *testing.T) {
	user := marketplace.Caller{UserID: 3}
	op := marketplace.Caller{Operator: true}
	for _, tc := range []struct {
		caller marketplace.Caller
		id     int64
		want   int64
		ok     bool
	}{
		{user, 0, 3, true}, {user, 3, 3, true}, {user, 4, 0, false}, {user, -1, 0, false},
		{op, 4, 4, true}, {op, 0, 0, false},
	} {
		got, err := tc.caller.ResolveOwner("user_id", tc.id)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%+v.ResolveOwner(%d) = %d, %v; want %d, ok=%v", tc.caller, tc.id, got, err, tc.want, tc.ok)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://user:pass@charts.example.com/x", "https://REDACTED@charts.example.com/x"},
		{"https://token@charts.example.com", "https://REDACTED@charts.example.com"},
		{"oci://u:p@registry.example.com/charts", "oci://REDACTED@registry.example.com/charts"},
		{`fetch "https://a:b@h/index.yaml": 401; retry https://c:d@h2/`, `fetch "https://REDACTED@h/index.yaml": 401; retry https://REDACTED@h2/`},
		{"https://charts.example.com/x@1.0", "https://charts.example.com/x@1.0"},
		{"mail me@example.com", "mail me@example.com"},
	} {
		if got := marketplace.RedactURLs(tc.in); got != tc.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHealthOf(t *testing.T) {
	for _, tc := range []struct {
		workloads []marketplace.WorkloadHealth
		want      string
	}{
		{nil, marketplace.HealthHealthy},
		{[]marketplace.WorkloadHealth{{Ready: 2, Desired: 2}}, marketplace.HealthHealthy},
		{[]marketplace.WorkloadHealth{{Ready: 2, Desired: 2}, {Ready: 1, Desired: 3}}, marketplace.HealthProgressing},
		{[]marketplace.WorkloadHealth{{Ready: 1, Desired: 3}, {Ready: 0, Desired: 1}}, marketplace.HealthUnhealthy},
		{[]marketplace.WorkloadHealth{{Ready: 0, Desired: 0}}, marketplace.HealthUnhealthy},
	} {
		if got := marketplace.HealthOf(tc.workloads); got != tc.want {
			t.Errorf("HealthOf(%+v) = %s, want %s", tc.workloads, got, tc.want)
		}
	}
}
