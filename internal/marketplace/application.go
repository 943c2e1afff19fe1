package marketplace

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Deployment types an application may have.
const (
	TypeK8s = "k8s" // a Helm chart installed into Kubernetes
	TypeVM  = "vm"  // a virtual machine started on a libvirt host
)

// SSHKeysInput is the input every vm application accepts, declared or not: public SSH keys, one per
// line, that the guest authorizes (cloud-init's ssh_authorized_keys).
const SSHKeysInput = "ssh_authorized_keys"

// MaxNameLength bounds every name (users, applications, projects).
const MaxNameLength = 100

// Application is something a publisher lists and consumers deploy.
type Application struct {
	ID          int64          `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	PublisherID int64          `json:"publisher_id"`
	HourlyRate  Money          `json:"hourly_rate"`
	Deployment  DeploymentSpec `json:"deployment"`
	Inputs      []Input        `json:"inputs"`
	// Version is the number of its latest version, whose spec, inputs and rate the application shows.
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// RetiredAt is when its publisher retired it: it left the catalog
	// and takes no new installs, but stays readable until those deployments are gone.
	RetiredAt *time.Time `json:"retired_at,omitempty"`

	// What its cards show besides: its publisher's name (its organization's when published in one), and
	// what its latest version's package says of itself (when it has been read): its keywords as
	// categories, its icon on this marketplace and the version of the software it installs.
	PublisherName string   `json:"publisher_name" doc:"its publisher's name: the organization's when it is published in an organization's name"`
	Categories    []string `json:"categories,omitempty" doc:"its latest version's package keywords (a chart's keywords), lower case, sorted"`
	IconURL       string   `json:"icon_url,omitempty" doc:"its icon's path on this marketplace, /icons/<sha256>.png"`
	AppVersion    string   `json:"app_version,omitempty" doc:"the version of the software its latest version installs (a chart's appVersion)"`

	// OrganizationID is the organization it is published in the name of (0: its publisher's own).
	OrganizationID int64 `json:"organization_id,omitempty"`
	// Private is set on an application not everyone sees (Visibility); Shared, at publish only, is the
	// organizations it is shared with.
	Private bool    `json:"private,omitempty" doc:"set when the application is private: only its owner and the organizations it is shared with see it"`
	Shared  []int64 `json:"-"`
	// About is what its latest version's package says about itself: only GET /api/apps/{id} (and the
	// application's page) read it, never a catalog page.
	About *About `json:"about,omitempty" doc:"what its latest version's package says about itself (icon, README, maintainers, links), when it has been read; only GET /api/apps/{id} has it"`
	// Signature is what its version's chart provenance was found to be at publish (none for a vm application).
	Signature *ChartSignature `json:"signature,omitempty" doc:"k8s: its latest version's chart provenance as checked at publish (verified is the verified mark); only GET /api/apps/{id} has it, never a catalog page"`
}

// DeploymentSpec says how an application is deployed. Field names are the seed API's.
type DeploymentSpec struct {
	Type string `json:"type" enum:"k8s,vm"`
	// k8s: an http(s) chart repository URL and a chart name, or an oci:// reference (chartName optional).
	RepoURL      string `json:"repoURL" required:"false" maxLength:"2000" doc:"k8s: an http(s) chart repository URL, or an oci:// reference. Credentials in it (https://user:pass@host/...) are kept for fetching and always shown as https://REDACTED@host/...; sending the shown URL back keeps them"`
	ChartName    string `json:"chartName" required:"false" maxLength:"2000"`
	ChartVersion string `json:"chartVersion" required:"false" maxLength:"2000"`
	// vm: base image, vCPUs and memory.
	Image  string `json:"image" required:"false" maxLength:"2000" doc:"vm: an http(s) URL of the base image, or a file of the VM host's image directory. Credentials in the URL (https://user:pass@host/...) are kept for fetching and always shown as https://REDACTED@host/...; sending the shown URL back keeps them"`
	CPU    string `json:"cpu" required:"false" maxLength:"2000"`
	Memory string `json:"memory" required:"false" maxLength:"2000"`
}

// maxSpecField bounds every field of a deployment spec, the ones of the other type included.
const maxSpecField = 2000

// Input is one install-time parameter a consumer may set. Name is a dotted path into the chart's values
// (service.port sets {"service": {"port": ...}}).
type Input struct {
	Name        string `json:"name" doc:"a dotted path into the chart values, such as service.port"`
	Description string `json:"description,omitempty" maxLength:"1000"`
	Type        string `json:"type,omitempty" enum:"string,integer,number,boolean" doc:"defaults to string"`
	Default     any    `json:"default,omitempty"`
	Required    bool   `json:"required,omitempty"`
}

// Input types.
var inputTypes = map[string]bool{"string": true, "integer": true, "number": true, "boolean": true}

// AppFilter selects a page of the catalog.
type AppFilter struct {
	PublisherID    int64
	DeploymentType string
	// Query, when not empty, keeps the applications whose name or description matches it.
	Query string
	// Browse filters and orders the catalog (CleanBrowse checks it).
	Browse
	Page, Limit int
}

// AppService is the catalog. Anyone signed in reads it; only an application's publisher (or the
// operator) changes it.
type AppService interface {
	// FindAppByID returns an application of the catalog or a retired one (RetiredAt set).
	FindAppByID(ctx context.Context, id int64) (*Application, error)
	FindApps(ctx context.Context, f AppFilter) ([]*Application, int, error)
	// CreateApp refuses (ECONFLICT) beyond the publisher's application quota.
	CreateApp(ctx context.Context, app *Application) error
	UpdateApp(ctx context.Context, app *Application) error
	// DeleteApp deletes an application; ECONFLICT while deployments of it are live (a failed one is not).
	DeleteApp(ctx context.Context, id int64) error
	// RetireApp takes an application out of the catalog and refuses new installs of it, while its
	// deployments keep running; it stays readable by id until it is deleted.
	RetireApp(ctx context.Context, id int64) error
}

var (
	chartNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)
	inputNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$`)
	chartVerRE  = regexp.MustCompile(`^[0-9A-Za-z.+~^<>=*| -]{1,64}$`)
)

// ValidateName checks a name of a user, an application or a project.
func ValidateName(field, name string) error {
	if err := validateText(field, name); err != nil {
		return err
	}
	n := strings.TrimSpace(name)
	if n == "" {
		return Errorf(EINVALID, "%s must not be empty", field)
	}
	if len([]rune(name)) > MaxNameLength {
		return Errorf(EINVALID, "%s must be at most %d characters, got %d", field, MaxNameLength, len([]rune(name)))
	}
	return nil
}

// validateText refuses the NUL character, which no PostgreSQL text or jsonb value can hold.
func validateText(field, s string) error {
	if strings.ContainsRune(s, 0) {
		return Errorf(EINVALID, "%s must not contain the NUL character (\\u0000)", field)
	}
	return nil
}

// Validate checks an application before it is stored.
func (a *Application) Validate() error {
	if err := ValidateName("name", a.Name); err != nil {
		return err
	}
	if len(a.Description) > 10000 {
		return Errorf(EINVALID, "description must be at most 10000 characters")
	}
	if err := validateText("description", a.Description); err != nil {
		return err
	}
	if err := ValidateRate(a.HourlyRate); err != nil {
		return err
	}
	if err := a.Deployment.Validate(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range a.Inputs {
		in := &a.Inputs[i]
		if !inputNameRE.MatchString(in.Name) {
			return Errorf(EINVALID, "inputs[%d].name %q must be a dotted values path such as service.port", i, in.Name)
		}
		if seen[in.Name] {
			return Errorf(EINVALID, "inputs[%d].name %q appears twice", i, in.Name)
		}
		seen[in.Name] = true
		if err := validateText(fmt.Sprintf("inputs[%d].description", i), in.Description); err != nil {
			return err
		}
		if in.Type == "" {
			in.Type = "string"
		}
		if !inputTypes[in.Type] {
			return Errorf(EINVALID, "inputs[%d].type %q must be one of string, integer, number, boolean", i, in.Type)
		}
		if a.Deployment.Type == TypeVM {
			if err := in.validateConsumerKeys(i); err != nil {
				return err
			}
		}
		if in.Default != nil {
			v, err := in.coerce(in.Default)
			if err != nil {
				return Errorf(EINVALID, "inputs[%d].default: %s", i, err)
			}
			in.Default = v
		}
	}
	if a.Inputs == nil {
		a.Inputs = []Input{}
	}
	return nil
}

// Validate checks a deployment spec for its type. Every field is checked for what storage cannot hold
// (NUL) and for size, the fields of the other type too: they are stored as sent even though unused.
func (s *DeploymentSpec) Validate() error {
	for _, f := range []struct{ name, value string }{{"repoURL", s.RepoURL}, {"chartName", s.ChartName},
		{"chartVersion", s.ChartVersion}, {"image", s.Image}, {"cpu", s.CPU}, {"memory", s.Memory}} {
		if err := validateText("deployment."+f.name, f.value); err != nil {
			return err
		}
		if len(f.value) > maxSpecField {
			return Errorf(EINVALID, "deployment.%s must be at most %d bytes, got %d", f.name, maxSpecField, len(f.value))
		}
	}
	switch s.Type {
	case TypeK8s:
		u, err := url.Parse(s.RepoURL)
		if s.RepoURL == "" || err != nil || u.Host == "" {
			return Errorf(EINVALID, "deployment.repoURL must be an http(s) chart repository URL or an oci:// reference, got %q", RedactURLs(s.RepoURL))
		}
		switch u.Scheme {
		case "http", "https":
			if !chartNameRE.MatchString(s.ChartName) {
				return Errorf(EINVALID, "deployment.chartName %q is not a valid chart name (lower case letters, digits, '-', '_' and '.', at most 63)", s.ChartName)
			}
		case "oci":
			if s.ChartName != "" && !chartNameRE.MatchString(s.ChartName) {
				return Errorf(EINVALID, "deployment.chartName %q is not a valid chart name (lower case letters, digits, '-', '_' and '.', at most 63)", s.ChartName)
			}
		default:
			return Errorf(EINVALID, "deployment.repoURL must use http, https or oci, got %q", u.Scheme)
		}
		if s.ChartVersion != "" && !chartVerRE.MatchString(s.ChartVersion) {
			return Errorf(EINVALID, "deployment.chartVersion %q is not a version or version range", s.ChartVersion)
		}
	case TypeVM:
		if err := s.ValidateVM(); err != nil {
			return err
		}
	default:
		return Errorf(EINVALID, "deployment.type must be %q or %q, got %q", TypeK8s, TypeVM, s.Type)
	}
	return nil
}

// validateConsumerKeys refuses what would let a vm application's publisher choose the SSH keys its
// consumers' guests authorize (their own key on every consumer's VM): ssh_authorized_keys is the
// consumer's input. A publisher may declare it, to describe or require it, as a string with no default;
// nothing may be declared under it either (ssh_authorized_keys.x would replace the consumer's keys).
func (in *Input) validateConsumerKeys(i int) error {
	switch {
	case strings.HasPrefix(in.Name, SSHKeysInput+"."):
		return Errorf(EINVALID, "inputs[%d].name %q: %s holds the consumer's SSH keys; no input may be declared under it", i, in.Name, SSHKeysInput)
	case in.Name != SSHKeysInput:
		return nil
	case in.Default != nil:
		return Errorf(EINVALID, "inputs[%d].default: input %s must not have a default: the SSH keys a guest authorizes are its consumer's, never its publisher's", i, SSHKeysInput)
	case in.Type != "string":
		return Errorf(EINVALID, "inputs[%d].type: input %s is the consumer's SSH keys, one per line: a string, not %s", i, SSHKeysInput, in.Type)
	}
	return nil
}

// coerce converts a JSON value to the input's type, or says why it cannot.
func (in *Input) coerce(v any) (any, error) {
	switch in.Type {
	case "string":
		if s, ok := v.(string); ok {
			if strings.ContainsRune(s, 0) {
				return nil, fmt.Errorf("a string with the NUL character (\\u0000) is not allowed")
			}
			return s, nil
		}
	case "boolean":
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case "integer":
		switch n := v.(type) {
		case float64:
			if n == float64(int64(n)) {
				return int64(n), nil
			}
		case int64:
			return n, nil
		case int:
			return int64(n), nil
		}
	case "number":
		switch n := v.(type) {
		case float64, int64, int:
			return n, nil
		}
	}
	return nil, fmt.Errorf("%v is not a %s", v, in.Type)
}

// Values merges the application's input defaults with a consumer's inputs into chart values. Unknown
// names, wrong types and missing required inputs are EINVALID errors.
func (a *Application) Values(consumer map[string]any) (map[string]any, error) {
	inputs := a.Inputs
	if a.Deployment.Type == TypeVM && !slices.ContainsFunc(inputs, func(in Input) bool { return in.Name == SSHKeysInput }) {
		inputs = append(slices.Clip(inputs), Input{Name: SSHKeysInput, Type: "string",
			Description: "public SSH keys the guest authorizes, one per line"})
	}
	byName := make(map[string]*Input, len(inputs))
	for i := range inputs {
		byName[inputs[i].Name] = &inputs[i]
	}
	for name := range consumer {
		if byName[name] == nil {
			return nil, Errorf(EINVALID, "inputs.%s is not a parameter of application %d (its parameters: %s)", name, a.ID, a.inputNames())
		}
	}
	values := map[string]any{}
	for i := range inputs {
		in := &inputs[i]
		v, given := consumer[in.Name]
		// The SSH keys of a guest are its consumer's alone, also for an application stored before its
		// publisher was refused a default for them.
		if (!given || v == nil) && !(a.Deployment.Type == TypeVM && in.Name == SSHKeysInput) {
			v = in.Default
		}
		if v == nil {
			if in.Required {
				return nil, Errorf(EINVALID, "inputs.%s is required", in.Name)
			}
			continue
		}
		cv, err := in.coerce(v)
		if err != nil {
			return nil, Errorf(EINVALID, "inputs.%s: %s", in.Name, err)
		}
		setPath(values, strings.Split(in.Name, "."), cv)
	}
	return values, nil
}

func (a *Application) inputNames() string {
	if len(a.Inputs) == 0 {
		return "none"
	}
	names := make([]string, len(a.Inputs))
	for i, in := range a.Inputs {
		names[i] = in.Name
	}
	return strings.Join(names, ", ")
}

func setPath(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}
