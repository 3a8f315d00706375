package main

import "context"

// runDemo is replaced when its issue lands.
func runDemo(_ context.Context, _ *cmdEnv, _ []string) error { return errNotBuilt }
