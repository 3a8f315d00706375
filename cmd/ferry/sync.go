package main

import "context"

// runSync is replaced when its issue lands.
func runSync(_ context.Context, _ *cmdEnv, _ []string) error { return errNotBuilt }
