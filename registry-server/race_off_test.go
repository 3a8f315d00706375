//go:build !race

package registryserver

const raceEnabled = false
