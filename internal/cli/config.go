package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"sigs.k8s.io/yaml"
)

// Config is the contexts file, like a kubeconfig: named contexts (a server and a token) and the current
// one. It holds bearer tokens, so it is written with mode 0600.
type Config struct {
	CurrentContext string              `json:"current-context,omitempty"`
	Contexts       map[string]*Context `json:"contexts,omitempty"`
}

// Context is one marketplace and the token to use there.
type Context struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// configPath is --config, or marketplace/config.yaml under $XDG_CONFIG_HOME, or under ~/.config.
func (o *options) configFile() (string, error) {
	if o.configPath != "" {
		return o.configPath, nil
	}
	if dir := o.env.Getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "marketplace", "config.yaml"), nil
	}
	home := o.env.Getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("no config file: give --config, or set XDG_CONFIG_HOME or HOME: %w", err)
		}
	}
	return filepath.Join(home, ".config", "marketplace", "config.yaml"), nil
}

// loadConfig reads the contexts file; a missing file is an empty configuration.
func (o *options) loadConfig() (*Config, string, error) {
	path, err := o.configFile()
	if err != nil {
		return nil, "", err
	}
	cfg := &Config{Contexts: map[string]*Context{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, path, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", path, err)
	}
	if err := yaml.UnmarshalStrict(b, cfg); err != nil {
		return nil, "", fmt.Errorf("read %s: %w", path, err)
	}
	if cfg.Contexts == nil {
		cfg.Contexts = map[string]*Context{}
	}
	return cfg, path, nil
}

// saveConfig writes the contexts file readable by its owner only, replacing it in one rename so a
// crash never leaves half a file.
func saveConfig(path string, cfg *Config) error {
	b, err := yaml.Marshal(cfg)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(path), 0o700)
	}
	if err == nil {
		err = writeFileAtomic(path, b, 0o600)
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(mode)
	if err == nil {
		_, err = tmp.Write(b)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// target is the server and token a command uses: the context (--context, or the current one), with
// MARKETPLACE_URL and MARKETPLACE_TOKEN over it.
func (o *options) target() (url, token string, err error) {
	cfg, path, err := o.loadConfig()
	if err != nil {
		return "", "", err
	}
	name := o.context
	if name == "" {
		name = cfg.CurrentContext
	}
	if c := cfg.Contexts[name]; c != nil {
		url, token = c.URL, c.Token
	} else if o.context != "" {
		return "", "", usageError("no context %q in %s (contexts: %v)", o.context, path, contextNames(cfg))
	}
	if v := o.env.Getenv("MARKETPLACE_URL"); v != "" {
		url = v
	}
	if v := o.env.Getenv("MARKETPLACE_TOKEN"); v != "" {
		token = v
	}
	if url == "" {
		return "", "", usageError("no marketplace to talk to: run `mpctl login --url URL --token TOKEN` or set MARKETPLACE_URL")
	}
	return url, token, nil
}

func contextNames(cfg *Config) []string {
	names := make([]string, 0, len(cfg.Contexts))
	for n := range cfg.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
