package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/marketplace/marketplace/internal/cli/apiclient"
)

// waitFlags are --wait and --timeout.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (w *waitFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&w.wait, "wait", false, "follow the deployment's status until it settles; exit 4 if it fails")
	cmd.Flags().DurationVar(&w.timeout, "timeout", 15*time.Minute, "how long --wait waits (exit 1 after it)")
}

// settled says whether a deployment reached the state a command waits for (done), or failed (err).
type settled func(d *apiclient.Deployment) (done bool, err error)

// untilInstalled waits for an install, upgrade or rollback to end installed. An upgrade that never became
// ready leaves the deployment installed at its old version with the reason: that is a failure too.
func untilInstalled(target int64) settled {
	return func(d *apiclient.Deployment) (bool, error) {
		if d.TargetVersion != nil && target == 0 {
			target = *d.TargetVersion
		}
		switch d.Status {
		case "failed":
			return true, withCode(ExitFailed, "deployment %d failed: %s", d.Id, orDash(deref(d.FailureReason)))
		case "uninstalling", "uninstalled":
			return true, withCode(ExitFailed, "deployment %d is %s", d.Id, d.Status)
		case "installed":
			if target != 0 && d.Version != target {
				return true, withCode(ExitFailed, "deployment %d stayed at version %d, not %d: %s", d.Id, d.Version, target, orDash(deref(d.FailureReason)))
			}
			return true, nil
		}
		return false, nil
	}
}

func untilUninstalled(d *apiclient.Deployment) (bool, error) {
	switch d.Status {
	case "uninstalled":
		return true, nil
	case "failed":
		return true, withCode(ExitFailed, "deployment %d failed: %s", d.Id, orDash(deref(d.FailureReason)))
	}
	return false, nil
}

var spinnerFrames = []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")

// waitFor follows a deployment until done says it settled, printing each status it takes as it takes
// it: a line per change, and on a terminal a spinner with the time spent in the current status.
func (o *options) waitFor(ctx context.Context, s *session, id int64, w waitFlags, done settled) error {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	out := o.env.Stdout
	start := time.Now()
	poll := time.NewTicker(300 * time.Millisecond)
	defer poll.Stop()
	var spin <-chan time.Time
	if o.env.Terminal {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		spin = t.C
	}
	last, lastReason, frame, since := "", "", 0, start
	clear := func() {
		if o.env.Terminal {
			fmt.Fprint(out, "\r\033[K")
		}
	}
	defer clear()
	for {
		d, _, err := decode[apiclient.Deployment](s.api.GetDeployment(ctx, id))
		if err != nil && ctx.Err() == nil {
			return err
		}
		if err == nil {
			// A line per status, and per failed attempt while the worker retries (its reason).
			if reason := deref(d.FailureReason); d.Status != last || reason != lastReason {
				clear()
				line := fmt.Sprintf("%6.1fs  deployment %d: %s", time.Since(start).Seconds(), id, d.Status)
				if d.Status == "installed" && d.Placement.IpAddress != nil && *d.Placement.IpAddress != "" {
					line += ", ip " + *d.Placement.IpAddress
				}
				if reason != "" && reason != lastReason && d.Status != "failed" {
					line += " (" + reason + ")"
				}
				fmt.Fprintln(out, printable(line, ""))
				if d.Status != last {
					since = time.Now()
				}
				last, lastReason = d.Status, reason
			}
			if ok, err := done(&d); ok {
				return err
			}
		}
		for polled := false; !polled; {
			select {
			case <-ctx.Done():
				if ctx.Err() == context.DeadlineExceeded {
					return withCode(ExitError, "deployment %d still %s after %v (--timeout)", id, last, w.timeout)
				}
				return ctx.Err()
			case <-spin:
				clear()
				fmt.Fprintf(out, "%c deployment %d: %s %ds", spinnerFrames[frame%len(spinnerFrames)], id, printable(last, ""), int(time.Since(since).Seconds()))
				frame++
			case <-poll.C:
				polled = true
			}
		}
	}
}
