package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// chromium is the one headless Chromium of this test binary (Debian's, installed by
// scripts/chromium.sh), started by the first browser test and again by the next one if it died (a test
// that finds it gone says so; every later browser test failing on one dead browser hid the first cause);
// each test gets a browser context of its own per user, so cookies never leak between users or tests.
// chromedp kills it when the binary exits.
var chromium struct {
	mu  sync.Mutex
	ctx context.Context // cancelled by chromedp when the connection to the browser is lost
}

// startChromium starts the shared Chromium, or starts it again when the one before is gone.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	chromium.mu.Lock()
	defer chromium.mu.Unlock()
	if chromium.ctx != nil {
		if chromium.ctx.Err() == nil {
			return chromium.ctx
		}
		t.Logf("the shared Chromium is gone (%v): starting another", context.Cause(chromium.ctx))
	}
	path := os.Getenv("CHROMIUM")
	if path == "" {
		var err error
		if path, err = exec.LookPath("chromium"); err != nil {
			t.Fatalf("chromium is not installed: run `bash scripts/chromium.sh` (make test does): %v", err)
		}
	}
	dataDir, err := os.MkdirTemp("", "mp-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(dataDir),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.NoDefaultBrowserCheck, chromedp.WindowSize(1280, 900)}
	alloc, _ := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, _ := chromedp.NewContext(alloc)
	if err := chromedp.Run(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	chromium.ctx = browser
	return browser
}

// browserContext returns a fresh browser context (its own cookies and cache, like a private window),
// closed when the test ends.
func browserContext(t *testing.T) context.Context {
	t.Helper()
	browser := startChromium(t)
	// A browser context of its own, its first tab in a new window: Chromium's headless mode refuses a tab
	// of a new browser context without one ("no browser is open"), which chromedp.WithNewBrowserContext
	// does not ask for.
	var bc cdp.BrowserContextID
	var tab target.ID
	err := chromedp.Run(browser, chromedp.ActionFunc(func(ctx context.Context) error {
		exec := cdp.WithExecutor(ctx, chromedp.FromContext(ctx).Browser)
		var err error
		if bc, err = target.CreateBrowserContext().Do(exec); err != nil {
			return err
		}
		tab, err = target.CreateTarget("about:blank").WithBrowserContextID(bc).WithNewWindow(true).Do(exec)
		return err
	}))
	if err != nil {
		t.Fatalf("open a browser context: %v", err)
	}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithTargetID(tab))
	t.Cleanup(func() {
		cancel()
		chromedp.Run(browser, chromedp.ActionFunc(func(ctx context.Context) error {
			return target.DisposeBrowserContext(bc).Do(cdp.WithExecutor(ctx, chromedp.FromContext(ctx).Browser))
		}))
	})
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("open a browser context: %v", err)
	}
	return ctx
}

// browse runs chromedp actions and fails the test, naming the step, if one fails or waits for something
// that does not come within stepTimeout (a guard against hanging, not a measure of speed).
func browse(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// stepTimeout bounds one step of a browser test; an install to installed is the longest.
const stepTimeout = 3 * time.Minute

// screenshot saves the whole page as .local/screenshots/<test>-<n>-<step>.png of the repository.
func screenshot(t *testing.T, ctx context.Context, n int, step string) {
	t.Helper()
	var png []byte
	browse(t, ctx, "screenshot "+step, chromedp.FullScreenshot(&png, 100))
	dir := filepath.Join("..", "..", ".local", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("%s-%02d-%s.png", strings.ReplaceAll(t.Name(), "/", "_"), n, step)
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// axeVersion is the axe-core that scripts/axe.sh fetches into the cache.
const axeVersion = "4.11.0"

// checkAccessibility injects axe-core into the page and fails the test on any serious or critical
// violation of WCAG 2 A/AA.
func checkAccessibility(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	cache := os.Getenv("MARKETPLACE_CACHE_DIR")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache", "marketplace")
	}
	axe, err := os.ReadFile(filepath.Join(cache, "axe-core-"+axeVersion, "axe.min.js"))
	if err != nil {
		t.Fatalf("axe-core is not fetched: run `bash scripts/axe.sh` (make test does): %v", err)
	}
	var violations []string
	browse(t, ctx, "axe on "+page,
		chromedp.Evaluate(string(axe)+";true", nil),
		chromedp.Evaluate(`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})
  .then(r => r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
  .map(v => v.impact + " " + v.id + ": " + v.help + " at " + v.nodes.map(n => n.target.join(" ")).join(", ")))`, &violations, awaitPromise))
	for _, v := range violations {
		t.Errorf("accessibility of %s: %s", page, v)
	}
}

// awaitPromise makes chromedp.Evaluate wait for the promise an expression returns.
func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }
