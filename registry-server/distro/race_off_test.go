//go:build !race

package distro

const raceEnabled = false
