// Package zkwatch watches a whole Dubbo catalog in ZooKeeper and keeps, for
// every service node under the root, the current set of providers keyed by
// ip:port, with a coalesced change notification per service.
//
// Layout (see /work/shared/reference/dubbo.md):
//
//	/{root}/{enc(interface)}/providers/{enc(provider URL)}
//	/{root}/{enc(interface)}/consumers|routers|configurators/{enc(URL)}
//	/{appRoot}/{application}/{ip:port}   (Dubbo 3 application level, JSON data)
//
// How it watches: go-zookeeper has no persistent recursive watch, so the
// watcher keeps one-shot child watches on the root, on each service node and
// on each category node. Every watch is set by the listing itself
// (getChildren with watch=true), so a change between a fire and the re-arm is
// always in the next listing. Watch events reach the watcher through the zk
// event callback, which only marks the path dirty in a coalescing work queue
// (it never blocks the zk receive loop); a bounded pool of workers re-lists
// dirty paths, at most one listing per path at a time.
//
// Disconnects deliver nothing: the last known state stays until ZooKeeper
// answers again. A session expiry re-lists everything and notifies every
// service once with a fresh snapshot.
package zkwatch

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config configures a Watcher.
type Config struct {
	// Servers are ZooKeeper host:port addresses. Required.
	Servers []string
	// Root is Dubbo's registry group, the root of the interface-level tree
	// (Dubbo's `-zk-root`); without slashes. Default "dubbo".
	Root string
	// AppRoot is the root of Dubbo 3 application-level instances
	// (/services/{app}/{ip:port}); "" turns that watch off. Default "services".
	AppRoot string
	// SessionTimeout asked of ZooKeeper (the server may clamp it). Default 30s.
	SessionTimeout time.Duration
	// ListConcurrency bounds concurrent ZooKeeper listings (pipelined on the
	// one connection). Default 32.
	ListConcurrency int
	// SkipChildren are children of Root that are never services (Dubbo's own
	// config center, mapping and metadata nodes). Default config, mapping, metadata.
	SkipChildren []string
	// RetryBackoff is the pause before retrying a listing that failed while
	// the session was up. Default 200ms.
	RetryBackoff time.Duration
	// MaxSkipped bounds how many skipped node paths are remembered (and
	// logged once each). Default 10000.
	MaxSkipped int
	// OnSkip, when set, is told of each node path skipped for the first
	// time (among the MaxSkipped remembered) with the reason. It is called
	// with the watcher's lock held: it must return at once (e.g. hand the
	// event to a buffer) and must not call the watcher.
	OnSkip func(path, reason string)
	// FlapChanges and FlapWindow define a flapping service: one whose
	// provider set changed FlapChanges times within FlapWindow (a node
	// created and deleted in a loop, a crash-looping provider). It is
	// counted (zkwatch_flapping_total) and reported once per window; its
	// changes are still coalesced as any other's, so other services are not
	// slowed. Defaults 100 and 10s; FlapChanges 0 turns detection off.
	FlapChanges int
	FlapWindow  time.Duration
	// OnFlap, when set, is told of each flapping service (its decoded name,
	// the changes counted, the window). Called with the watcher's lock held,
	// like OnSkip: it must return at once and must not call the watcher.
	OnFlap func(service string, changes int, window time.Duration)
}

// DefaultConfig returns the defaults; Servers still has to be set.
func DefaultConfig() Config {
	return Config{
		Root:            "dubbo",
		AppRoot:         "services",
		SessionTimeout:  30 * time.Second,
		ListConcurrency: 32,
		SkipChildren:    []string{"config", "mapping", "metadata"},
		RetryBackoff:    200 * time.Millisecond,
		MaxSkipped:      10000,
		FlapChanges:     100,
		FlapWindow:      10 * time.Second,
	}
}

// ErrInvalidConfig wraps every Validate failure.
var ErrInvalidConfig = errors.New("zkwatch: invalid config")

// Validate names the first bad field.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	if len(c.Servers) == 0 {
		return bad("Servers is empty")
	}
	for _, s := range c.Servers {
		if strings.TrimSpace(s) == "" {
			return bad("Servers has an empty address")
		}
	}
	if strings.Trim(c.Root, "/") == "" {
		return bad("Root %q is empty", c.Root)
	}
	if strings.Contains(strings.Trim(c.Root, "/"), "//") {
		return bad("Root %q has an empty segment", c.Root)
	}
	if strings.Contains(strings.Trim(c.AppRoot, "/"), "//") {
		return bad("AppRoot %q has an empty segment", c.AppRoot)
	}
	if a, r := strings.Trim(c.AppRoot, "/"), strings.Trim(c.Root, "/"); a != "" &&
		(a == r || strings.HasPrefix(a+"/", r+"/") || strings.HasPrefix(r+"/", a+"/")) {
		return bad("AppRoot %q and Root %q overlap", c.AppRoot, c.Root)
	}
	if c.SessionTimeout < 100*time.Millisecond {
		return bad("SessionTimeout %v below 100ms", c.SessionTimeout)
	}
	if c.ListConcurrency < 1 {
		return bad("ListConcurrency %d below 1", c.ListConcurrency)
	}
	if c.RetryBackoff <= 0 {
		return bad("RetryBackoff %v must be positive", c.RetryBackoff)
	}
	if c.MaxSkipped < 0 {
		return bad("MaxSkipped %d negative", c.MaxSkipped)
	}
	if c.FlapChanges < 0 {
		return bad("FlapChanges %d negative", c.FlapChanges)
	}
	if c.FlapChanges > 0 && c.FlapWindow <= 0 {
		return bad("FlapWindow %v must be positive", c.FlapWindow)
	}
	return nil
}
