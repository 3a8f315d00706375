package main

import "context"

// benchRegistry is replaced when its issue lands.
func benchRegistry(_ context.Context, _ *cmdEnv, _ []string) error { return errNotBuilt }
