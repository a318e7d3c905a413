package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/go-logr/logr"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// radiusFile is the file the agent writes in Options.RADIUSDir; it matches
// v1alpha1.RADIUSServersInclude.
const radiusFile = "servers.conf"

// radiusState is what the apply loop knows of charon's eap-radius servers.
type radiusState struct {
	// pending is set while the file holds servers charon has not re-read.
	pending bool
	// epoch is the VICI connection epoch of the last reload-settings.
	epoch uint64
	// wanted is set while the file names servers, servers their names.
	wanted  bool
	servers []string
}

// syncRADIUS keeps the eap-radius servers file current: an EAPRADIUS
// gateway's servers, the agent's own server for an EAPMSCHAPv2 gateway,
// absent for other gateways; and has charon re-read its
// settings when the file changed, or when the servers are wanted and charon
// may not have read them: a charon that started before the first write, or
// restarted since the last reload. The file holds the shared secrets, so
// neither its content nor a value from it is ever logged.
func (a *Agent) syncRADIUS(ctx context.Context, res *swan.Result) error {
	if a.opts.RADIUSDir == "" {
		return nil
	}
	servers := res.RADIUS
	if res.AgentRADIUS && a.local != nil {
		servers = []swan.RADIUSServer{a.local.config()}
	}
	var want []byte
	if res.RADIUSOn || res.AgentRADIUS {
		// Servers whose secret went away must go too: an empty list, not
		// the last one written.
		want = []byte(swan.RenderRADIUSServers(servers))
	}
	changed, err := writeIfChanged(filepath.Join(a.opts.RADIUSDir, radiusFile), want)
	if err != nil {
		return fmt.Errorf("writing the RADIUS servers file: %w", err)
	}
	if changed {
		a.radius.pending = true
	}
	a.radius.wanted = want != nil
	a.radius.servers = make([]string, len(servers))
	for i, s := range servers {
		a.radius.servers[i] = s.Name
	}
	return a.reloadRADIUS(ctx, changed)
}

// reloadRADIUS has charon re-read its settings when the servers file
// changed since it last did, or when servers are wanted and charon's socket
// is another than at the last reload (charon may have restarted since).
func (a *Agent) reloadRADIUS(ctx context.Context, changed bool) error {
	if a.opts.RADIUSDir == "" {
		return nil
	}
	epoch, err := a.opts.VICI.Connect(ctx)
	if err != nil {
		return err
	}
	if a.radius.wanted && epoch != a.radius.epoch {
		a.radius.pending = true
	}
	if !a.radius.pending {
		return nil
	}
	if err := vici.ReloadSettings(ctx, a.opts.VICI); err != nil {
		return fmt.Errorf("charon re-reading its settings for the RADIUS servers: %w", err)
	}
	a.radius.pending, a.radius.epoch = false, epoch
	logr.FromContextOrDiscard(ctx).Info("charon re-read its RADIUS servers", "servers", a.radius.servers, "fileChanged", changed)
	return nil
}

// The RADIUS directory and its file are readable by the group they get
// from the shared volume (the pod's fsGroup, through the volume's setgid
// bit), and by nobody else: charon runs without CAP_DAC_OVERRIDE and the
// agent as another user, so the group is how charon reads the shared
// secrets the file holds.
const (
	radiusDirMode  = 0o750
	radiusFileMode = 0o640
)

// writeIfChanged makes the file at path hold content, or removes it when
// content is nil, and reports whether that changed anything. A new content
// is written to a temporary file (radiusFileMode, in the same directory,
// named so that no include glob matches it) and renamed over the old one,
// so charon never reads half a file.
func writeIfChanged(path string, content []byte) (bool, error) {
	old, err := os.ReadFile(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if content == nil {
		if !exists {
			return false, nil
		}
		return true, os.Remove(path)
	}
	if exists && bytes.Equal(old, content) {
		return false, nil
	}
	// Only the file's own directory is made, never the volume it lives in:
	// a volume that went away (a pod being torn down) must not be made
	// again under its mount point.
	dir := filepath.Dir(path)
	if err := os.Mkdir(dir, radiusDirMode); err != nil && !errors.Is(err, os.ErrExist) {
		return false, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(radiusFileMode); err != nil {
		tmp.Close()
		return false, err
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, err
	}
	return true, nil
}
