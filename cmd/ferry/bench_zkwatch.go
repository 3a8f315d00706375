package main

import "context"

// benchZKWatch is replaced when its issue lands.
func benchZKWatch(_ context.Context, _ *cmdEnv, _ []string) error { return errNotBuilt }
