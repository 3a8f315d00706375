package main

import "context"

// runMigrate is replaced when its issue lands.
func runMigrate(_ context.Context, _ *cmdEnv, _ []string) error { return errNotBuilt }
