//go:build race

package distro

// raceEnabled: under the race detector the simulation runs fewer seeds
// (the detector makes each run ~10× slower).
const raceEnabled = true
