package registryserver

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registry-server/httpapi"
	"github.com/ferrysync/ferry/registry-server/udppush"
)

// openUDPPush builds the node's UDP push to Nacos 1.x clients: its socket
// binds the node's host, its subscribers come from the HTTP API's
// instance-list polls, and it pushes when the gRPC API's merged push of a
// service runs (the same change notification and push delay). In a
// cluster each node pushes to the clients that poll it.
func (s *Server) openUDPPush(cfg Config, logger *slog.Logger, prom prometheus.Registerer) (*udppush.Service, error) {
	ucfg := cfg.UDPPush
	ucfg.Host = cfg.Bind
	up, err := udppush.New(ucfg, udppush.Deps{Naming: s.reg, Render: httpapi.ServiceInfoJSON},
		logger.With("subsystem", "udppush"), prom)
	if err != nil {
		return nil, err
	}
	s.grpc.OnServicePush(up.ServicePushed)
	s.udp = up
	return up, nil
}

// UDPPush is the node's UDP push to Nacos 1.x clients (nil for a node
// built with New).
func (s *Server) UDPPush() *udppush.Service { return s.udp }
