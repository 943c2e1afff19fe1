// Package chartmeta reads what an application's package says about itself when a version of it is
// published, and keeps it: a chart's icon, appVersion, keywords, maintainers, home and sources, its
// README and Artifact Hub's annotations (changes, links, license); a VM application's Markdown
// description. All of it is a publisher's, so all of it is treated as hostile: every text is bounded,
// every URL must be http or https, the README is rendered from Markdown and sanitised, and the icon is
// fetched once through the fetch guard, size-capped, decoded and re-encoded as PNG (an SVG is refused),
// and served from the marketplace's own store under its SHA-256, so a storefront page never loads
// anything from elsewhere.
package chartmeta

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// Store is where the reader finds versions and keeps what it read.
type Store interface {
	FindAppVersion(ctx context.Context, appID int64, version int) (*marketplace.Application, error)
	SaveAbout(ctx context.Context, appID int64, version int, about *marketplace.About, icon []byte, changes string) error
}

// Config is what a Reader reads with.
type Config struct {
	Store Store
	// Inspectors are the process's inspectors by deployment type: those whose type offers PackageInfo
	// read their packages (an API replica's ask a worker).
	Inspectors map[string]marketplace.Inspector
	Fetch      *fetch.Guard
	Logger     *slog.Logger
	// Timeout bounds the reading of one version, package and icon; 1 minute when zero.
	Timeout time.Duration
}

// Reader reads published versions in the background: a publish never waits on a publisher's server.
type Reader struct {
	cfg      Config
	markdown *Markdown
	requests chan request
}

type request struct {
	ctx     context.Context // the publisher's, for the store's authorization
	appID   int64
	version int
}

// pending bounds the versions waiting to be read; readers is how many are read at once.
const (
	pending = 256
	readers = 2
)

// New returns a Reader; Run reads what Request asks.
func New(cfg Config) *Reader {
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	return &Reader{cfg: cfg, markdown: NewMarkdown(), requests: make(chan request, pending)}
}

// Request asks for a version just published to be read, as the caller of ctx (its publisher). It never
// waits: when too many wait already, the version is left unread, and said so in the log.
func (r *Reader) Request(ctx context.Context, appID int64, version int) {
	select {
	case r.requests <- request{ctx: context.WithoutCancel(ctx), appID: appID, version: version}:
	default:
		r.cfg.Logger.Warn("too many versions wait to be read: this one's description is left unread", "application", appID, "version", version)
	}
}

// Run reads the versions requested until ctx is done.
func (r *Reader) Run(ctx context.Context) error {
	done := make(chan struct{})
	for range readers {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-ctx.Done():
					return
				case req := <-r.requests:
					readCtx, cancel := context.WithTimeout(req.ctx, r.cfg.Timeout)
					stop := context.AfterFunc(ctx, cancel)
					if err := r.Read(readCtx, req.appID, req.version); err != nil {
						r.cfg.Logger.Warn("what a version says about itself cannot be kept", "application", req.appID, "version", req.version, "err", err)
					}
					stop()
					cancel()
				}
			}
		}()
	}
	for range readers {
		<-done
	}
	return nil
}

// Read reads what a version says about itself and keeps it. What cannot be read (the repository is
// down, the icon is an SVG) is kept as a note of the version's About, not an error: the version is
// published either way. An error is one of the store's.
func (r *Reader) Read(ctx context.Context, appID int64, version int) error {
	app, err := r.cfg.Store.FindAppVersion(ctx, appID, version)
	if err != nil {
		return err
	}
	about, icon, changes := r.describe(ctx, app)
	return r.cfg.Store.SaveAbout(ctx, appID, version, about, icon, changes)
}

// describe is the About of app's version, its icon as PNG (nil without one) and the changelog its
// package gives.
func (r *Reader) describe(ctx context.Context, app *marketplace.Application) (*marketplace.About, []byte, string) {
	packages, ok := r.cfg.Inspectors[app.Deployment.Type]
	if !ok || !marketplace.Offers(app.Deployment.Type).PackageInfo {
		// A package that says nothing of itself (a VM image): the application's description is its
		// README.
		about := &marketplace.About{ReadAt: time.Now().UTC()}
		r.readme(about, app.Description)
		return about, nil, ""
	}
	info, err := packages.PackageInfo(ctx, app)
	if err != nil {
		return &marketplace.About{ReadAt: time.Now().UTC(),
			Notes: []string{"the package cannot be read: " + bounded(err.Error(), 500)}}, nil, ""
	}
	about, changes := describe(info)
	about.ReadAt = time.Now().UTC()
	if len(info.Readme) >= marketplace.MaxReadmeBytes {
		about.Notes = append(about.Notes, fmt.Sprintf("the README is longer than %d bytes: only its beginning is shown", marketplace.MaxReadmeBytes))
	}
	r.readme(about, info.Readme)
	var icon []byte
	if info.Icon != "" {
		if u := webURL(info.Icon); u == "" {
			about.Notes = append(about.Notes, "icon refused: its URL is not an http or https URL")
		} else if icon, err = fetchIcon(ctx, r.cfg.Fetch, u); err != nil {
			about.Notes = append(about.Notes, "icon refused: "+err.Error())
		}
	}
	return about, icon, changes
}

// readme renders Markdown into about's README.
func (r *Reader) readme(about *marketplace.About, markdown string) {
	if markdown == "" {
		return
	}
	html, err := r.markdown.Render(bounded(markdown, marketplace.MaxReadmeBytes))
	if err != nil {
		about.Notes = append(about.Notes, "the README cannot be rendered")
		return
	}
	about.ReadmeHTML = html
}
