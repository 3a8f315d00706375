package membership

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferrysync/ferry/registry-server/clusternet"
)

// node is Nacos' core Member as /v1/core/cluster/nodes lists it.
type node struct {
	IP                string         `json:"ip"`
	Port              int            `json:"port"`
	State             State          `json:"state"`
	ExtendInfo        map[string]any `json:"extendInfo"`
	Address           string         `json:"address"`
	FailAccessCnt     int            `json:"failAccessCnt"`
	Abilities         map[string]any `json:"abilities"`
	GRPCReportEnabled bool           `json:"grpcReportEnabled"`
}

// restResult is Nacos' RestResult.
type restResult struct {
	Code    int     `json:"code"`
	Message *string `json:"message"`
	Data    any     `json:"data"`
}

func (m *Membership) node(v MemberView) node {
	host, port, _ := SplitAddr(v.Address)
	ext := map[string]any{
		"raftPort":         strconv.Itoa(PortsOf(port).Raft),
		"version":          clusternet.Version,
		"site":             "unknow",
		"adWeight":         "0",
		"weight":           "1",
		"readyToUpgrade":   true,
		"supportGrayModel": false,
	}
	if !v.LastOK.IsZero() {
		ext["lastRefreshTime"] = v.LastOK.UnixMilli()
	}
	if v.LastError != "" {
		ext["ferryLastError"] = v.LastError
	}
	m.mu.Lock()
	info := m.selfInfo
	m.mu.Unlock()
	if v.Self && info != nil {
		for k, x := range info() {
			ext[k] = x
		}
	}
	return node{
		IP: host, Port: port, State: v.State, ExtendInfo: ext, Address: v.Address, FailAccessCnt: v.FailCount,
		Abilities: map[string]any{
			"remoteAbility": map[string]bool{"supportRemoteConnection": true, "grpcReportEnabled": true},
			"configAbility": map[string]bool{"supportRemoteMetrics": false},
			"namingAbility": map[string]bool{"supportJraft": true},
		},
		GRPCReportEnabled: true,
	}
}

// Handler serves Nacos' cluster routes on the main port:
// GET /nacos/v1/core/cluster/nodes[?keyword=prefix] (every member, sorted,
// in Nacos' Member shape), /nacos/v1/core/cluster/self and
// /nacos/v1/core/cluster/health (this node's state). Mount it at
// "/nacos/v1/core/cluster/".
func (m *Membership) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /nacos/v1/core/cluster/nodes", func(w http.ResponseWriter, r *http.Request) {
		kw := strings.TrimSpace(r.URL.Query().Get("keyword"))
		out := []node{}
		for _, v := range m.View() {
			if kw == "" || strings.HasPrefix(v.Address, kw) {
				out = append(out, m.node(v))
			}
		}
		writeResult(w, out)
	})
	mux.HandleFunc("GET /nacos/v1/core/cluster/self", func(w http.ResponseWriter, r *http.Request) {
		for _, v := range m.View() {
			if v.Self {
				writeResult(w, m.node(v))
				return
			}
		}
	})
	mux.HandleFunc("GET /nacos/v1/core/cluster/health", func(w http.ResponseWriter, r *http.Request) {
		writeResult(w, string(m.State(m.cfg.Self)))
	})
	return mux
}

func writeResult(w http.ResponseWriter, data any) {
	b, err := json.Marshal(restResult{Code: 200, Data: data})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_, _ = w.Write(b)
}

// Standalone is the membership of a node run without a member list: itself
// alone, UP, never probing. It serves Handler's routes, so that tools that
// ask a single node for /nacos/v1/core/cluster/nodes (Nacos' console,
// scripts checking a node's health) get the answer a one-member cluster
// gives rather than 404.
func Standalone(self string) *Membership {
	return &Membership{
		cfg:     Config{Self: self, Members: []string{self}},
		members: []string{self},
		peerRep: map[string]report{},
		det:     NewDetector(self, []string{self}, 1),
		logged:  map[string]string{},
		agreed:  map[string]bool{self: true},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}
