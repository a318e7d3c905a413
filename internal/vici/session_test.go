package vici_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/vici"
)

func TestClientWithoutCharonIsUnavailable(t *testing.T) {
	c := vici.NewClient(filepath.Join(t.TempDir(), "charon.vici"))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx); !errors.Is(err, vici.ErrUnavailable) {
		t.Errorf("Connect = %v, want ErrUnavailable", err)
	}
	if _, err := c.Call(ctx, "version", nil); !errors.Is(err, vici.ErrUnavailable) {
		t.Errorf("Call = %v, want ErrUnavailable", err)
	}
	if _, err := c.Stream(ctx, "list-sas", "list-sa", nil); !errors.Is(err, vici.ErrUnavailable) {
		t.Errorf("Stream = %v, want ErrUnavailable", err)
	}
	if _, err := c.Subscribe(ctx, "ike-updown"); !errors.Is(err, vici.ErrUnavailable) {
		t.Errorf("Subscribe = %v, want ErrUnavailable", err)
	}
	if _, err := vici.NewApplier(c).Apply(ctx, testModel(t, "alice")); !errors.Is(err, vici.ErrUnavailable) {
		t.Errorf("Apply = %v, want ErrUnavailable", err)
	}
}
