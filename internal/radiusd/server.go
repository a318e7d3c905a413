package radiusd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"layeh.com/radius"
)

// Defaults of Options.
const (
	DefaultMaxPending = 4096
	DefaultPendingTTL = 30 * time.Second
)

// Options configure a Server.
type Options struct {
	// Addr is the UDP address to listen on, host:port. The host must be a
	// loopback address: the shared secret is the only authentication of
	// charon's requests, and nothing outside the pod is to reach them.
	// Port 0 picks a free port (see Server.Addr).
	Addr string
	// Conn, when set, is used instead of binding Addr: a UDP socket the
	// caller bound, e.g. on the loopback of another network namespace
	// than its own. It must be bound to a loopback address too.
	Conn net.PacketConn
	// Secret is the RADIUS shared secret charon signs with. Never logged.
	Secret []byte
	// Users holds the NT hashes; a PolicyUsers also yields per-user policy.
	Users Users
	// Logger logs logins (identity and outcome, V(1)); nil discards.
	Logger logr.Logger
	// MaxPending bounds the logins in progress in all and from one source
	// address (MaxPendingPerSource, default MaxPending); PendingTTL is how
	// long one is kept after it began. A request beyond a bound is dropped.
	// Finished logins leave that count and are kept 15 s, at most
	// MaxPending of them, to repeat their reply to a retransmission.
	MaxPending, MaxPendingPerSource int
	PendingTTL                      time.Duration
	// Workers read and answer packets; default the number of CPUs.
	Workers int
	// FailureDelay holds back the Access-Reject of a wrong password, as
	// charon's own eap-mschapv2 does, so that a guesser gets one try per
	// delay and login instead of as many as it can send; the worker that
	// read the request goes on at once. 0 is DefaultFailureDelay, a
	// negative value answers at once.
	FailureDelay time.Duration
	// Accounting, when set, receives charon's accounting records (with
	// eap-radius accounting = yes and this server's port as acct_port),
	// on the worker that read them: it must not block.
	Accounting func(AccountingRecord)
}

// Stats count what the server did with the packets it read.
type Stats struct {
	Accepts, Rejects, Challenges uint64
	// Accounted are the accounting records acknowledged.
	Accounted uint64
	// Dropped are packets not answered: malformed, not signed with the
	// secret, for an unknown or expired State, or beyond a bound.
	Dropped uint64
	// Pending is the number of logins in progress, Answered the number of
	// finished ones kept to repeat their reply to a retransmission.
	Pending, Answered int
}

// Server answers charon's eap-radius Access-Requests with EAP-MSCHAPv2
// against Users.
type Server struct {
	opts    Options
	conn    net.PacketConn
	log     logr.Logger
	pending *pending
	now     func() time.Time

	accepts, rejects, challenges, dropped, accounted atomic.Uint64
}

// New validates opts and binds the server's socket, so that the caller
// can create it inside a network namespace and serve it from anywhere.
func New(opts Options) (*Server, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("radiusd: empty shared secret")
	}
	if opts.Users == nil {
		return nil, errors.New("radiusd: no Users")
	}
	addr := opts.Addr
	if opts.Conn != nil {
		addr = opts.Conn.LocalAddr().String()
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("radiusd: address %q: %w", addr, err)
	}
	if !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("radiusd: address %q is not a loopback address", addr)
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.MaxPendingPerSource <= 0 {
		opts.MaxPendingPerSource = opts.MaxPending
	}
	if opts.FailureDelay == 0 {
		opts.FailureDelay = DefaultFailureDelay
	}
	if opts.PendingTTL <= 0 {
		opts.PendingTTL = DefaultPendingTTL
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	conn := opts.Conn
	if conn == nil {
		if conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap)); err != nil {
			return nil, fmt.Errorf("radiusd: listening on %s: %w", opts.Addr, err)
		}
	}
	log := opts.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	return &Server{
		opts:    opts,
		conn:    conn,
		log:     log,
		pending: newPending(opts.PendingTTL, opts.MaxPending, opts.MaxPendingPerSource),
		now:     time.Now,
	}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	st := Stats{
		Accepts:    s.accepts.Load(),
		Rejects:    s.rejects.Load(),
		Challenges: s.challenges.Load(),
		Dropped:    s.dropped.Load(),
		Accounted:  s.accounted.Load(),
	}
	st.Pending, st.Answered = s.pending.len()
	return st
}

// Serve answers requests until ctx ends, then closes the socket. Work is
// bounded: a fixed number of workers, each answering one packet at a time.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.conn.Close() })
	defer stop()
	var (
		wg   sync.WaitGroup
		errs = make([]error, s.opts.Workers)
	)
	for i := range s.opts.Workers {
		wg.Go(func() { errs[i] = s.work(ctx) })
	}
	wg.Wait()
	s.conn.Close()
	if ctx.Err() != nil {
		return nil
	}
	return errors.Join(errs...)
}

// DefaultFailureDelay is Options.FailureDelay's default: charon's
// eap-mschapv2 waits 2 s, but charon's eap-radius client retransmits a
// request it has no answer to after 2 s, which would repeat the login.
const DefaultFailureDelay = time.Second

// send writes one reply.
func (s *Server) send(ctx context.Context, reply []byte, to net.Addr) {
	if _, err := s.conn.WriteTo(reply, to); err != nil && ctx.Err() == nil {
		s.log.V(1).Info("Sending a RADIUS reply failed", "error", err.Error())
	}
}

func (s *Server) work(ctx context.Context) error {
	buf := make([]byte, radius.MaxPacketLength)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("radiusd: reading: %w", err)
		}
		src, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		reply, at := s.handle(buf[:n], src.AddrPort().Addr().Unmap())
		if reply == nil {
			s.dropped.Add(1)
			continue
		}
		if wait := at.Sub(s.now()); wait > 0 {
			time.AfterFunc(wait, func() { s.send(ctx, reply, from) })
			continue
		}
		s.send(ctx, reply, from)
	}
}
