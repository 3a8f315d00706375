package wire

import "encoding/json"

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
// FerryBatchBeatRequest.
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
}

// NotifySubscriberRequest pushes a service's state (server → client).
type NotifySubscriberRequest struct {
	NamingHeader
	ServiceInfo ServiceInfo `json:"serviceInfo"`
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

// FerryBatchBeatRequest beats many beat-kept instances at once.
// RegisterIfUnknown makes the server register the full items it does not
// know (light unknown items are answered "unknown").
type FerryBatchBeatRequest struct {
	RequestHeader
	RegisterIfUnknown bool       `json:"registerIfUnknown"`
	Beats             []BeatItem `json:"beats"`
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

// FerryBatchBeatResponse answers FerryBatchBeatRequest. ClientBeatInterval is
// the interval (ms) the server expects between beats.
type FerryBatchBeatResponse struct {
	ResponseHeader
	ClientBeatInterval int64        `json:"clientBeatInterval,omitempty"`
	Results            []BeatResult `json:"results"`
}
