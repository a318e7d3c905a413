package vici

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	govici "github.com/strongswan/govici/vici"

	"github.com/ikegate/ikegate/internal/swan"
)

// Applier makes charon hold a model, sending only what changed since the
// last Apply. It remembers a digest of every item it loaded because charon
// never gives secret material back; the first Apply after the applier was
// created or after charon's socket was re-dialled re-reads what charon holds
// and reloads items whose content it cannot vouch for. Reloading is safe for
// established SAs: load-conn of an existing name replaces the configuration
// without touching IKE_SAs that use it, load-shared replaces the secret of the
// same id, and load-pool of an unchanged range keeps its leases.
type Applier struct {
	s Session

	mu      sync.Mutex
	epoch   uint64
	synced  bool
	st      *state
	secrets secretCache
	gen     uint64
}

// NewApplier returns an Applier writing to s.
func NewApplier(s Session) *Applier {
	return &Applier{s: s, st: newState(), secrets: secretCache{}}
}

// Result says what one Apply did.
type Result struct {
	// Synced is set when Apply re-read charon's inventory first: on the
	// first Apply and after charon's socket had to be dialled again.
	Synced bool
	// Ops are the writes that succeeded, in the order they were sent.
	Ops []Op
	// Failed are the items left as they were: ones whose message could not
	// be built or sent, and writes charon refused. Each failed alone; the
	// rest of the plan ran, unless charon became unreachable: the writes not
	// sent then are not listed.
	Failed []Failure
	// Duration is the wall time of the Apply.
	Duration time.Duration
}

// Failure is one item Apply could not bring into the state of the model.
type Failure struct {
	Ref Ref
	// Err names the item, never its secret.
	Err error
}

// Apply makes charon hold m. It keeps going past items that cannot be sent
// and items charon refuses, and returns every failure joined (and listed in
// Result.Failed); each error names its item, never its secret.
func (a *Applier) Apply(ctx context.Context, m swan.Model) (Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	start := time.Now()
	log := logr.FromContextOrDiscard(ctx)

	var res Result
	epoch, err := a.s.Connect(ctx)
	if err != nil {
		return res, err
	}
	if !a.synced || epoch != a.epoch {
		inv, err := ReadInventory(ctx, a.s)
		if err != nil {
			return res, err
		}
		a.st = syncState(a.st, inv)
		a.epoch, a.synced, res.Synced = epoch, true, true
		log.V(1).Info("Read charon inventory", "conns", len(inv.Conns), "pools", len(inv.Pools),
			"secrets", len(inv.Shared), "keys", len(inv.Keys), "certs", len(inv.Certs), "authorities", len(inv.Authorities))
	}

	a.gen++
	d, failed := buildDesired(m, a.secrets, a.gen)
	res.Failed = failed
	a.st.adopt(d)
	ops := plan(d, a.st)
	var errs []error
	for _, f := range failed {
		errs = append(errs, f.Err)
	}
	for _, op := range ops {
		if err := call(ctx, a.s, op.Command, op.msg, op.String()); err != nil {
			errs = append(errs, err)
			res.Failed = append(res.Failed, Failure{Ref: op.Ref, Err: err})
			if errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
				// The rest of the plan assumes this op happened.
				a.synced = false
				break
			}
			continue
		}
		a.st.applied(op)
		res.Ops = append(res.Ops, op)
		log.V(1).Info("Applied", "op", op.String())
	}
	res.Duration = time.Since(start)
	return res, errors.Join(errs...)
}

// Forget drops everything the applier remembers, so the next Apply re-reads
// charon and reloads every item once.
func (a *Applier) Forget() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st = newState()
	a.secrets = secretCache{}
	a.synced = false
}

// call sends one command and turns success=no into an error naming what.
func call(ctx context.Context, s Session, cmd string, in *govici.Message, what string) error {
	resp, err := s.Call(ctx, cmd, in)
	if resp != nil && str(resp, "success") == "no" {
		msg := str(resp, "errmsg")
		if msg == "" {
			msg = "command failed"
		}
		return fmt.Errorf("%s: charon: %s", what, msg)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
