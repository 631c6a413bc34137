package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/store"
)

// MigrateStore copies the configured store into the store at dsn
// (`mailgate store migrate --to`), opened with the same key: sealed values
// are copied as they are. A target holding rows is refused unless force
// (store.ErrTargetNotEmpty). It returns the rows copied per table.
func MigrateStore(ctx context.Context, cfg *config.Config, dsn string, force bool, getenv func(string) string, log *slog.Logger) ([]store.TableCount, error) {
	if dsn == cfg.Store {
		return nil, errors.New("the target is the configured store")
	}
	key, err := store.LoadKey(cfg.KeyFile, getenv)
	if err != nil {
		return nil, err
	}
	src, err := store.Open(ctx, cfg.Store, &store.Options{Key: key, Logger: log})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if running, err := src.ServeRunning(ctx, leaseTTL(cfg)); err != nil {
		return nil, err
	} else if running {
		return nil, ErrServeRunning
	}
	dst, err := store.Open(ctx, dsn, &store.Options{Key: key, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open the target: %w", err)
	}
	defer dst.Close()
	return store.Copy(ctx, src, dst, store.CopyOptions{Force: force})
}
