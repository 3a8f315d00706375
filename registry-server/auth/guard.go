package auth

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/ferrysync/ferry/wire"
)

// Guard rules (what each route needs), after Nacos' @Secured annotations:
//
//	naming routes /nacos/v{1,2}/ns/...     GET: naming read, else naming write
//	config routes /nacos/v{1,2}/cs/...     GET and .../listener: config read, else config write
//	operator     /nacos/v{1,2}/ns/ferry/..., /nacos/v{1,2}/core/...: global admin
//	auth API     /nacos/v1/auth/...        login open; the rest global admin (auth.go's HTTP)
//	anything else (/nacos/ready, /nacos/live, /metrics): open
//
// A naming resource is namespaceId, groupName (or the group of a grouped
// "group@@name" serviceName) and serviceName; a config resource is tenant
// (v2: namespaceId), group and dataId.

type routeKind int

const (
	routeOpen routeKind = iota
	routeNaming
	routeConfig
	routeOperator
)

func classify(method, path string) (routeKind, Action) {
	act := Write
	if method == http.MethodGet || method == http.MethodHead {
		act = Read
	}
	for _, v := range []string{"/nacos/v1/", "/nacos/v2/"} {
		rest, ok := strings.CutPrefix(path, v)
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(rest, "ns/ferry/"), strings.HasPrefix(rest, "core/"):
			return routeOperator, Write
		case strings.HasPrefix(rest, "ns/"):
			return routeNaming, act
		case strings.HasPrefix(rest, "cs/"):
			if strings.HasSuffix(rest, "/listener") {
				act = Read
			}
			return routeConfig, act
		}
	}
	return routeOpen, Read
}

// IsLoopback reports whether an http.Request's RemoteAddr (host:port) is a
// loopback address.
func IsLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func remoteIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// httpIdentity reads the caller's identity as Nacos does
// (AbstractAuthenticationManager.resolveToken): "Authorization: Bearer
// <token>", else the accessToken parameter (or header), else username and
// password parameters. Form must have been parsed.
func httpIdentity(r *http.Request) Identity {
	id := Identity{IP: remoteIP(r.RemoteAddr)}
	if b := r.Header.Get("Authorization"); strings.HasPrefix(b, "Bearer ") {
		id.Token = strings.TrimPrefix(b, "Bearer ")
		return id
	}
	if t := r.Form.Get("accessToken"); t != "" {
		id.Token = t
		return id
	}
	if t := r.Header.Get("accessToken"); t != "" {
		id.Token = t
		return id
	}
	id.Username, id.Password = r.Form.Get("username"), r.Form.Get("password")
	return id
}

func httpResource(kind routeKind, r *http.Request) Resource {
	f := r.Form
	switch kind {
	case routeNaming:
		res := Resource{Type: TypeNaming, Namespace: f.Get("namespaceId"), Group: f.Get("groupName"), Name: f.Get("serviceName")}
		if g, n, ok := strings.Cut(res.Name, "@@"); ok {
			res.Group, res.Name = g, n
		}
		if res.Group == "" && res.Name != "" {
			res.Group = "DEFAULT_GROUP"
		}
		return res
	case routeConfig:
		ns := f.Get("tenant")
		if ns == "" {
			ns = f.Get("namespaceId")
		}
		return Resource{Type: TypeConfig, Namespace: ns, Group: f.Get("group"), Name: f.Get("dataId")}
	}
	return Resource{Type: TypeConsole, Name: "ferry"}
}

// Guard wraps the registry's HTTP handler: with auth on every naming,
// config and operator route is checked (403 with Nacos' message on
// refusal); with auth off, the operator routes answer loopback callers
// only. maxBody bounds the form the guard parses (the wrapped handler's own
// limit).
func (a *Authority) Guard(next http.Handler, maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, act := classify(r.Method, r.URL.Path)
		if kind == routeOpen {
			next.ServeHTTP(w, r)
			return
		}
		if !a.cfg.Enabled {
			if kind == routeOperator && !IsLoopback(r.RemoteAddr) {
				a.met.denied.WithLabelValues(TypeConsole).Inc()
				writeDenied(w, ErrLoopbackOnly)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "caused: malformed parameters: "+err.Error()+";", http.StatusBadRequest)
			return
		}
		if err := a.Check(httpIdentity(r), httpResource(kind, r), act); err != nil {
			writeDenied(w, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeDenied answers an auth refusal as Nacos' AuthFilter does: 403 and
// the AccessException message; a throttled login is 503, Nacos' answer to
// a request over its rate (NacosHttpTpsFilter).
func writeDenied(w http.ResponseWriter, err error) {
	status := http.StatusForbidden
	if errors.Is(err, ErrThrottled) {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(NacosMessage(err)))
}

// AuthorizeGRPC checks one gRPC request (Nacos' RemoteRequestAuthFilter):
// code 0 lets it through; otherwise the server answers the request's own
// response type with resultCode 500, errorCode code (403 NO_RIGHT, 503
// OVER_THRESHOLD for a throttled password login) and message msg, which the
// SDKs report as a failed call without reconnecting. The token is the
// accessToken header (nacos-sdk-go's NacosAuthClient.GetSecurityInfo);
// username and password headers are accepted too. HealthCheckRequest
// passes unchecked, as in Nacos; a request type this table does not know
// needs a valid identity only.
func (a *Authority) AuthorizeGRPC(req wire.Request, headers map[string]string, remoteIP string) (code int, msg string) {
	if !a.cfg.Enabled {
		return 0, ""
	}
	var err error
	id := Identity{Token: headers["accessToken"], IP: remoteIP}
	if id.Token == "" {
		id.Username, id.Password = headers["username"], headers["password"]
	}
	naming := func(ns, group, name string) Resource {
		if group == "" {
			group = "DEFAULT_GROUP"
		}
		return Resource{Type: TypeNaming, Namespace: ns, Group: group, Name: name}
	}
	switch r := req.(type) {
	case *wire.HealthCheckRequest:
		return 0, ""
	case *wire.InstanceRequest:
		err = a.Check(id, naming(r.Namespace, r.GroupName, r.ServiceName), Write)
	case *wire.BatchInstanceRequest:
		err = a.Check(id, naming(r.Namespace, r.GroupName, r.ServiceName), Write)
	case *wire.PersistentInstanceRequest:
		err = a.Check(id, naming(r.Namespace, r.GroupName, r.ServiceName), Write)
	case *wire.ServiceQueryRequest:
		err = a.Check(id, naming(r.Namespace, r.GroupName, r.ServiceName), Read)
	case *wire.SubscribeServiceRequest:
		err = a.Check(id, naming(r.Namespace, r.GroupName, r.ServiceName), Read)
	case *wire.ServiceListRequest:
		err = a.Check(id, Resource{Type: TypeNaming, Namespace: r.Namespace, Group: r.GroupName}, Read)
	case *wire.ConfigQueryRequest:
		err = a.Check(id, Resource{Type: TypeConfig, Namespace: r.Tenant, Group: r.Group, Name: r.DataID}, Read)
	case *wire.ConfigPublishRequest:
		err = a.Check(id, Resource{Type: TypeConfig, Namespace: r.Tenant, Group: r.Group, Name: r.DataID}, Write)
	case *wire.ConfigRemoveRequest:
		err = a.Check(id, Resource{Type: TypeConfig, Namespace: r.Tenant, Group: r.Group, Name: r.DataID}, Write)
	case *wire.ConfigBatchListenRequest:
		err = a.checkEach(id, len(r.ConfigListenContexts), Read, func(i int) Resource {
			c := r.ConfigListenContexts[i]
			return Resource{Type: TypeConfig, Namespace: c.Tenant, Group: c.Group, Name: c.DataID}
		})
	case *wire.FerryBatchBeatRequest:
		err = a.checkEach(id, len(r.Beats), Write, func(i int) Resource {
			b := &r.Beats[i]
			return naming(b.Namespace, b.GroupName, b.ServiceName)
		})
		if err == nil {
			err = a.checkEach(id, len(r.Groups), Write, func(i int) Resource {
				g := &r.Groups[i]
				return naming(g.Namespace, g.GroupName, g.ServiceName)
			})
		}
	case *wire.FerryBatchDeregisterRequest:
		err = a.checkEach(id, len(r.Groups), Write, func(i int) Resource {
			g := &r.Groups[i]
			return naming(g.Namespace, g.GroupName, g.ServiceName)
		})
	default:
		_, err = a.identify(id)
	}
	if err == nil {
		return 0, ""
	}
	if errors.Is(err, ErrThrottled) {
		return wire.CodeOverThreshold, NacosMessage(err)
	}
	return wire.CodeNoRight, NacosMessage(err)
}

// checkEach checks n resources of one request with one identification: a
// global admin passes at once; an empty request needs a valid identity.
func (a *Authority) checkEach(id Identity, n int, act Action, res func(i int) Resource) error {
	user, err := a.identify(id)
	if err != nil {
		a.met.denied.WithLabelValues(TypeNaming).Inc()
		return err
	}
	st := a.deps.Store.AuthState()
	if st.IsGlobalAdmin(user) {
		return nil
	}
	// One lock for the whole batch (a merged beat names up to thousands
	// of services); st.Allowed is pure and cheap on a miss.
	a.decMu.Lock()
	defer a.decMu.Unlock()
	if a.decState != st {
		a.decState, a.decision = st, map[decisionKey]bool{}
	}
	for i := 0; i < n; i++ {
		r := res(i)
		k := decisionKey{user: user, res: r, action: act}
		ok, hit := a.decision[k]
		if !hit {
			ok = st.Allowed(user, r, act)
			if len(a.decision) >= max(a.cfg.TokenCacheSize, 1) {
				clear(a.decision)
			}
			a.decision[k] = ok
		}
		if !ok {
			a.met.denied.WithLabelValues(r.Type).Inc()
			return ErrForbidden
		}
	}
	return nil
}
