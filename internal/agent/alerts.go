package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"time"

	"github.com/go-logr/logr"

	"github.com/ikegate/ikegate/internal/diagnose"
	"github.com/ikegate/ikegate/internal/vici"
)

// diagnosis feeds charon's log and alerts into a Correlator, from the
// session loop only (the Correlator is not safe for concurrent use).
type diagnosis struct {
	a        *Agent
	c        *diagnose.Correlator
	localIDs []string
}

func newDiagnosis(a *Agent) *diagnosis {
	d := &diagnosis{a: a}
	d.reset(nil)
	return d
}

// reset starts a Correlator that knows the gateway's identities; what it
// learnt of attempts in flight is lost, which only happens when the
// gateway's identities change.
func (d *diagnosis) reset(localIDs []string) {
	d.localIDs = localIDs
	d.c = diagnose.NewCorrelator(diagnose.Options{
		LocalIDs: localIDs,
		UserState: func(id string) string {
			d.a.mu.Lock()
			defer d.a.mu.Unlock()
			return d.a.diag.userState(id)
		},
	})
}

// current renews the Correlator when the last Build changed the gateway's
// identities.
func (d *diagnosis) current() *diagnose.Correlator {
	d.a.mu.Lock()
	var ids []string
	if d.a.diag != nil {
		ids = d.a.diag.localIDs
	}
	d.a.mu.Unlock()
	if !slices.Equal(ids, d.localIDs) {
		d.reset(ids)
	}
	return d.c
}

func (d *diagnosis) log(ctx context.Context, l *vici.LogEntry) {
	if f, ok := d.current().Observe(logEvent(l, d.a.opts.Now())); ok {
		d.a.reportFailure(ctx, f)
	}
}

func (d *diagnosis) alert(ctx context.Context, al diagnose.Alert) {
	al.Time = d.a.opts.Now()
	if f, ok := d.current().Alert(al); ok {
		d.a.reportFailure(ctx, f)
	}
}

// alertDelay holds an alert back before it is correlated. charon writes
// its log and its alerts to two sockets, read by two goroutines, so an
// alert can overtake the log lines that precede it; correlated first, it
// would join the peer's previous attempt instead of its own, and an alert
// that wins says less than the log (no proposals or traffic selectors). A
// loaded node delays the log stream by more than a few hundred
// milliseconds, so the alert waits long enough for the log to come first;
// the Event is that much later, which nobody watching it notices.
const alertDelay = 2 * time.Second

// heldAlerts are alerts waiting out alertDelay, oldest first.
type heldAlerts struct {
	queue []diagnose.Alert
	timer *time.Timer
}

func newHeldAlerts() *heldAlerts {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &heldAlerts{timer: t}
}

// hold queues an alert read at al.Time (the reader's clock, time.Now).
func (h *heldAlerts) hold(al diagnose.Alert) {
	h.queue = append(h.queue, al)
	if len(h.queue) == 1 {
		h.timer.Reset(alertDelay)
	}
}

// due removes and returns the alerts whose delay is over, and arms the
// timer for the next.
func (h *heldAlerts) due(now time.Time) []diagnose.Alert {
	i := 0
	for i < len(h.queue) && now.Sub(h.queue[i].Time) >= alertDelay {
		i++
	}
	out := h.queue[:i:i]
	h.queue = h.queue[i:]
	if len(h.queue) > 0 {
		h.timer.Reset(alertDelay - now.Sub(h.queue[0].Time))
	}
	return out
}

// alertRetry is how long the agent waits before dialling charon's
// error-notify socket again (charon not started yet, or restarted).
const alertRetry = time.Second

// watchAlerts reads charon's error-notify socket until ctx is done,
// reconnecting when charon restarts. The channel is nil without a socket.
func (a *Agent) watchAlerts(ctx context.Context) <-chan diagnose.Alert {
	if a.opts.ErrorNotifySocket == "" {
		return nil
	}
	out := make(chan diagnose.Alert, 64)
	go func() {
		log := logr.FromContextOrDiscard(ctx)
		var d net.Dialer
		for ctx.Err() == nil {
			conn, err := d.DialContext(ctx, "unix", a.opts.ErrorNotifySocket)
			if err == nil {
				err = readAlerts(ctx, diagnose.NewAlertReader(conn), out)
			}
			if err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) {
				log.V(1).Info("Reading charon's error-notify socket failed; retrying", "error", err.Error())
			}
			select {
			case <-ctx.Done():
			case <-time.After(alertRetry):
			}
		}
	}()
	return out
}

// readAlerts passes alerts on until the socket fails or ctx is done.
func readAlerts(ctx context.Context, r *diagnose.AlertReader, out chan<- diagnose.Alert) error {
	stop := context.AfterFunc(ctx, func() { _ = r.Close() })
	defer stop()
	defer r.Close()
	for {
		al, err := r.Read()
		if err != nil {
			return err
		}
		select {
		case out <- al:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
