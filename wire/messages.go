package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Message is any request or response body. TypeName is what goes into
// Metadata.type: the Java simple class name.
type Message interface {
	TypeName() string
}

// Request is a message sent to be answered (by the server, or by the client
// for server pushes).
type Request interface {
	Message
	Header() *RequestHeader
}

// Response answers a Request.
type Response interface {
	Message
	Result() *ResponseHeader
}

// Modules, in every request body's "module" field.
const (
	ModuleInternal = "internal"
	ModuleNaming   = "naming"
)

// RequestHeader is the part common to every request. Headers travel in
// Metadata.headers, not in the body.
type RequestHeader struct {
	Headers   map[string]string `json:"-"`
	RequestID string            `json:"requestId,omitempty"`
	Module    string            `json:"module,omitempty"`
}

// Header returns h itself; it makes every embedding type a Request.
func (h *RequestHeader) Header() *RequestHeader { return h }

// NamingHeader is AbstractNamingRequest: the target service. ServiceName is
// ungrouped.
type NamingHeader struct {
	RequestHeader
	Namespace   string `json:"namespace"`
	ServiceName string `json:"serviceName"`
	GroupName   string `json:"groupName"`
}

// ResponseHeader is the part common to every response. Success is kept
// consistent with ResultCode by Encode (Nacos derives it from resultCode==200;
// the Go SDK reads it first).
type ResponseHeader struct {
	ResultCode int    `json:"resultCode"`
	ErrorCode  int    `json:"errorCode"`
	Success    bool   `json:"success"`
	Message    string `json:"message,omitempty"`
	RequestID  string `json:"requestId,omitempty"`
}

// Result returns h itself; it makes every embedding type a Response.
func (h *ResponseHeader) Result() *ResponseHeader { return h }

// OK reports whether the response is a success. Judge by resultCode, never by
// success: the Go SDK answers server pushes with success:false, resultCode 200.
func (h *ResponseHeader) OK() bool { return h.ResultCode == ResultSuccess }

// SetError marks the response failed as Nacos' Response.setErrorInfo does:
// resultCode 500, errorCode code.
func (h *ResponseHeader) SetError(code int, msg string) {
	h.ResultCode, h.ErrorCode, h.Success, h.Message = ResultFail, code, false, msg
}

// Okay returns a success header.
func Okay() ResponseHeader { return ResponseHeader{ResultCode: ResultSuccess, Success: true} }

// Instance is com.alibaba.nacos.api.naming.pojo.Instance as JSON. The three
// heart-beat fields are derived getters in Java (from the preserved.* metadata
// keys, defaults 5000/15000/30000); servers ignore them on input.
type Instance struct {
	InstanceID                string            `json:"instanceId"`
	IP                        string            `json:"ip"`
	Port                      int               `json:"port"`
	Weight                    float64           `json:"weight"`
	Healthy                   bool              `json:"healthy"`
	Enabled                   bool              `json:"enabled"`
	Ephemeral                 bool              `json:"ephemeral"`
	ClusterName               string            `json:"clusterName"`
	ServiceName               string            `json:"serviceName"`
	Metadata                  map[string]string `json:"metadata"`
	InstanceHeartBeatInterval int64             `json:"instanceHeartBeatInterval"`
	InstanceHeartBeatTimeOut  int64             `json:"instanceHeartBeatTimeOut"`
	IPDeleteTimeout           int64             `json:"ipDeleteTimeout"`
}

// ServiceInfo is com.alibaba.nacos.api.naming.pojo.ServiceInfo as JSON. Name
// is ungrouped on the gRPC path; Valid is hosts != null.
type ServiceInfo struct {
	Name                     string     `json:"name"`
	GroupName                string     `json:"groupName"`
	Clusters                 string     `json:"clusters"`
	CacheMillis              int64      `json:"cacheMillis"`
	Hosts                    []Instance `json:"hosts"`
	LastRefTime              int64      `json:"lastRefTime"`
	Checksum                 string     `json:"checksum"`
	AllIPs                   bool       `json:"allIPs"`
	ReachProtectionThreshold bool       `json:"reachProtectionThreshold"`
	Valid                    bool       `json:"valid"`
}

// ---- internal module ----

// ServerCheckRequest is the first unary call of every connection.
type ServerCheckRequest struct{ RequestHeader }

// ServerCheckResponse gives the client its connection id. FerryBatchBeat is
// Ferry's capability flag (ignored by Nacos SDKs): the server accepts
// FerryBatchBeatRequest, including its Groups.
type ServerCheckResponse struct {
	ResponseHeader
	ConnectionID              string `json:"connectionId"`
	SupportAbilityNegotiation bool   `json:"supportAbilityNegotiation"`
	FerryBatchBeat            bool   `json:"ferryBatchBeat,omitempty"`
}

// ConnectionSetupRequest is the first message on the bi-stream (no answer).
// The Go SDK sends the legacy clientAbilities, Java ≥ 2.3 abilityTable.
type ConnectionSetupRequest struct {
	RequestHeader
	ClientVersion   string            `json:"clientVersion"`
	Tenant          string            `json:"tenant"`
	Labels          map[string]string `json:"labels"`
	ClientAbilities json.RawMessage   `json:"clientAbilities,omitempty"`
	AbilityTable    map[string]bool   `json:"abilityTable,omitempty"`
}

// SetupAckRequest is the server's answer to an abilityTable (server → client).
type SetupAckRequest struct {
	RequestHeader
	AbilityTable map[string]bool `json:"abilityTable,omitempty"`
}

// SetupAckResponse is the Java client's ack of SetupAckRequest.
type SetupAckResponse struct{ ResponseHeader }

// HealthCheckRequest is the client's keepalive.
type HealthCheckRequest struct{ RequestHeader }

// HealthCheckResponse answers HealthCheckRequest.
type HealthCheckResponse struct{ ResponseHeader }

// ClientDetectionRequest probes an idle client (server → client).
type ClientDetectionRequest struct{ RequestHeader }

// ClientDetectionResponse answers ClientDetectionRequest.
type ClientDetectionResponse struct{ ResponseHeader }

// ConnectResetRequest asks the client to reconnect, to ServerIP:ServerPort
// (main HTTP port, as a string) when given (server → client).
type ConnectResetRequest struct {
	RequestHeader
	ServerIP     string `json:"serverIp,omitempty"`
	ServerPort   string `json:"serverPort,omitempty"`
	ConnectionID string `json:"connectionId,omitempty"`
}

// ConnectResetResponse answers ConnectResetRequest.
type ConnectResetResponse struct{ ResponseHeader }

// ErrorResponse is the connection-level failure (300, 301, 302, 502).
type ErrorResponse struct{ ResponseHeader }

// NewErrorResponse builds an ErrorResponse as ErrorResponse.build(code, msg).
func NewErrorResponse(code int, msg string) *ErrorResponse {
	e := &ErrorResponse{}
	e.SetError(code, msg)
	return e
}

// ---- naming module ----

// Instance request types (InstanceRequest.type, PersistentInstanceRequest.type,
// BatchInstanceRequest.type).
const (
	RegisterInstance      = "registerInstance"
	DeregisterInstance    = "deregisterInstance"
	BatchRegisterInstance = "batchRegisterInstance"
)

// InstanceRequest registers or deregisters the connection's instance of a
// service.
type InstanceRequest struct {
	NamingHeader
	Type     string   `json:"type"`
	Instance Instance `json:"instance"`
}

// InstanceResponse answers InstanceRequest and PersistentInstanceRequest.
type InstanceResponse struct {
	ResponseHeader
	Type string `json:"type,omitempty"`
}

// BatchInstanceRequest replaces the connection's instances of a service.
type BatchInstanceRequest struct {
	NamingHeader
	Type      string     `json:"type"`
	Instances []Instance `json:"instances"`
}

// BatchInstanceResponse answers BatchInstanceRequest.
type BatchInstanceResponse struct {
	ResponseHeader
	Type string `json:"type,omitempty"`
}

// PersistentInstanceRequest registers or deregisters a persistent instance
// (Java client ≥ 2.3 only).
type PersistentInstanceRequest struct {
	NamingHeader
	Type     string   `json:"type"`
	Instance Instance `json:"instance"`
}

// ServiceQueryRequest queries a service once.
type ServiceQueryRequest struct {
	NamingHeader
	Cluster     string `json:"cluster"`
	HealthyOnly bool   `json:"healthyOnly"`
	UDPPort     int    `json:"udpPort"`
}

// QueryServiceResponse answers ServiceQueryRequest. When Encoded is set
// (a server answering from a pre-encoded service state) it is sent as
// serviceInfo with ServiceInfo.LastRefTime, and the other ServiceInfo
// fields are ignored by Encode.
type QueryServiceResponse struct {
	ResponseHeader
	ServiceInfo ServiceInfo      `json:"serviceInfo"`
	Encoded     *ServiceInfoJSON `json:"-"`
}

// ServiceListRequest lists a group's service names, a page at a time
// (pageNo 1-based). Selector is ignored, as by Nacos 2.5.1.
type ServiceListRequest struct {
	NamingHeader
	PageNo   int    `json:"pageNo"`
	PageSize int    `json:"pageSize"`
	Selector string `json:"selector"`
}

// ServiceListResponse answers ServiceListRequest: Count is the group's total,
// ServiceNames ungrouped.
type ServiceListResponse struct {
	ResponseHeader
	Count        int      `json:"count"`
	ServiceNames []string `json:"serviceNames"`
}

// SubscribeServiceRequest subscribes (Subscribe=true) or unsubscribes.
type SubscribeServiceRequest struct {
	NamingHeader
	Subscribe bool   `json:"subscribe"`
	Clusters  string `json:"clusters"`
}

// SubscribeServiceResponse answers SubscribeServiceRequest with the current
// state.
type SubscribeServiceResponse struct {
	ResponseHeader
	ServiceInfo ServiceInfo `json:"serviceInfo"`
	// Encoded, when set, is ServiceInfo pre-encoded (all but its
	// LastRefTime, the only field of ServiceInfo then read), as in
	// QueryServiceResponse.
	Encoded *ServiceInfoJSON `json:"-"`
}

// NotifySubscriberRequest pushes a service's state (server → client).
type NotifySubscriberRequest struct {
	NamingHeader
	ServiceInfo ServiceInfo `json:"serviceInfo"`
	// Encoded, when set, is ServiceInfo pre-encoded (all but its
	// LastRefTime, the only field of ServiceInfo then read).
	Encoded *ServiceInfoJSON `json:"-"`
}

// NotifySubscriberResponse acks a push.
type NotifySubscriberResponse struct{ ResponseHeader }

// ---- Ferry's merged beat extension (module naming) ----

// BeatItem is one beat-kept instance's beat. A full item carries the whole
// Instance, so that the server can register an instance it does not know;
// a light item leaves Instance zero (omitted from the JSON) and names the
// instance by IP, Port and Cluster only, which is much cheaper to send and
// decode. Clients send light items for instances the server knows and full
// ones for new instances and for items answered "unknown". When Instance.IP
// is set it wins over the light fields.
type BeatItem struct {
	Namespace   string   `json:"namespace"`
	GroupName   string   `json:"groupName"`
	ServiceName string   `json:"serviceName"`
	IP          string   `json:"ip,omitempty"`
	Port        int      `json:"port,omitempty"`
	Cluster     string   `json:"cluster,omitempty"`
	Instance    Instance `json:"instance,omitzero"`
}

// Addr returns the item's instance address (ip, port, cluster as sent).
func (b *BeatItem) Addr() (ip string, port int, cluster string) {
	if b.Instance.IP != "" {
		return b.Instance.IP, b.Instance.Port, b.Instance.ClusterName
	}
	return b.IP, b.Port, b.Cluster
}

// Full reports whether the item carries a whole instance.
func (b *BeatItem) Full() bool { return b.Instance.IP != "" }

// BeatGroup is the compact form of light beats of one service: the service
// is named once and each instance by its "ip:port" (IPv6 in brackets), all
// in Cluster (DEFAULT when empty). Clients send known instances this way:
// it is several times cheaper to encode and decode than one light BeatItem
// per instance, which repeats the service name.
type BeatGroup struct {
	Namespace   string   `json:"namespace"`
	GroupName   string   `json:"groupName"`
	ServiceName string   `json:"serviceName"`
	Cluster     string   `json:"cluster,omitempty"`
	Addrs       AddrList `json:"addrs"`
}

// AddrList is a JSON array of strings decoded cheaply: when no element has
// an escape, the array's text is copied once and every element is a slice
// of that copy, instead of one allocation and unquoting per element (a beat
// request carries thousands of them).
type AddrList []string

// ascii reports whether b is 7-bit (encoding/json rewrites invalid UTF-8,
// so anything else takes its path).
func ascii(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// UnmarshalJSON implements json.Unmarshaler.
func (l *AddrList) UnmarshalJSON(data []byte) error {
	if len(data) < 2 || data[0] != '[' || bytes.IndexByte(data, '\\') >= 0 || !ascii(data) {
		return json.Unmarshal(data, (*[]string)(l))
	}
	raw := string(data)
	out := make(AddrList, 0, strings.Count(raw, `"`)/2)
	for i := 1; i < len(raw); i++ {
		switch raw[i] {
		case ' ', '\t', '\n', '\r', ',':
		case ']':
			*l = out
			return nil
		case '"':
			j := strings.IndexByte(raw[i+1:], '"')
			if j < 0 {
				return json.Unmarshal(data, (*[]string)(l))
			}
			out = append(out, raw[i+1:i+1+j])
			i += j + 1
		default: // not a string: let encoding/json say what is wrong
			return json.Unmarshal(data, (*[]string)(l))
		}
	}
	return json.Unmarshal(data, (*[]string)(l))
}

// FerryBatchBeatRequest beats many beat-kept instances at once: Beats item
// by item, then every address of Groups. RegisterIfUnknown makes the server
// register the full items it does not know (light unknown items and group
// addresses are answered "unknown").
type FerryBatchBeatRequest struct {
	RequestHeader
	RegisterIfUnknown bool        `json:"registerIfUnknown"`
	Beats             []BeatItem  `json:"beats"`
	Groups            []BeatGroup `json:"groups,omitempty"`
}

// Len is the number of instances the request beats.
func (r *FerryBatchBeatRequest) Len() int {
	n := len(r.Beats)
	for i := range r.Groups {
		n += len(r.Groups[i].Addrs)
	}
	return n
}

// Items returns every beat of the request as BeatItems, in answer order:
// Beats, then each group address as a light item. An address that does not
// parse keeps its text in IP and Port 0 (the server answers it "invalid").
func (r *FerryBatchBeatRequest) Items() []BeatItem {
	out := make([]BeatItem, 0, r.Len())
	out = append(out, r.Beats...)
	return groupItems(out, r.Groups)
}

// groupItems appends each group address to out as a light item.
func groupItems(out []BeatItem, groups []BeatGroup) []BeatItem {
	for _, g := range groups {
		for _, a := range g.Addrs {
			ip, port := SplitBeatAddr(a)
			if port == 0 {
				ip = a
			}
			out = append(out, BeatItem{Namespace: g.Namespace, GroupName: g.GroupName, ServiceName: g.ServiceName,
				IP: ip, Port: port, Cluster: g.Cluster})
		}
	}
	return out
}

// SplitBeatAddr parses a BeatGroup address "ip:port" or "[ipv6]:port";
// port 0 means it does not parse.
func SplitBeatAddr(a string) (ip string, port int) {
	i := strings.LastIndexByte(a, ':')
	if i <= 0 || i == len(a)-1 {
		return "", 0
	}
	p, err := strconv.Atoi(a[i+1:])
	if err != nil || p < 1 || p > 65535 {
		return "", 0
	}
	ip = a[:i]
	if strings.HasPrefix(ip, "[") && strings.HasSuffix(ip, "]") {
		ip = ip[1 : len(ip)-1]
	}
	if ip == "" {
		return "", 0
	}
	return ip, p
}

// BeatAddr renders ip and port as a BeatGroup address.
func BeatAddr(ip string, port int) string {
	if strings.IndexByte(ip, ':') >= 0 {
		return "[" + ip + "]:" + strconv.Itoa(port)
	}
	return ip + ":" + strconv.Itoa(port)
}

// FerryBatchDeregisterRequest removes many beat-kept instances at once
// (Ferry's bulk deregister, part of the merged-beat extension and offered
// under the same ferryBatchBeat capability): every address of Groups, in
// order. A group's empty Cluster matches the instance whatever its cluster
// (a beat-kept publisher holds one instance per service and ip:port).
type FerryBatchDeregisterRequest struct {
	RequestHeader
	Groups []BeatGroup `json:"groups"`
}

// Len is the number of instances the request deregisters.
func (r *FerryBatchDeregisterRequest) Len() int {
	n := 0
	for i := range r.Groups {
		n += len(r.Groups[i].Addrs)
	}
	return n
}

// Items returns every address of the request as a light BeatItem, in
// answer order. An address that does not parse keeps its text in IP and
// Port 0 (the server answers it "invalid").
func (r *FerryBatchDeregisterRequest) Items() []BeatItem {
	return groupItems(make([]BeatItem, 0, r.Len()), r.Groups)
}

// FerryBatchDeregisterResponse answers FerryBatchDeregisterRequest: every
// address is "ok" (removed, or not there: Nacos answers a deregister of an
// unknown instance with success) unless listed in Exceptions, with Index
// over all group addresses in order: "redirect" (another node is
// responsible) or "invalid".
type FerryBatchDeregisterResponse struct {
	ResponseHeader
	Exceptions []BeatException `json:"exceptions,omitempty"`
}

// Answer fills Exceptions from one result per address of the request.
func (r *FerryBatchDeregisterResponse) Answer(all []BeatResult) {
	r.Exceptions = r.Exceptions[:0]
	for i, res := range all {
		if res.Status != BeatOK {
			r.Exceptions = append(r.Exceptions, BeatException{Index: i, BeatResult: res})
		}
	}
}

// All expands the answer to one result per address of req, in order; an
// error when it does not match req.
func (r *FerryBatchDeregisterResponse) All(req *FerryBatchDeregisterRequest) ([]BeatResult, error) {
	n := req.Len()
	out := make([]BeatResult, n)
	for i := range out {
		out[i].Status = BeatOK
	}
	for _, e := range r.Exceptions {
		if e.Index < 0 || e.Index >= n {
			return nil, fmt.Errorf("exception index %d out of %d addresses", e.Index, n)
		}
		out[e.Index] = e.BeatResult
	}
	return out, nil
}

// Per-item beat statuses.
const (
	BeatOK       = "ok"
	BeatUnknown  = "unknown"
	BeatRedirect = "redirect"
	BeatInvalid  = "invalid"
)

// BeatResult answers one BeatItem, in order.
type BeatResult struct {
	Status string `json:"status"`
	// Redirect is the responsible node's main HTTP "host:port" (gRPC is +1000)
	// when Status is "redirect".
	Redirect string `json:"redirect,omitempty"`
	// Message says why when Status is "invalid".
	Message string `json:"message,omitempty"`
}

// BeatException answers one group address that is not "ok". Index counts
// over the addresses of all Groups of the request, in order.
type BeatException struct {
	Index int `json:"index"`
	BeatResult
}

// FerryBatchBeatResponse answers FerryBatchBeatRequest. ClientBeatInterval is
// the interval (ms) the server expects between beats. Results answer Beats
// one by one; group addresses are "ok" unless listed in Exceptions.
type FerryBatchBeatResponse struct {
	ResponseHeader
	ClientBeatInterval int64           `json:"clientBeatInterval,omitempty"`
	Results            []BeatResult    `json:"results"`
	Exceptions         []BeatException `json:"exceptions,omitempty"`
}

// Answer fills Results and Exceptions from one result per item of req, in
// the order of req.Items.
func (r *FerryBatchBeatResponse) Answer(req *FerryBatchBeatRequest, all []BeatResult) {
	n := min(len(req.Beats), len(all))
	r.Results = append(r.Results[:0], all[:n]...)
	r.Exceptions = r.Exceptions[:0]
	for i, res := range all[n:] {
		if res.Status != BeatOK {
			r.Exceptions = append(r.Exceptions, BeatException{Index: i, BeatResult: res})
		}
	}
}

// All expands the answer to one result per item of req, in the order of
// req.Items; an error when it does not match req.
func (r *FerryBatchBeatResponse) All(req *FerryBatchBeatRequest) ([]BeatResult, error) {
	if len(r.Results) != len(req.Beats) {
		return nil, fmt.Errorf("%d results for %d beats", len(r.Results), len(req.Beats))
	}
	n := req.Len()
	out := make([]BeatResult, n)
	copy(out, r.Results)
	for i := len(r.Results); i < n; i++ {
		out[i].Status = BeatOK
	}
	for _, e := range r.Exceptions {
		if e.Index < 0 || len(r.Results)+e.Index >= n {
			return nil, fmt.Errorf("exception index %d out of %d group addresses", e.Index, n-len(r.Results))
		}
		out[len(r.Results)+e.Index] = e.BeatResult
	}
	return out, nil
}
