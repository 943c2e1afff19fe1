package libvirt

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Console returns at most maxBytes of the end of a deployment's serial console. QEMU writes it through
// virtlogd (qemu.conf's stdio_handler "logd", libvirt's default), which rotates the file at virtlogd.conf's
// max_size into <file>.0, <file>.1…, up to max_backups of them: what is on disk stays bounded however much
// a guest writes. When the file was just rotated, the end of its latest backup comes first, so a reader
// gets maxBytes whenever the guest wrote that much. A deployment without a console yet has an empty one.
func (p *Provider) Console(ctx context.Context, d *marketplace.Deployment, maxBytes int64) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	path := p.names(d.ID).log
	b, err := readTail(path, maxBytes)
	if err != nil {
		return "", fmt.Errorf("console of deployment %d: %w", d.ID, err)
	}
	if rest := maxBytes - int64(len(b)); rest > 0 {
		older, err := readTail(path+".0", rest)
		if err != nil {
			return "", fmt.Errorf("console of deployment %d: %w", d.ID, err)
		}
		b = append(older, b...)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), nil
}

// readTail reads at most maxBytes of the end of a file, seeking there: never the whole file. A missing
// file reads as empty.
func readTail(path string, maxBytes int64) ([]byte, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxBytes {
		if _, err := f.Seek(st.Size()-maxBytes, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, maxBytes))
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

// lastLines is the end of a console log for an error message, on one line: its last n lines among its
// last few KiB.
func lastLines(path string, n int) string {
	b, err := readTail(path, 4096)
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

// removeConsole deletes a console log and the backups virtlogd rotated it into (<path>.0, <path>.1…).
func removeConsole(path string) error {
	backups, err := filepath.Glob(path + ".[0-9]*")
	if err != nil {
		return err
	}
	for _, f := range append(backups, path) {
		if err := removeFile(f); err != nil {
			return err
		}
	}
	return nil
}
