package registryclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// FailoverDir is the directory under CacheDir whose files override server
// answers while failover is on. Its files have the snapshot's format: copy
// a snapshot there and edit its hosts to pin addresses by hand.
const FailoverDir = "failover"

// snapshotFile is the on-disk form of one service: readable JSON.
type snapshotFile struct {
	Namespace string      `json:"namespace"`
	Service   ServiceInfo `json:"service"`
}

// cacheFileName is "namespace@@group@@name.json", path-escaped.
func cacheFileName(svc ServiceRef) string {
	return url.PathEscape(svc.Namespace+"@@"+svc.Group+"@@"+svc.Name) + ".json"
}

// writeSnapshot writes svc's state atomically (temp file + rename).
func writeSnapshot(dir string, svc ServiceRef, info ServiceInfo) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(snapshotFile{Namespace: svc.Namespace, Service: info}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return errors.Join(werr, cerr)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, cacheFileName(svc))); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// readSnapshot reads one snapshot file.
func readSnapshot(path string) (ServiceRef, ServiceInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ServiceRef{}, ServiceInfo{}, err
	}
	var f snapshotFile
	if err := json.Unmarshal(b, &f); err != nil {
		return ServiceRef{}, ServiceInfo{}, fmt.Errorf("%w: %s: %v", ErrInvalidInput, path, err)
	}
	info := f.Service
	if info.Name == "" {
		return ServiceRef{}, ServiceInfo{}, fmt.Errorf("%w: %s: no service name", ErrInvalidInput, path)
	}
	svc := ServiceRef{Namespace: f.Namespace, Group: info.GroupName, Name: info.Name}
	if svc.Group == "" {
		svc.Group = DefaultGroup
	}
	return svc, info, nil
}

// loadCache fills the in-memory cache from CacheDir; entries are replaced
// by the first server answer.
func (c *Client) loadCache() error {
	ents, err := os.ReadDir(c.cfg.CacheDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	n := 0
	c.naming.mu.Lock()
	defer c.naming.mu.Unlock()
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		svc, info, err := readSnapshot(filepath.Join(c.cfg.CacheDir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if svc.Namespace == "" {
			svc.Namespace = c.cfg.Namespace
		}
		c.naming.cache[svc] = &cached{info: info, fromDisk: true}
		n++
	}
	c.log.Info("snapshot loaded", "dir", c.cfg.CacheDir, "services", n)
	return errors.Join(errs...)
}

// failoverOn holds the run-time switch (initialised from Config.Failover).
type failoverSwitch struct{ on atomic.Bool }

// SetFailover switches the failover directory on or off (needs CacheDir).
func (c *Client) SetFailover(on bool) error {
	if on && c.cfg.CacheDir == "" {
		return fmt.Errorf("%w: failover needs CacheDir", ErrInvalidConfig)
	}
	c.failover.on.Store(on)
	return nil
}

// failoverInfo returns the failover file of svc when failover is on.
func (c *Client) failoverInfo(svc ServiceRef) (ServiceInfo, bool) {
	if !c.failover.on.Load() {
		return ServiceInfo{}, false
	}
	_, info, err := readSnapshot(filepath.Join(c.cfg.CacheDir, FailoverDir, cacheFileName(svc)))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("failover file unreadable", "service", svc.String(), "err", err)
		}
		return ServiceInfo{}, false
	}
	return info, true
}
