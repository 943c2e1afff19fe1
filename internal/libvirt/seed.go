package libvirt

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// seedFiles are the cloud-init NoCloud files of one deployment: meta-data names the instance, user-data
// (a cloud-config) carries the consumer's SSH keys and writes the inputs to /etc/marketplace/inputs.json,
// and inputs.json is the same for guests without cloud-init.
func seedFiles(n names, values map[string]any) (map[string][]byte, error) {
	keys := []string{}
	if v, ok := values[marketplace.SSHKeysInput].(string); ok {
		for _, line := range strings.Split(v, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				keys = append(keys, line)
			}
		}
	}
	inputs := map[string]any{}
	for k, v := range values {
		if k != marketplace.SSHKeysInput {
			inputs[k] = v
		}
	}
	inputsJSON, err := json.Marshal(inputs)
	if err != nil {
		return nil, fmt.Errorf("seed inputs: %w", err)
	}
	// JSON strings are YAML strings: every value is quoted that way, so no input can break the YAML.
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	var ud strings.Builder
	ud.WriteString("#cloud-config\nhostname: " + quote(n.domain) + "\n")
	if len(keys) > 0 {
		ud.WriteString("ssh_authorized_keys:\n")
		for _, k := range keys {
			ud.WriteString("  - " + quote(k) + "\n")
		}
	}
	ud.WriteString("write_files:\n  - path: /etc/marketplace/inputs.json\n    content: " + quote(string(inputsJSON)) + "\n")
	return map[string][]byte{
		"meta-data":   []byte("instance-id: " + n.domain + "\nlocal-hostname: " + n.domain + "\n"),
		"user-data":   []byte(ud.String()),
		"inputs.json": inputsJSON,
	}, nil
}

// writeSeed (re)makes the deployment's seed volume: a small FAT disk labelled cidata, which cloud-init
// (and the test guest) read as a NoCloud datasource. It is made afresh on every define, so a seed half
// written by a crashed attempt is never booted.
func (p *Provider) writeSeed(ctx context.Context, l *golibvirt.Libvirt, n names, d *marketplace.Deployment, values map[string]any) (string, error) {
	files, err := seedFiles(n, values)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "mp-seed-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "seed.img")
	args := [][]string{{"mkfs.vfat", "-n", "CIDATA", "-C", img, "1024"}}
	for name, content := range files {
		local := filepath.Join(dir, name)
		if err := os.WriteFile(local, content, 0o644); err != nil {
			return "", err
		}
		args = append(args, []string{"mcopy", "-i", img, local, "::/" + name})
	}
	for _, a := range args {
		if out, err := exec.CommandContext(ctx, a[0], a[1:]...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("make the seed of deployment %d: %s: %w: %s", d.ID, a[0], err, out)
		}
	}
	if err := p.deleteVolume(ctx, l, n.seed); err != nil {
		return "", err
	}
	f, err := os.Open(img)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	pool, err := l.StoragePoolLookupByName(p.workPool())
	if err != nil {
		return "", fmt.Errorf("storage pool %s: %w", p.workPool(), err)
	}
	vol, err := p.uploadVolume(ctx, l, pool, n.seed, "raw", f, uint64(st.Size()))
	if err != nil {
		return "", err
	}
	path, err := l.StorageVolGetPath(vol)
	if err != nil {
		return "", fmt.Errorf("seed volume %s: %w", n.seed, err)
	}
	return path, nil
}
