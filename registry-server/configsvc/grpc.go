package configsvc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferrysync/ferry/registry-server/grpcapi"
	"github.com/ferrysync/ferry/wire"
)

// ServeGRPC plugs the config requests into the gRPC API (on the naming
// module's connections; clients label theirs module=config), pushes
// ConfigChangeNotifyRequest through it, and drops a connection's listeners
// when it ends. Call before either is started.
func (s *Service) ServeGRPC(g *grpcapi.Server) {
	g.Handle(wire.TypeConfigQueryRequest, nil, s.handleQuery)
	g.Handle(wire.TypeConfigPublishRequest, nil, s.handlePublish)
	g.Handle(wire.TypeConfigRemoveRequest, nil, s.handleRemove)
	g.Handle(wire.TypeConfigBatchListenRequest, nil, s.handleBatchListen)
	g.OnClose(s.DropConn)
	s.pusher = grpcPusher{g: g, timeout: s.cfg.PushTimeout}
}

func keyOf(h *wire.ConfigHeader) Key {
	return Key{Tenant: h.Tenant, Group: h.Group, DataID: h.DataID}
}

// codeOf is the Nacos errorCode of a config error.
func codeOf(err error) int {
	switch {
	case errors.Is(err, ErrInvalidParam):
		return wire.CodeInvalidParam
	case errors.Is(err, ErrNotFound):
		return wire.CodeConfigNotFound
	}
	return wire.CodeServerError
}

func (s *Service) handleQuery(_ context.Context, _ *grpcapi.Conn, r wire.Request) (wire.Response, error) {
	req := r.(*wire.ConfigQueryRequest)
	resp := &wire.ConfigQueryResponse{}
	it, err := s.Get(keyOf(&req.ConfigHeader))
	if err != nil {
		// Not found is errorCode 300 with resultCode 500, as Nacos'
		// ConfigQueryRequestHandler answers; the SDK reads it as empty.
		msg := err.Error()
		if errors.Is(err, ErrNotFound) {
			msg = "config data not exist"
		}
		resp.SetError(codeOf(err), msg)
		return resp, nil
	}
	resp.ResponseHeader = wire.Okay()
	resp.Content, resp.MD5, resp.LastModified, resp.ContentType = it.Content, it.MD5, it.LastModified, it.Type
	return resp, nil
}

func (s *Service) handlePublish(_ context.Context, _ *grpcapi.Conn, r wire.Request) (wire.Response, error) {
	req := r.(*wire.ConfigPublishRequest)
	resp := &wire.ConfigPublishResponse{}
	err := s.Publish(keyOf(&req.ConfigHeader), req.Content, req.AdditionMap["type"], req.CasMD5)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, ErrCASMismatch) {
			msg = "Cas publish fail, server md5 may have changed."
		}
		resp.SetError(codeOf(err), msg)
	}
	return resp, nil
}

func (s *Service) handleRemove(_ context.Context, _ *grpcapi.Conn, r wire.Request) (wire.Response, error) {
	req := r.(*wire.ConfigRemoveRequest)
	resp := &wire.ConfigRemoveResponse{}
	if err := s.Remove(keyOf(&req.ConfigHeader)); err != nil {
		resp.SetError(codeOf(err), err.Error())
	}
	return resp, nil
}

func (s *Service) handleBatchListen(_ context.Context, c *grpcapi.Conn, r wire.Request) (wire.Response, error) {
	req := r.(*wire.ConfigBatchListenRequest)
	resp := &wire.ConfigChangeBatchListenResponse{ChangedConfigs: []wire.ConfigContext{}}
	if !req.Listen {
		keys := make([]Key, 0, len(req.ConfigListenContexts))
		for _, lc := range req.ConfigListenContexts {
			keys = append(keys, Key{Tenant: lc.Tenant, Group: lc.Group, DataID: lc.DataID})
		}
		s.Unlisten(c.ID, keys)
		return resp, nil
	}
	ctxs := make([]ListenContext, 0, len(req.ConfigListenContexts))
	for _, lc := range req.ConfigListenContexts {
		ctxs = append(ctxs, ListenContext{Key: Key{Tenant: lc.Tenant, Group: lc.Group, DataID: lc.DataID}, MD5: lc.MD5})
	}
	// The changed configs are named as the client named them (its tenant
	// may be "public").
	changed := map[Key]bool{}
	for _, k := range s.Listen(c.ID, ctxs) {
		changed[k] = true
	}
	for _, lc := range req.ConfigListenContexts {
		if changed[normKey(Key{Tenant: lc.Tenant, Group: lc.Group, DataID: lc.DataID})] {
			resp.ChangedConfigs = append(resp.ChangedConfigs, wire.ConfigContext{Group: lc.Group, DataID: lc.DataID, Tenant: lc.Tenant})
		}
	}
	return resp, nil
}

// grpcPusher pushes through the gRPC API's bi-streams.
type grpcPusher struct {
	g       *grpcapi.Server
	timeout time.Duration
}

func (p grpcPusher) PushChange(ctx context.Context, k Key, connIDs []string) []PushOutcome {
	req := &wire.ConfigChangeNotifyRequest{}
	req.Group, req.DataID, req.Tenant = k.Group, k.DataID, k.Tenant
	res := p.g.PushAll(ctx, connIDs, req, p.timeout)
	out := make([]PushOutcome, len(res))
	for i, r := range res {
		out[i] = PushOutcome{Err: pushErr(r.Err), At: r.At}
	}
	return out
}

// pushErr maps the gRPC API's push errors onto the Pusher's.
func pushErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, grpcapi.ErrNotConnected), errors.Is(err, grpcapi.ErrStopped):
		return fmt.Errorf("%w: %v", ErrGone, err)
	case errors.Is(err, grpcapi.ErrBusy):
		return fmt.Errorf("%w: %v", ErrPushBusy, err)
	case errors.Is(err, grpcapi.ErrTimeout):
		return fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	}
	return err
}
