//go:build race

package registryserver

// raceEnabled: heavy tests shrink under the race detector (~5-10x slower).
const raceEnabled = true
