package wire

// The config module's messages (com.alibaba.nacos.api.config.remote.request
// and .response), as JSON. Names and fields are those of Nacos 2.x and of
// nacos-sdk-go/v2 (common/remote/rpc/rpc_request/config_request.go,
// rpc_response/config_response.go); where the two differ, the Go SDK's
// decoding wins (ConfigQueryResponse.tag is a bool there, a string in Java:
// it is never sent).

// ModuleConfig is the "module" of config requests.
const ModuleConfig = "config"

// Config type names (Metadata.type).
const (
	TypeConfigQueryRequest              = "ConfigQueryRequest"
	TypeConfigQueryResponse             = "ConfigQueryResponse"
	TypeConfigPublishRequest            = "ConfigPublishRequest"
	TypeConfigPublishResponse           = "ConfigPublishResponse"
	TypeConfigRemoveRequest             = "ConfigRemoveRequest"
	TypeConfigRemoveResponse            = "ConfigRemoveResponse"
	TypeConfigBatchListenRequest        = "ConfigBatchListenRequest"
	TypeConfigChangeBatchListenResponse = "ConfigChangeBatchListenResponse"
	TypeConfigChangeNotifyRequest       = "ConfigChangeNotifyRequest"
	TypeConfigChangeNotifyResponse      = "ConfigChangeNotifyResponse"
)

// Config error codes (ConfigQueryResponse.CONFIG_NOT_FOUND and
// CONFIG_QUERY_CONFLICT), carried in errorCode with resultCode 500. The Go
// SDK reads 300 as "no such config" (an empty config, not an error).
const (
	CodeConfigNotFound      = 300
	CodeConfigQueryConflict = 400
)

// ConfigHeader is AbstractConfigRequest: the target config. Tenant is the
// namespace id ("" is the public namespace).
type ConfigHeader struct {
	RequestHeader
	Group  string `json:"group"`
	DataID string `json:"dataId"`
	Tenant string `json:"tenant"`
}

func (*ConfigHeader) configModule() {}

// configMessage marks config requests (their module is "config").
type configMessage interface{ configModule() }

// ConfigQueryRequest reads one config.
type ConfigQueryRequest struct {
	ConfigHeader
	Tag string `json:"tag,omitempty"`
}

// ConfigQueryResponse answers ConfigQueryRequest. A missing config is this
// response with resultCode 500 and errorCode CodeConfigNotFound.
type ConfigQueryResponse struct {
	ResponseHeader
	Content          string `json:"content"`
	EncryptedDataKey string `json:"encryptedDataKey"`
	ContentType      string `json:"contentType"`
	MD5              string `json:"md5"`
	LastModified     int64  `json:"lastModified"`
	IsBeta           bool   `json:"isBeta"`
}

// ConfigPublishRequest creates or replaces a config; a non-empty CasMD5
// makes it a compare-and-set against the stored md5. AdditionMap carries
// "type" (and tags, appName, ... which Ferry ignores).
type ConfigPublishRequest struct {
	ConfigHeader
	Content     string            `json:"content"`
	CasMD5      string            `json:"casMd5"`
	AdditionMap map[string]string `json:"additionMap,omitempty"`
}

// ConfigPublishResponse answers ConfigPublishRequest.
type ConfigPublishResponse struct{ ResponseHeader }

// ConfigRemoveRequest deletes a config.
type ConfigRemoveRequest struct {
	ConfigHeader
	Tag string `json:"tag,omitempty"`
}

// ConfigRemoveResponse answers ConfigRemoveRequest.
type ConfigRemoveResponse struct{ ResponseHeader }

// ConfigListenContext is one config a client listens to, with the md5 it
// holds ("" when it holds none).
type ConfigListenContext struct {
	Group  string `json:"group"`
	MD5    string `json:"md5"`
	DataID string `json:"dataId"`
	Tenant string `json:"tenant"`
}

// ConfigContext names one config.
type ConfigContext struct {
	Group  string `json:"group"`
	DataID string `json:"dataId"`
	Tenant string `json:"tenant"`
}

// ConfigBatchListenRequest adds (Listen) or removes listeners for a batch
// of configs on the sending connection.
type ConfigBatchListenRequest struct {
	ConfigHeader
	Listen               bool                  `json:"listen"`
	ConfigListenContexts []ConfigListenContext `json:"configListenContexts"`
}

// ConfigChangeBatchListenResponse lists the listened configs whose md5
// already differs from the client's. ChangedConfigs is never null.
type ConfigChangeBatchListenResponse struct {
	ResponseHeader
	ChangedConfigs []ConfigContext `json:"changedConfigs"`
}

// ConfigChangeNotifyRequest is the server push telling a listening
// connection that a config changed (the client then queries it).
type ConfigChangeNotifyRequest struct{ ConfigHeader }

// ConfigChangeNotifyResponse is the Java client's ack of the push (the Go
// SDK v2.3.5 acks with NotifySubscriberResponse instead, or not at all when
// it no longer holds the config).
type ConfigChangeNotifyResponse struct{ ResponseHeader }

func (*ConfigQueryRequest) TypeName() string         { return TypeConfigQueryRequest }
func (*ConfigQueryResponse) TypeName() string        { return TypeConfigQueryResponse }
func (*ConfigPublishRequest) TypeName() string       { return TypeConfigPublishRequest }
func (*ConfigPublishResponse) TypeName() string      { return TypeConfigPublishResponse }
func (*ConfigRemoveRequest) TypeName() string        { return TypeConfigRemoveRequest }
func (*ConfigRemoveResponse) TypeName() string       { return TypeConfigRemoveResponse }
func (*ConfigBatchListenRequest) TypeName() string   { return TypeConfigBatchListenRequest }
func (*ConfigChangeNotifyRequest) TypeName() string  { return TypeConfigChangeNotifyRequest }
func (*ConfigChangeNotifyResponse) TypeName() string { return TypeConfigChangeNotifyResponse }
func (*ConfigChangeBatchListenResponse) TypeName() string {
	return TypeConfigChangeBatchListenResponse
}

// newConfig is New for the config module's type names.
func newConfig(typeName string) (Message, bool) {
	switch typeName {
	case TypeConfigQueryRequest:
		return &ConfigQueryRequest{}, true
	case TypeConfigQueryResponse:
		return &ConfigQueryResponse{}, true
	case TypeConfigPublishRequest:
		return &ConfigPublishRequest{}, true
	case TypeConfigPublishResponse:
		return &ConfigPublishResponse{}, true
	case TypeConfigRemoveRequest:
		return &ConfigRemoveRequest{}, true
	case TypeConfigRemoveResponse:
		return &ConfigRemoveResponse{}, true
	case TypeConfigBatchListenRequest:
		return &ConfigBatchListenRequest{}, true
	case TypeConfigChangeBatchListenResponse:
		return &ConfigChangeBatchListenResponse{}, true
	case TypeConfigChangeNotifyRequest:
		return &ConfigChangeNotifyRequest{}, true
	case TypeConfigChangeNotifyResponse:
		return &ConfigChangeNotifyResponse{}, true
	}
	return nil, false
}
