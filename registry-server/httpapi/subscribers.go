package httpapi

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"time"

	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/registry-server/udppush"
)

// PushSubscribers records Nacos 1.x clients' UDP push endpoints
// (*udppush.Service implements it). Subscribe is called from request
// goroutines, before the poll's answer is selected; it decides and counts
// on its own which polls become subscriptions, and never fails the poll.
type PushSubscribers interface {
	Subscribe(q udppush.Query)
}

// subscribe hands a GET instance/list poll that names a udpPort to the
// push side, with the request's source address (the only address it may
// push to) and its agent (User-Agent, else Client-Version, as Nacos'
// WebUtils.getUserAgent).
func (a *API) subscribe(r *http.Request, p params, key naming.ServiceKey, clusters string, healthyOnly bool) {
	if a.deps.PushSubscribers == nil || !p.v.Has("udpPort") {
		return
	}
	src, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return
	}
	agent := r.Header.Get("User-Agent")
	if agent == "" {
		agent = r.Header.Get("Client-Version")
	}
	a.deps.PushSubscribers.Subscribe(udppush.Query{
		Key: key, Clusters: clusters, HealthyOnly: healthyOnly,
		Source: src.Addr(), ClientIP: p.v.Get("clientIP"), UDPPort: p.v.Get("udpPort"),
		Agent: agent, App: p.v.Get("app"),
	})
}

// ServiceInfoJSON is the body GET /nacos/v1/ns/instance/list answers for
// si (name grouped, clusters as requested): what UDP pushes carry.
func ServiceInfoJSON(key naming.ServiceKey, clusters string, si naming.ServiceInfo) ([]byte, error) {
	return json.Marshal(renderServiceInfo(key, clusters, si, naming.DefaultConfig().CacheMillis, time.Now))
}
