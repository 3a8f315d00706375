package main

import "context"

// benchClient is replaced when its issue lands.
func benchClient(_ context.Context, _ *cmdEnv, _ []string) error { return errNotBuilt }
