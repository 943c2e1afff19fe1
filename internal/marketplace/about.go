package marketplace

import (
	"context"
	"time"
)

// PackageInfo is what an application's package says about itself, as its package has it (a chart's
// Chart.yaml, README.md and Artifact Hub annotations): someone else's text, shown only once package
// chartmeta has bounded, checked and sanitised it into an About.
type PackageInfo struct {
	Icon        string       `json:"icon,omitempty"`
	AppVersion  string       `json:"app_version,omitempty"`
	Keywords    []string     `json:"keywords,omitempty"`
	Maintainers []Maintainer `json:"maintainers,omitempty"`
	Home        string       `json:"home,omitempty"`
	Sources     []string     `json:"sources,omitempty"`
	// Readme is the package's README.md, Markdown, at most MaxReadmeBytes (longer ones are cut there).
	Readme string `json:"readme,omitempty"`
	// Annotations are the package's artifacthub.io/ annotations.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// MaxReadmeBytes bounds the README read from a package.
const MaxReadmeBytes = 64 << 10

// About is what the marketplace shows of what one version of an application says about itself, read
// when the version is published: every text bounded, every URL http or https, the README rendered from
// Markdown and sanitised, the icon re-encoded and served from the marketplace's own cache.
type About struct {
	Icon        string       `json:"icon,omitempty" doc:"the icon's path on this marketplace, /icons/<sha256>.png: a PNG re-encoded from the package's icon, never loaded from elsewhere"`
	AppVersion  string       `json:"app_version,omitempty" doc:"the version of the software the package installs (a chart's appVersion)"`
	Keywords    []string     `json:"keywords,omitempty"`
	Maintainers []Maintainer `json:"maintainers,omitempty"`
	Home        string       `json:"home,omitempty" doc:"the project's home page"`
	Sources     []string     `json:"sources,omitempty" doc:"where the package's sources are"`
	Links       []Link       `json:"links,omitempty" doc:"further links (Artifact Hub's artifacthub.io/links)"`
	License     string       `json:"license,omitempty" doc:"SPDX identifier (artifacthub.io/license)"`
	ReadmeHTML  string       `json:"readme_html,omitempty" doc:"the README, rendered from Markdown and sanitised: no script, style, image or raw HTML of the package's"`
	Notes       []string     `json:"notes,omitempty" doc:"what of the package's description was refused or cut, and why"`
	ReadAt      time.Time    `json:"read_at" doc:"when the package was read"`
}

// Maintainer is someone who maintains a package.
type Maintainer struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
	URL   string `json:"url,omitempty"`
}

// Link is a named link.
type Link struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// AboutService keeps what application versions say about themselves, and their icons.
type AboutService interface {
	// SaveAbout keeps what version of one of the caller's applications says about itself, with its
	// icon (a PNG, kept under its SHA-256, About.Icon) when it has one. A version published without a
	// changelog takes changes as its changelog when that is not empty.
	SaveAbout(ctx context.Context, appID int64, version int, about *About, icon []byte, changes string) error
	// FindAbout returns what a version of a catalog (or retired) application says about itself; nil
	// when it has not been read.
	FindAbout(ctx context.Context, appID int64, version int) (*About, error)
	// SaveIcon keeps png, an icon the marketplace re-encoded, as the icon of one of the caller's vm
	// applications (a chart's icon is the chart's), and returns its path.
	SaveIcon(ctx context.Context, appID int64, png []byte) (string, error)
	// FindIcon returns the PNG whose SHA-256 is sha (hex), or ENOTFOUND.
	FindIcon(ctx context.Context, sha string) ([]byte, error)
}
