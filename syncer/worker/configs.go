package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/syncer"
	"github.com/ferrysync/ferry/wire"
)

// clientConfigs is the target's config service through the shared registry
// client (syncer.Configs): the engines copy Dubbo 3 mappings with it.
type clientConfigs struct{ c *registryclient.Client }

// noConfigService marks the answer of a target without config handlers
// (ErrorResponse 302 NO_HANDLER) as syncer.ErrNoConfigService.
func noConfigService(err error) error {
	var se *registryclient.ServerError
	if errors.As(err, &se) && se.Code == wire.CodeNoHandler {
		return fmt.Errorf("%w: %w", syncer.ErrNoConfigService, err)
	}
	return err
}

func configRef(r syncer.ConfigRef) registryclient.ConfigRef {
	return registryclient.ConfigRef{Namespace: r.Namespace, Group: r.Group, DataID: r.DataID}
}

// GetConfig implements syncer.Configs.
func (k clientConfigs) GetConfig(ctx context.Context, r syncer.ConfigRef) (string, bool, error) {
	content, found, err := k.c.GetConfig(ctx, configRef(r))
	return content, found, noConfigService(err)
}

// PublishConfig implements syncer.Configs.
func (k clientConfigs) PublishConfig(ctx context.Context, r syncer.ConfigRef, content string) error {
	return noConfigService(k.c.PublishConfig(ctx, configRef(r), content))
}

// RemoveConfig implements syncer.Configs.
func (k clientConfigs) RemoveConfig(ctx context.Context, r syncer.ConfigRef) error {
	return noConfigService(k.c.RemoveConfig(ctx, configRef(r)))
}
