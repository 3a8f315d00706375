package registryserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/ferrysync/ferry/registry-server/auth"
	"github.com/ferrysync/ferry/registry-server/configsvc"
	"github.com/ferrysync/ferry/registry-server/grpcapi"
	"github.com/ferrysync/ferry/registry-server/health"
	"github.com/ferrysync/ferry/registry-server/httpapi"
	"github.com/ferrysync/ferry/registry-server/limit"
	"github.com/ferrysync/ferry/registry-server/loader"
	"github.com/ferrysync/ferry/registry-server/membership"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/registry-server/raftstore"
	"github.com/ferrysync/ferry/registry-server/udppush"
)

// Config is the whole registry server's configuration. Start from
// DefaultConfig; flags and the config file (LoadFile) map onto it.
type Config struct {
	// Bind is the host the HTTP and gRPC ports listen on.
	Bind string
	// Port is the main (HTTP open API) port; 0 picks a free one (tests).
	Port int
	// GRPCPort is the SDK gRPC port; 0 means Port+1000 (a free one when
	// Port is 0).
	GRPCPort int
	// DataDir holds the Raft store's files.
	DataDir string
	// ExpireInterval is how often beat-kept instances are checked for expiry.
	ExpireInterval time.Duration
	// ShutdownTimeout bounds Stop.
	ShutdownTimeout time.Duration
	// Naming tunes the registry core (beat timeouts, limits).
	Naming naming.Config
	// GRPC tunes the gRPC API (its Addr and MainPort are set from Bind/Port).
	GRPC grpcapi.Config
	// Raft tunes the Raft store of persistent data (Open only); its Dir is
	// DataDir/raft when empty.
	Raft raftstore.Config
	// Health tunes the TCP probe of persistent instances (Open only).
	Health health.Config
	// HTTP tunes the HTTP open API (Open only).
	HTTP httpapi.Config
	// ConfigService tunes the Nacos config service (Open only).
	ConfigService configsvc.Config
	// UDPPush tunes the UDP push to Nacos 1.x clients (Open only); its Host
	// is set from Bind.
	UDPPush udppush.Config

	// Members is the registry cluster: every member's main-port address,
	// this node included, the same list on every member (-members or
	// -members-file). Empty: one node, exactly as without clustering.
	// With members the ports follow Nacos: SDK gRPC port+1000, cluster
	// port+1001, Raft port-1000 (Open only).
	Members []string
	// Advertise is this node's address in Members (default
	// 127.0.0.1:Port); its port must be Port.
	Advertise string
	// Membership tunes member probes; its Self and Members come from
	// Advertise and Members.
	Membership membership.Config
	// Balance spreads SDK connections over the members (Open only): the
	// automatic balancer, the /nacos/v2/core/loader routes and the
	// hand-over of a stopping member's clients.
	Balance loader.Config
	// TLSCertFile and TLSKeyFile (PEM) turn TLS on for both ports
	// (tls_config.go).
	TLSCertFile string
	TLSKeyFile  string
	// Limits are the per-IP connection and request limits of both ports
	// (limit_config.go).
	Limits limit.Config
	// Auth is Nacos auth (Open only; auth_config.go). Its KeyFile is
	// DataDir/auth/token.key when empty.
	Auth auth.Config
	// AdminPassword is the password of the admin user "nacos" created at
	// the first start with auth on (FERRY_REGISTRY_ADMIN_PASSWORD; never
	// in the config file). Empty: a generated one, written once to Notice.
	AdminPassword string `json:"-"`
	// Notice receives one-time notices for the operator (the generated
	// admin password): the registry's stdout. nil discards them.
	Notice io.Writer `json:"-"`
}

// DefaultConfig is a single node on 127.0.0.1:8848 (gRPC 9848).
func DefaultConfig() Config {
	return Config{
		Bind:            "127.0.0.1",
		Port:            8848,
		DataDir:         "./data/registry",
		ExpireInterval:  time.Second,
		ShutdownTimeout: 10 * time.Second,
		Naming:          naming.DefaultConfig(),
		GRPC:            grpcapi.DefaultConfig(),
		Raft:            raftstore.DefaultConfig(),
		Health:          health.DefaultConfig(),
		HTTP:            httpapi.DefaultConfig(),
		ConfigService:   configsvc.DefaultConfig(),
		UDPPush:         udppush.DefaultConfig(),
		Membership:      membership.DefaultConfig(),
		Balance:         loader.DefaultConfig(),
		Auth:            auth.DefaultConfig(),
		Limits:          limit.DefaultConfig(),
	}
}

// Clustered reports whether the node is a member of a registry cluster.
func (c Config) Clustered() bool { return len(c.Members) > 0 }

// Self is this node's member address: Advertise, or 127.0.0.1:Port.
func (c Config) Self() string {
	if c.Advertise != "" {
		return c.Advertise
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))
}

// membershipConfig is Membership with Self and Members filled in.
func (c Config) membershipConfig() membership.Config {
	m := c.Membership
	m.Self, m.Members = c.Self(), c.Members
	return m
}

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("registryserver: invalid config")

// EffectiveGRPCPort is the gRPC port the config asks for.
func (c Config) EffectiveGRPCPort() int {
	if c.GRPCPort != 0 || c.Port == 0 {
		return c.GRPCPort
	}
	return c.Port + 1000
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Port < 0 || c.Port > 65535-1000:
		return fmt.Errorf("%w: Port %d (must leave room for Port+1000)", ErrConfig, c.Port)
	case c.GRPCPort < 0 || c.GRPCPort > 65535:
		return fmt.Errorf("%w: GRPCPort %d", ErrConfig, c.GRPCPort)
	case c.DataDir == "":
		return fmt.Errorf("%w: DataDir is empty", ErrConfig)
	case c.ExpireInterval <= 0:
		return fmt.Errorf("%w: ExpireInterval %v must be > 0", ErrConfig, c.ExpireInterval)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("%w: ShutdownTimeout %v must be > 0", ErrConfig, c.ShutdownTimeout)
	}
	if c.Clustered() {
		if err := c.validateCluster(); err != nil {
			return err
		}
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	if err := c.Balance.Validate(); err != nil {
		return fmt.Errorf("%w: Balance: %v", ErrConfig, err)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("%w: Limits: %v", ErrConfig, err)
	}
	if err := c.Auth.Validate(); err != nil {
		return fmt.Errorf("%w: Auth: %v", ErrConfig, err)
	}
	if err := c.ConfigService.Validate(); err != nil {
		return fmt.Errorf("%w: ConfigService: %v", ErrConfig, err)
	}
	if err := c.UDPPush.Validate(); err != nil {
		return fmt.Errorf("%w: UDPPush: %v", ErrConfig, err)
	}
	if err := c.Naming.Validate(); err != nil {
		return fmt.Errorf("%w: Naming: %v", ErrConfig, err)
	}
	g := c.GRPC
	g.Addr = "set-by-server"
	if err := g.Validate(); err != nil {
		return fmt.Errorf("%w: GRPC: %v", ErrConfig, err)
	}
	return nil
}

func (c Config) validateCluster() error {
	if c.Port == 0 {
		return fmt.Errorf("%w: a cluster member needs a fixed Port (its address in Members)", ErrConfig)
	}
	if c.GRPCPort != 0 && c.GRPCPort != c.Port+membership.SDKGRPCOffset {
		return fmt.Errorf("%w: GRPCPort %d: a cluster member's SDK gRPC port is Port+1000 (%d)", ErrConfig, c.GRPCPort, c.Port+membership.SDKGRPCOffset)
	}
	if c.Advertise != "" {
		_, port, err := membership.SplitAddr(c.Advertise)
		if err != nil {
			return fmt.Errorf("%w: Advertise: %v", ErrConfig, err)
		}
		if port != c.Port {
			return fmt.Errorf("%w: Advertise %s: its port must be this node's Port %d", ErrConfig, c.Advertise, c.Port)
		}
	}
	if err := c.membershipConfig().Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return nil
}

// fileConfig is the JSON config file: every field optional; durations as
// Go duration strings ("15s", "500ms").
type fileConfig struct {
	Bind            *string `json:"bind"`
	Port            *int    `json:"port"`
	GRPCPort        *int    `json:"grpcPort"`
	DataDir         *string `json:"dataDir"`
	ExpireInterval  *string `json:"expireInterval"`
	ShutdownTimeout *string `json:"shutdownTimeout"`

	BeatInterval       *string `json:"beatInterval"`
	BeatTimeout        *string `json:"beatTimeout"`
	DeleteTimeout      *string `json:"deleteTimeout"`
	EmptyServiceTTL    *string `json:"emptyServiceTTL"`
	MaxBatch           *int    `json:"maxBatch"`
	MaxNameLen         *int    `json:"maxNameLen"`
	MaxMetadataEntries *int    `json:"maxMetadataEntries"`
	MaxMetadataBytes   *int    `json:"maxMetadataBytes"`

	MaxConnections  *int    `json:"maxConnections"`
	MaxMessageBytes *int    `json:"maxMessageBytes"`
	MaxHeaderBytes  *int    `json:"maxHeaderBytes"`
	IdleTimeout     *string `json:"idleTimeout"`
	DetectTimeout   *string `json:"detectTimeout"`
	PushDelay       *string `json:"pushDelay"`
	PushTimeout     *string `json:"pushTimeout"`
	PushRetryDelay  *string `json:"pushRetryDelay"`
	FerryBatchBeat  *bool   `json:"ferryBatchBeat"`

	UDPPush           *bool    `json:"udpPush"`
	UDPPushPort       *int     `json:"udpPushPort"`
	UDPAckTimeout     *string  `json:"udpAckTimeout"`
	UDPPushRetries    *int     `json:"udpPushRetries"`
	UDPSubscriberTTL  *string  `json:"udpSubscriberTTL"`
	UDPMaxPerIP       *int     `json:"udpMaxSubscribersPerIP"`
	UDPMaxSubscribers *int     `json:"udpMaxSubscribers"`
	Members           []string `json:"members"`
	Advertise         *string  `json:"advertise"`
	ProbeInterval     *string  `json:"memberProbeInterval"`
	BalanceInterval   *string  `json:"balanceInterval"`
	BalanceFactor     *float64 `json:"balanceFactor"`
	BalanceMaxPerRnd  *int     `json:"balanceMaxPerRound"`
	authFileConfig             // auth_config.go
	limitFileConfig            // limit_config.go
	tlsFileConfig              // tls_config.go
}

// LoadFile overlays the JSON config file at path onto c. Unknown keys are
// an error (a typo must not pass silently).
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("registryserver: config file: %w", err)
	}
	return c.LoadJSON(b)
}

// LoadJSON overlays a JSON config document onto c.
func (c *Config) LoadJSON(b []byte) error {
	var f fileConfig
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("%w: config file: %v", ErrConfig, err)
	}
	setS := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setI := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	var derr error
	setD := func(dst *time.Duration, name string, v *string) {
		if v == nil || derr != nil {
			return
		}
		d, err := time.ParseDuration(*v)
		if err != nil {
			derr = fmt.Errorf("%w: config file: %s %q: %v", ErrConfig, name, *v, err)
			return
		}
		*dst = d
	}
	setS(&c.Bind, f.Bind)
	setI(&c.Port, f.Port)
	setI(&c.GRPCPort, f.GRPCPort)
	setS(&c.DataDir, f.DataDir)
	setD(&c.ExpireInterval, "expireInterval", f.ExpireInterval)
	setD(&c.ShutdownTimeout, "shutdownTimeout", f.ShutdownTimeout)
	setD(&c.Naming.BeatInterval, "beatInterval", f.BeatInterval)
	setD(&c.Naming.BeatTimeout, "beatTimeout", f.BeatTimeout)
	setD(&c.Naming.DeleteTimeout, "deleteTimeout", f.DeleteTimeout)
	setD(&c.Naming.EmptyServiceTTL, "emptyServiceTTL", f.EmptyServiceTTL)
	setI(&c.Naming.MaxBatch, f.MaxBatch)
	setI(&c.Naming.MaxNameLen, f.MaxNameLen)
	setI(&c.Naming.MaxMetadataEntries, f.MaxMetadataEntries)
	setI(&c.Naming.MaxMetadataBytes, f.MaxMetadataBytes)
	setI(&c.GRPC.MaxConnections, f.MaxConnections)
	setI(&c.GRPC.MaxMessageBytes, f.MaxMessageBytes)
	setI(&c.GRPC.MaxHeaderBytes, f.MaxHeaderBytes)
	setD(&c.GRPC.IdleTimeout, "idleTimeout", f.IdleTimeout)
	setD(&c.GRPC.DetectTimeout, "detectTimeout", f.DetectTimeout)
	setD(&c.GRPC.PushDelay, "pushDelay", f.PushDelay)
	setD(&c.GRPC.PushTimeout, "pushTimeout", f.PushTimeout)
	setD(&c.GRPC.PushRetryDelay, "pushRetryDelay", f.PushRetryDelay)
	if f.FerryBatchBeat != nil {
		c.GRPC.FerryBatchBeat = *f.FerryBatchBeat
	}
	if f.UDPPush != nil {
		c.UDPPush.Enabled = *f.UDPPush
	}
	setI(&c.UDPPush.Port, f.UDPPushPort)
	setD(&c.UDPPush.AckTimeout, "udpAckTimeout", f.UDPAckTimeout)
	setI(&c.UDPPush.Retries, f.UDPPushRetries)
	setD(&c.UDPPush.SubscriberTTL, "udpSubscriberTTL", f.UDPSubscriberTTL)
	setI(&c.UDPPush.MaxPerIP, f.UDPMaxPerIP)
	setI(&c.UDPPush.MaxSubscribers, f.UDPMaxSubscribers)
	if f.Members != nil {
		c.Members = f.Members
	}
	setS(&c.Advertise, f.Advertise)
	setD(&c.Membership.ProbeInterval, "memberProbeInterval", f.ProbeInterval)
	setD(&c.Balance.Interval, "balanceInterval", f.BalanceInterval)
	if f.BalanceFactor != nil {
		c.Balance.Factor = *f.BalanceFactor
	}
	setI(&c.Balance.MaxPerRound, f.BalanceMaxPerRnd)
	if derr != nil {
		return derr
	}
	f.limitFileConfig.apply(&c.Limits)
	f.tlsFileConfig.apply(c)
	return f.authFileConfig.apply(&c.Auth)
}
