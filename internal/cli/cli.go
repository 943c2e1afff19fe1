// Package cli is mpctl, the marketplace's command-line client: cobra commands over the HTTP client that
// package apiclient generates from the API's OpenAPI document. It holds no state but the contexts file
// (config.go); every answer comes from the server.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// The exit codes of mpctl, documented in `mpctl help exit-codes`.
const (
	ExitOK       = 0 // done
	ExitError    = 1 // the server refused (a conflict, invalid input, a 5xx), or it could not be reached
	ExitUsage    = 2 // the command line is wrong: an unknown flag, a missing argument, a bad value
	ExitNotFound = 3 // no such resource, or the token was refused (not found, or not yours: 401, 403, 404)
	ExitFailed   = 4 // --wait saw the deployment fail (the reason is printed)
)

const exitCodesHelp = `mpctl exits with:
  0  done
  1  the server refused the request (a conflict, invalid input, an internal error) or could not be reached
  2  usage: an unknown command or flag, a missing argument, a malformed value (--set, -f, -o)
  3  not found or not authorized: no such application, project or deployment (or another tenant's),
     or the token was refused (wrong, revoked, or none)
  4  a deployment failed while --wait watched it (install, upgrade, rollback); the reason is printed

Errors are printed on stderr as the problem's title and detail, as the API answered them.`

// Env is what mpctl takes from the process: its streams, its environment and whether stdout is a
// terminal (a spinner there, plain lines when piped).
type Env struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	Getenv         func(string) string
	Terminal       bool
}

// exitError is an error with the exit code it ends mpctl with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

func usageError(format string, args ...any) error { return withCode(ExitUsage, format, args...) }

// Run runs mpctl with args (without the program name) and returns its exit code.
func Run(ctx context.Context, args []string, env Env) int {
	root := newRoot(env)
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(env.Stderr, "Error:", printable(err.Error(), "\n"))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// What cobra itself refuses (unknown commands and flags, argument counts) is a usage error.
	if isCobraUsage(err) {
		return ExitUsage
	}
	return ExitError
}

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, s := range []string{"unknown command", "unknown flag", "unknown shorthand", "flag needs an argument",
		"invalid argument", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// options are the flags every command shares.
type options struct {
	env        Env
	configPath string
	context    string
	output     string
}

func newRoot(env Env) *cobra.Command {
	o := &options{env: env}
	root := &cobra.Command{
		Use:   "mpctl",
		Short: "The marketplace from a terminal: apps, projects, organizations, installs, deployments, bills, webhooks",
		Long: "mpctl talks to a marketplace's API with a saved context (URL and token), like kubectl.\n" +
			"Start with `mpctl login --url URL --token TOKEN`. MARKETPLACE_URL and MARKETPLACE_TOKEN override the context.\n" +
			"Exit codes: `mpctl help exit-codes`.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&o.configPath, "config", "", "contexts file (default $XDG_CONFIG_HOME/marketplace/config.yaml or ~/.config/marketplace/config.yaml)")
	root.PersistentFlags().StringVar(&o.context, "context", "", "the context to use instead of the current one")
	root.PersistentFlags().StringVarP(&o.output, "output", "o", "table", "output format of reads: table, json or yaml")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: ExitUsage, err: err} })
	root.AddCommand(
		loginCommand(o), configCommand(o),
		appsCommand(o), projectsCommand(o), orgsCommand(o), installCommand(o), deploymentsCommand(o), billsCommand(o), webhooksCommand(o), targetsCommand(o),
		&cobra.Command{Use: "exit-codes", Short: "What mpctl's exit codes mean", Long: exitCodesHelp},
	)
	return root
}
