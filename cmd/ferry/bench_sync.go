package main

import "context"

// benchSync is replaced when its issue lands.
func benchSync(_ context.Context, _ *cmdEnv, _ []string) error { return errNotBuilt }
