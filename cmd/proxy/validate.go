package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/gangway-ecs/gangway/internal/config"
)

// ValidateCommand is `proxy validate`: it parses a configuration file with every check that
// `proxy run` applies (certificate files included) and reports every problem, one per line,
// as file:line:column: field.path: message. Exit 0 valid, 1 invalid or unreadable, 4 usage.
type ValidateCommand struct {
	env env
}

// Run executes the command.
func (c *ValidateCommand) Run(_ context.Context, args []string) error {
	fs := newFlagSet("validate", c.env)
	path := fs.String("config", "", "configuration `FILE` (default: what 'proxy run' would use: $GANGWAY_CONFIG,\n\t$GANGWAY_CONFIG_YAML, $GANGWAY_UPSTREAM, else the embedded default)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, _, err := config.Resolve(*path, c.env.getenv)
	var errs config.Errors
	switch {
	case errors.As(err, &errs):
		for _, e := range errs {
			fmt.Fprintln(c.env.stderr, e)
		}
		noun := "errors"
		if len(errs) == 1 {
			noun = "error"
		}
		return &exitError{code: exitFailure, err: fmt.Errorf("%s: %d %s", errs[0].File, len(errs), noun)}
	case err != nil:
		return &exitError{code: exitFailure, err: err}
	}
	fmt.Fprintf(c.env.stdout, "ok: %s (version %s, %d listeners, %d routes, %d clusters)\n",
		cfg.File, cfg.Version, len(cfg.Listeners), len(cfg.Routes), len(cfg.Clusters))
	return nil
}
