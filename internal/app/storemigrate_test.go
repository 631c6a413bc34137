package app

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/store"
)

func TestMigrateStore(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	getenv := func(k string) string {
		if k == store.KeyEnv {
			return "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
		}
		return ""
	}
	cfg := &config.Config{Store: "sqlite:" + filepath.Join(dir, "src.db")}
	src, err := OpenStore(ctx, cfg, getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.SetAdmin(ctx, "root", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if err := src.InstanceBeat(ctx, "serve-1"); err != nil {
		t.Fatal(err)
	}
	to := "sqlite:" + filepath.Join(dir, "dst.db")
	if _, err := MigrateStore(ctx, cfg, to, false, getenv, nil); !errors.Is(err, ErrServeRunning) {
		t.Fatalf("MigrateStore while a serve heartbeats = %v, want ErrServeRunning", err)
	}
	if err := src.ForgetInstance(ctx, "serve-1"); err != nil {
		t.Fatal(err)
	}
	src.Close()
	if _, err := MigrateStore(ctx, cfg, cfg.Store, false, getenv, nil); err == nil {
		t.Fatal("MigrateStore into the configured store succeeded")
	}
	counts, err := MigrateStore(ctx, cfg, to, false, getenv, nil)
	if err != nil {
		t.Fatalf("MigrateStore: %v", err)
	}
	admins := -1
	for _, c := range counts {
		if c.Table == "admins" {
			admins = int(c.Rows)
		}
	}
	if admins != 1 {
		t.Errorf("MigrateStore copied %d admins, want 1 (%v)", admins, counts)
	}
	dst, err := OpenStore(context.Background(), &config.Config{Store: to}, getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := dst.CheckAdmin(ctx, "root", "correct horse battery"); err != nil {
		t.Errorf("CheckAdmin in the target: %v", err)
	}
	if _, err := MigrateStore(ctx, cfg, to, false, getenv, nil); !errors.Is(err, store.ErrTargetNotEmpty) {
		t.Errorf("MigrateStore into the full target = %v, want ErrTargetNotEmpty", err)
	}
}
