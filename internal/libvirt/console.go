package libvirt

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Console returns at most maxBytes of the end of a deployment's serial console (QEMU writes it to a file
// of the log directory). A deployment without a console yet has an empty one.
func (p *Provider) Console(ctx context.Context, d *marketplace.Deployment, maxBytes int64) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	f, err := os.Open(p.names(d.ID).log)
	if os.IsNotExist(err) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("console of deployment %d: %w", d.ID, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.Size() > maxBytes {
		if _, err := f.Seek(st.Size()-maxBytes, io.SeekStart); err != nil {
			return "", err
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxBytes))
	if err != nil {
		return "", fmt.Errorf("console of deployment %d: %w", d.ID, err)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), nil
}

// State is libvirt's live state of a deployment's domain (running, shut off, crashed...), or "absent".
func (p *Provider) State(ctx context.Context, d *marketplace.Deployment) (string, error) {
	l, err := p.client(ctx)
	if err != nil {
		return "", err
	}
	dom, err := l.DomainLookupByName(p.names(d.ID).domain)
	if golibvirt.IsNotFound(err) {
		return "absent", nil
	} else if err != nil {
		return "", err
	}
	state, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		return "", err
	}
	return stateName(golibvirt.DomainState(state)), nil
}

func stateName(s golibvirt.DomainState) string {
	switch s {
	case golibvirt.DomainRunning:
		return "running"
	case golibvirt.DomainBlocked:
		return "blocked"
	case golibvirt.DomainPaused:
		return "paused"
	case golibvirt.DomainShutdown:
		return "shutting down"
	case golibvirt.DomainShutoff:
		return "shut off"
	case golibvirt.DomainCrashed:
		return "crashed"
	case golibvirt.DomainPmsuspended:
		return "suspended"
	}
	return "unknown"
}

// lastLines is the end of a console log for an error message, on one line.
func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return "(nothing)"
	}
	lines := strings.Split(strings.TrimSpace(strings.ToValidUTF8(string(b), "")), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := strings.Join(lines, " | ")
	out = strings.Map(func(r rune) rune {
		if r < 0x20 {
			return ' '
		}
		return r
	}, out)
	if len(out) > 400 {
		out = out[len(out)-400:]
	}
	return out
}

// Health is the domain's live state: healthy while it runs, unhealthy otherwise (shut off, crashed,
// paused, absent).
func (p *Provider) Health(ctx context.Context, d *marketplace.Deployment) (*marketplace.Health, error) {
	state, err := p.State(ctx, d)
	if err != nil {
		return nil, err
	}
	status := marketplace.HealthUnhealthy
	if state == "running" || state == "blocked" { // blocked: running, waiting on a resource
		status = marketplace.HealthHealthy
	}
	return &marketplace.Health{Status: status, State: state, CheckedAt: time.Now().UTC()}, nil
}
