package zkwatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/go-zookeeper/zk"
)

// ErrBadInstance: an application-level instance node's data is not the
// Curator JSON Dubbo writes.
var ErrBadInstance = errors.New("zkwatch: bad application instance data")

// AppInstance is one Dubbo 3 application-level instance,
// /{appRoot}/{application}/{ip:port}, whose data is Curator x-discovery JSON.
type AppInstance struct {
	App      string // the application (parent node name)
	ID       string // node name, "ip:port"
	Node     string // full znode path
	Address  string
	Port     int
	Metadata map[string]string // payload.metadata (dubbo.endpoints, dubbo.metadata.revision, ...)
	// RegistrationTimeUTC in milliseconds (Java only; 0 from dubbo-go).
	RegistrationTimeUTC int64
	ServiceType         string // "DYNAMIC" from Java; "" from dubbo-go
}

type curatorInstance struct {
	Name                string `json:"name"`
	ID                  string `json:"id"`
	Address             string `json:"address"`
	Port                *int   `json:"port"`
	RegistrationTimeUTC int64  `json:"registrationTimeUTC"`
	ServiceType         string `json:"serviceType"`
	Payload             *struct {
		Metadata map[string]any `json:"metadata"`
	} `json:"payload"`
}

// ParseAppInstance decodes an instance node's JSON data.
func ParseAppInstance(data []byte) (AppInstance, error) {
	var ci curatorInstance
	if err := json.Unmarshal(data, &ci); err != nil {
		return AppInstance{}, fmt.Errorf("%w: %v", ErrBadInstance, err)
	}
	if ci.Address == "" {
		return AppInstance{}, fmt.Errorf("%w: no address", ErrBadInstance)
	}
	if ci.Port == nil || *ci.Port < 0 || *ci.Port > 65535 {
		return AppInstance{}, fmt.Errorf("%w: no valid port", ErrBadInstance)
	}
	inst := AppInstance{App: ci.Name, ID: ci.ID, Address: ci.Address, Port: *ci.Port,
		RegistrationTimeUTC: ci.RegistrationTimeUTC, ServiceType: ci.ServiceType, Metadata: map[string]string{}}
	if ci.Payload != nil {
		for k, v := range ci.Payload.Metadata {
			switch v := v.(type) {
			case string:
				inst.Metadata[k] = v
			case nil:
			default:
				b, _ := json.Marshal(v)
				inst.Metadata[k] = string(b)
			}
		}
	}
	return inst, nil
}

// AppKeyPrefix starts the key under which Changes delivers an application
// whose instances changed: AppKey(app). A decoded interface-level service
// name never starts with it (Java and Go type names hold no ':').
const AppKeyPrefix = "app:"

// AppKey is the Changes key of an application.
func AppKey(app string) string { return AppKeyPrefix + app }

// sameAppInstance reports whether two parsed instances are equal.
func sameAppInstance(a, b AppInstance) bool {
	return a.App == b.App && a.ID == b.ID && a.Node == b.Node && a.Address == b.Address && a.Port == b.Port &&
		a.RegistrationTimeUTC == b.RegistrationTimeUTC && a.ServiceType == b.ServiceType && maps.Equal(a.Metadata, b.Metadata)
}

// appState is what the watcher keeps per application node.
type appState struct {
	instances map[string]AppInstance // by node name
	listGen   uint64                 // gen of the last listing of the app node
	unread    map[string]bool        // children listed whose data is not read yet
	// readGen is the gen in which every child of the app's first listing
	// of the session was read. A child created later in the session is
	// unread for a moment but does not make the view untrusted: it was
	// never in the view, so its absence removes nothing (see
	// appsSyncedLocked).
	readGen uint64
}

// noteReadLocked records that the app has been fully read in this
// session, once its listing is of this gen and nothing of it is unread.
// w.mu held.
func (w *Watcher) noteReadLocked(a *appState) {
	if a.listGen == w.gen && len(a.unread) == 0 {
		a.readGen = w.gen
	}
}

// appsSyncedLocked reports whether the application tree has been listed in
// this session: the app root, every app node, and the data of every
// instance node the app's first listing of the session showed (an instance
// node created since, whose data is being read, does not count: a burst of
// new instances must not make the whole view untrusted, which would hold
// every removal and make the engine reconcile every key again). w.mu held.
func (w *Watcher) appsSyncedLocked() bool {
	if w.appPath == "" {
		return true
	}
	if w.appRootGen != w.gen {
		return false
	}
	for _, a := range w.apps {
		if a.listGen != w.gen || a.readGen != w.gen {
			return false
		}
	}
	return true
}

// Apps lists the applications that have at least one instance, sorted.
func (w *Watcher) Apps() []string {
	w.mu.Lock()
	out := make([]string, 0, len(w.apps))
	for name, a := range w.apps {
		if len(a.instances) > 0 {
			out = append(out, name)
		}
	}
	w.mu.Unlock()
	slices.Sort(out)
	return out
}

// AppInstances returns an application's instances sorted by ID; false when
// the application is unknown.
func (w *Watcher) AppInstances(app string) ([]AppInstance, bool) {
	w.mu.Lock()
	a := w.apps[app]
	if a == nil {
		w.mu.Unlock()
		return nil, false
	}
	out := make([]AppInstance, 0, len(a.instances))
	for _, inst := range a.instances {
		out = append(out, inst)
	}
	w.mu.Unlock()
	slices.SortFunc(out, func(x, y AppInstance) int { return strings.Compare(x.ID, y.ID) })
	return out, true
}

// processApp lists the application-level tree: the app root, an app node,
// or one instance node (its data).
func (w *Watcher) processApp(p string) error {
	if p == w.appPath {
		return w.listAppRoot()
	}
	rest := strings.TrimPrefix(p, w.appPath+"/")
	app, inst, deeper := strings.Cut(rest, "/")
	if !deeper {
		return w.listApp(app)
	}
	if strings.Contains(inst, "/") {
		return nil
	}
	return w.getInstance(app, inst)
}

func (w *Watcher) listAppRoot() error {
	gen := w.currentGen()
	children, err := w.childrenW("app_root", w.appPath)
	if errors.Is(err, zk.ErrNoNode) {
		if err := w.existsW(w.appPath); err != nil {
			return err
		}
		w.mu.Lock()
		w.appRootGen = gen // no application tree: nothing to wait for
		w.mu.Unlock()
		return nil
	}
	if err != nil {
		if err := w.handleListErr("app_root", w.appPath, err); err != nil {
			return err
		}
		w.mu.Lock()
		w.appRootGen = gen // skipped (ACL...): counts as listed
		w.mu.Unlock()
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.appRootGen = gen
	seen := map[string]bool{}
	for _, app := range children {
		seen[app] = true
		if _, ok := w.apps[app]; !ok {
			w.apps[app] = &appState{instances: map[string]AppInstance{}}
			w.q.add(w.appPath + "/" + app)
		}
	}
	for app, a := range w.apps {
		if !seen[app] {
			delete(w.apps, app)
			if len(a.instances) > 0 {
				w.notes.mark(AppKey(app))
			}
		}
	}
	w.updateAppGaugeLocked()
	return nil
}

func (w *Watcher) listApp(app string) error {
	p := w.appPath + "/" + app
	gen := w.currentGen()
	children, err := w.childrenW("app", p)
	gone := errors.Is(err, zk.ErrNoNode)
	if err != nil && !gone {
		if err := w.handleListErr("app", p, err); err != nil {
			return err
		}
		w.mu.Lock()
		if a := w.apps[app]; a != nil {
			a.listGen = gen // skipped (ACL...): counts as listed
		}
		w.mu.Unlock()
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.apps[app]
	if a == nil {
		return nil
	}
	a.listGen = gen
	seen := map[string]bool{}
	for _, id := range children {
		seen[id] = true
		if _, ok := a.instances[id]; !ok && !a.unread[id] {
			if a.unread == nil {
				a.unread = map[string]bool{}
			}
			a.unread[id] = true
			w.q.add(p + "/" + id)
		}
	}
	for id := range a.unread {
		if !seen[id] {
			delete(a.unread, id)
		}
	}
	for id := range a.instances {
		if !seen[id] {
			delete(a.instances, id)
			w.notes.mark(AppKey(app))
		}
	}
	w.noteReadLocked(a)
	w.updateAppGaugeLocked()
	return nil
}

func (w *Watcher) getInstance(app, id string) error {
	p := w.appPath + "/" + app + "/" + id
	w.m.listings.WithLabelValues("app_instance").Inc()
	data, _, _, err := w.conn.GetW(p)
	gone := errors.Is(err, zk.ErrNoNode)
	if err != nil && !gone {
		w.m.listErrors.WithLabelValues("app_instance").Inc()
		if err := w.handleListErr("app_instance", p, err); err != nil {
			return err
		}
		w.mu.Lock()
		if a := w.apps[app]; a != nil {
			delete(a.unread, id) // skipped (ACL...): counts as read
			w.noteReadLocked(a)
		}
		w.mu.Unlock()
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.apps[app]
	if a == nil {
		return nil
	}
	delete(a.unread, id)
	w.noteReadLocked(a)
	old, had := a.instances[id]
	if gone {
		if had {
			delete(a.instances, id)
			w.notes.mark(AppKey(app))
		}
		w.updateAppGaugeLocked()
		return nil
	}
	inst, err := ParseAppInstance(data)
	if err != nil {
		w.skipLocked(p, "unparsable", err)
		if had {
			delete(a.instances, id)
			w.notes.mark(AppKey(app))
		}
		w.updateAppGaugeLocked()
		return nil
	}
	inst.App, inst.ID, inst.Node = app, id, p
	a.instances[id] = inst
	if !had || !sameAppInstance(old, inst) {
		w.notes.mark(AppKey(app))
	}
	w.updateAppGaugeLocked()
	return nil
}

func (w *Watcher) updateAppGaugeLocked() {
	n := 0
	for _, a := range w.apps {
		n += len(a.instances)
	}
	w.m.appInstances.Set(float64(n))
}
