package main

import "context"

// runZKLoad is replaced when its issue lands.
func runZKLoad(_ context.Context, _ *cmdEnv, _ []string) error { return errNotBuilt }
