package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"

	"github.com/ikegate/ikegate/internal/radiusd"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// The agent keeps the last model charon accepted in a file of the pod's
// shared volume (Options.StateFile, v1alpha1.AgentStateFile), so that an
// agent or charon container restarting while the API server is unreachable
// serves the gateway's last configuration instead of nothing: the informer
// cache of a new agent cannot sync then, and a new charon holds nothing.
//
// The file holds what charon's and the agent's memory hold: tunnel PSKs,
// the gateway's private key and the users the agent's RADIUS server
// checks logins against (identities, NT hashes, policies), so that an agent
// restarted offline answers logins too. It is written 0600 into the pod's
// memory-backed emptyDir, which only the pod's containers mount and which
// goes with the pod; it adds no reader that charon's VICI socket beside it
// does not already have.

// savedVersion is the layout of the state file; a file of another layout
// is ignored rather than misread. Layout 1 held no RADIUS users; layout 2
// had no journal (persist_journal.go), and an agent of that layout would
// serve users a journal removed.
const savedVersion = 3

// savedConfig is the state file's content.
type savedConfig struct {
	Version int `json:"version"`
	// Generation is the VPNGateway's generation the model was built from,
	// for the log.
	Generation int64       `json:"generation"`
	Model      swan.Model  `json:"model"`
	RADIUS     savedRADIUS `json:"radius"`
}

// savedRADIUS is what the agent serves beside charon's model: its RADIUS
// server's users (what serveUsers puts in the map) and what syncRADIUS
// writes into charon's servers file.
type savedRADIUS struct {
	Users   map[string]radiusd.User `json:"users,omitempty"`
	Agent   bool                    `json:"agent,omitempty"`
	On      bool                    `json:"on,omitempty"`
	Servers []swan.RADIUSServer     `json:"servers,omitempty"`
}

// SavedConfig is what an agent saved: the model charon held and the users
// its RADIUS server served.
type SavedConfig struct {
	Model      swan.Model
	Generation int64
	// Users are the RADIUS server's users by identity.
	Users map[string]radiusd.User
}

func savedRADIUSOf(res *swan.Result, users map[string]radiusd.User) savedRADIUS {
	return savedRADIUS{Users: users, Agent: res.AgentRADIUS, On: res.RADIUSOn, Servers: res.RADIUS}
}

// result is the part of a Build's result that serveSavedUntil serves again.
func (r savedRADIUS) result(m swan.Model) *swan.Result {
	return &swan.Result{Model: m, AgentRADIUS: r.Agent, RADIUSOn: r.On, RADIUS: r.Servers}
}

// DefaultOfflineAfter is how long an agent waits for the API server at
// start before it serves the saved configuration.
const DefaultOfflineAfter = 5 * time.Second

// offlineInterval is how often an agent serving its saved configuration
// applies it again: the applier sends nothing unless charon restarted.
const offlineInterval = time.Second

// stateFile writes the last applied model and served users, skipping
// writes of unchanged ones; only the apply loop uses it.
type stateFile struct {
	path string
	sum  [sha256.Size]byte
	// journal is open, with records written, from the first change of
	// single users after a whole write; broken after a failed append,
	// until the next whole write.
	journal *os.File
	records int
	broken  bool
}

// save replaces the file atomically (write, sync, rename), so that a crash
// mid-write leaves the previous configuration rather than half of one.
func (f *stateFile) save(m swan.Model, generation int64, radius savedRADIUS) error {
	if f.path == "" {
		return nil
	}
	data, err := json.Marshal(savedConfig{Version: savedVersion, Generation: generation, Model: m, RADIUS: radius})
	if err != nil {
		return fmt.Errorf("encoding the configuration to save: %w", err)
	}
	sum := sha256.Sum256(data)
	if sum == f.sum {
		// The journal's changes are in what the file holds, or undone.
		return f.dropJournal()
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), "."+filepath.Base(f.path)+"-*")
	if err != nil {
		return fmt.Errorf("saving the applied configuration: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp opens 0600 already; Chmod says so where it matters.
	_, err = tmp.Write(data)
	err = errors.Join(err, tmp.Chmod(0o600), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err != nil {
		return fmt.Errorf("saving the applied configuration to %s: %w", f.path, err)
	}
	f.sum = sum
	return f.dropJournal()
}

// LoadSavedConfig reads the model an agent saved in path and the
// VPNGateway generation it came from. A missing file is os.ErrNotExist.
func LoadSavedConfig(path string) (swan.Model, int64, error) {
	c, err := loadSaved(path)
	return c.Model, c.Generation, err
}

// LoadSaved reads what an agent saved in path.
func LoadSaved(path string) (SavedConfig, error) {
	c, err := loadSaved(path)
	return SavedConfig{Model: c.Model, Generation: c.Generation, Users: c.RADIUS.Users}, err
}

func loadSaved(path string) (savedConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return savedConfig{}, err
	}
	var c savedConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return savedConfig{}, fmt.Errorf("reading the saved configuration %s: %w", path, err)
	}
	if c.Version != savedVersion {
		return savedConfig{}, fmt.Errorf("saved configuration %s has layout %d, this agent reads %d", path, c.Version, savedVersion)
	}
	c.RADIUS.Users = replayJournal(path, sha256.Sum256(data), c.RADIUS.Users)
	return c, nil
}

// serveSavedUntil waits for synced (the informer caches). If they have
// not synced within OfflineAfter, the API server is taken to be
// unreachable and the saved configuration, if any, is served: its users by
// the RADIUS server, its model applied to charon, and applied
// again every offlineInterval so that a charon restarting meanwhile gets it
// too, until the caches sync and the apply loop takes over.
func (a *Agent) serveSavedUntil(ctx context.Context, synced <-chan error) error {
	log := logr.FromContextOrDiscard(ctx)
	wait := time.NewTimer(a.opts.OfflineAfter)
	defer wait.Stop()
	select {
	case err := <-synced:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-wait.C:
	}
	if a.opts.StateFile == "" {
		return <-synced
	}
	c, err := loadSaved(a.opts.StateFile)
	if err != nil {
		log.Info("API server unreachable and no saved configuration to serve; waiting", "error", err.Error())
		return <-synced
	}
	m, res := c.Model, c.RADIUS.result(c.Model)
	// Before charon's configuration, as in sync: no login reaches a
	// server that does not know its user yet.
	a.serveMap(c.RADIUS.Users)
	log.Info("API server unreachable; serving the saved configuration until it answers", "generation", c.Generation, "users", len(c.RADIUS.Users))
	tick := time.NewTicker(offlineInterval)
	defer tick.Stop()
	for {
		applied, err := a.applyModel(ctx, m)
		// The servers file names this process's server (its port and
		// secret are new), and a restarted charon must re-read it.
		radiusErr := a.syncRADIUS(ctx, res)
		if radiusErr != nil && !errors.Is(radiusErr, vici.ErrUnavailable) {
			log.Error(radiusErr, "Serving the saved RADIUS servers failed")
		}
		a.updateReadiness(ctx, m, applied, err, radiusErr)
		select {
		case err := <-synced:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
