package registryserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ferrysync/ferry/registry-server/configsvc"
	"github.com/ferrysync/ferry/registry-server/grpcapi"
	"github.com/ferrysync/ferry/registry-server/health"
	"github.com/ferrysync/ferry/registry-server/httpapi"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/registry-server/raftstore"
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
	}
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
	if err := c.ConfigService.Validate(); err != nil {
		return fmt.Errorf("%w: ConfigService: %v", ErrConfig, err)
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
	return derr
}
