package main

import "context"

// runRegistry is replaced when its issue lands.
func runRegistry(_ context.Context, _ *cmdEnv, _ []string) error { return errNotBuilt }
