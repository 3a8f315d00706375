package zkwatch

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-zookeeper/zk"
)

// AppMetadataPath is the node where Java Dubbo's ZooKeeper metadata report
// keeps an application's MetadataInfo for one revision (remote metadata
// only): /{root}/metadata/{app}/{revision} (ZookeeperMetadataReport,
// SubscriberMetadataIdentifier with MetadataConstants.DEFAULT_PATH_TAG).
// dubbo-go v3.3.2's report writes /{root}/{app}/{revision} instead
// (metadata/report/zookeeper/report.go): AppMetadata reads both.
func (w *Watcher) AppMetadataPath(app, revision string) string {
	return w.rootPath + "/metadata/" + app + "/" + revision
}

// appMetadataPathGo is dubbo-go's node for the same.
func (w *Watcher) appMetadataPathGo(app, revision string) string {
	return w.rootPath + "/" + app + "/" + revision
}

// AppMetadata reads an application's MetadataInfo for one revision from
// ZooKeeper now (Java's node, else dubbo-go's) (not watched: a revision is the hash of its content, so
// the node never changes). false when the node does not exist; an error
// while disconnected.
func (w *Watcher) AppMetadata(ctx context.Context, app, revision string) (string, bool, error) {
	if app == "" || revision == "" || strings.Contains(app, "/") || strings.Contains(revision, "/") {
		return "", false, fmt.Errorf("%w: app %q revision %q", ErrBadPath, app, revision)
	}
	w.lifeMu.Lock()
	conn, started, stopped := w.conn, w.started, w.stopped
	w.lifeMu.Unlock()
	if stopped {
		return "", false, ErrStopped
	}
	if !started {
		return "", false, ErrNotStarted
	}
	type res struct {
		data []byte
		err  error
	}
	for _, p := range []string{w.AppMetadataPath(app, revision), w.appMetadataPathGo(app, revision)} {
		ch := make(chan res, 1)
		go func() {
			data, _, err := conn.Get(p)
			ch <- res{data, err}
		}()
		select {
		case r := <-ch:
			if errors.Is(r.err, zk.ErrNoNode) {
				continue
			}
			if r.err != nil {
				return "", false, fmt.Errorf("zkwatch: get %s: %w", p, r.err)
			}
			return string(r.data), true, nil
		case <-ctx.Done():
			return "", false, ctx.Err()
		}
	}
	return "", false, nil
}
