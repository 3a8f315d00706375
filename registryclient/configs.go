package registryclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferrysync/ferry/wire"
)

// ConfigRef names one config in the target's config service. Namespace ""
// is the client's default namespace ("public" is sent as the tenant "", as
// the Nacos SDKs do).
type ConfigRef struct {
	Namespace string
	Group     string
	DataID    string
}

func (c *Client) configHeader(r ConfigRef) (wire.ConfigHeader, error) {
	if r.Group == "" || r.DataID == "" {
		return wire.ConfigHeader{}, fmt.Errorf("%w: config group and dataId must be set", ErrInvalidInput)
	}
	ns := r.Namespace
	if ns == "" {
		ns = c.cfg.Namespace
	}
	if ns == "public" {
		ns = ""
	}
	return wire.ConfigHeader{Group: r.Group, DataID: r.DataID, Tenant: ns}, nil
}

// GetConfig reads a config (ConfigQueryRequest); found is false when the
// config does not exist.
func (c *Client) GetConfig(ctx context.Context, r ConfigRef) (content string, found bool, err error) {
	h, err := c.configHeader(r)
	if err != nil {
		return "", false, err
	}
	resp, err := c.request(ctx, &wire.ConfigQueryRequest{ConfigHeader: h})
	var se *ServerError
	if errors.As(err, &se) && se.Code == wire.CodeConfigNotFound {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	q, ok := resp.(*wire.ConfigQueryResponse)
	if !ok {
		return "", false, fmt.Errorf("%w: ConfigQueryRequest answered with %s", ErrProtocol, resp.TypeName())
	}
	return q.Content, true, nil
}

// PublishConfig creates or replaces a config (ConfigPublishRequest).
func (c *Client) PublishConfig(ctx context.Context, r ConfigRef, content string) error {
	h, err := c.configHeader(r)
	if err != nil {
		return err
	}
	if content == "" {
		return fmt.Errorf("%w: empty config content", ErrInvalidInput)
	}
	_, err = c.request(ctx, &wire.ConfigPublishRequest{ConfigHeader: h, Content: content})
	return err
}

// RemoveConfig deletes a config (ConfigRemoveRequest); removing a missing
// config succeeds.
func (c *Client) RemoveConfig(ctx context.Context, r ConfigRef) error {
	h, err := c.configHeader(r)
	if err != nil {
		return err
	}
	_, err = c.request(ctx, &wire.ConfigRemoveRequest{ConfigHeader: h})
	return err
}
