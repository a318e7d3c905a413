// Package vici makes a charon daemon hold a swan.Model, talking to it over
// VICI (strongSwan's control socket) through github.com/strongswan/govici.
//
// It reads what charon holds, diffs that against the desired model, and sends
// only the difference (load-*/unload-* in dependency order). It also lists and
// terminates live IKE_SAs and turns charon's events into typed values.
//
// Everything goes through the small Session interface: Client is the real one
// (a unix socket that is redialled after charon restarts); vicitest.Fake is an
// in-memory charon for unit tests.
package vici

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	govici "github.com/strongswan/govici/vici"
)

// Session is the part of a VICI connection this package uses.
type Session interface {
	// Connect makes sure a connection to charon is open and returns its epoch:
	// a number that changes every time a new connection had to be made, so
	// callers can tell that charon may have restarted since they last looked.
	Connect(ctx context.Context) (epoch uint64, err error)
	// Call sends one command. A command that charon answers with success=no
	// returns the response together with a non-nil error.
	Call(ctx context.Context, cmd string, in *govici.Message) (*govici.Message, error)
	// Stream sends a command that streams event messages (list-conns, list-sas,
	// list-certs ...) and returns them once the command completes.
	Stream(ctx context.Context, cmd, event string, in *govici.Message) ([]*govici.Message, error)
	// Subscribe registers for events on a connection of its own, so that a
	// flood of log events never delays commands. The channel is closed when the
	// connection to charon ends or ctx is done.
	Subscribe(ctx context.Context, events ...string) (<-chan govici.Event, error)
	Close() error
}

// ErrUnavailable wraps every failure to reach charon's socket, so callers can
// tell "charon is not there (yet)" from "charon refused this".
var ErrUnavailable = errors.New("charon unavailable")

// Client is a Session over charon's unix socket. It dials lazily and dials
// again after the socket went away (charon restarted), so one Client lives as
// long as the agent.
type Client struct {
	path string

	mu   sync.Mutex
	sess *govici.Session
	dead chan govici.Event // closed by govici when the connection's reader stops
	// stream receives the events of streamed commands on sess.
	stream chan govici.Event
	epoch  uint64
}

// NewClient returns a Client for the VICI socket at path. It does not dial.
func NewClient(path string) *Client {
	return &Client{path: path}
}

// Path is the socket path the client dials.
func (c *Client) Path() string { return c.path }

func (c *Client) dial(ctx context.Context) (*govici.Session, chan govici.Event, chan govici.Event, error) {
	s, err := govici.NewSession(
		govici.WithSocketPath(c.path),
		govici.WithDialContext(func(_ context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}),
	)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: dialing %s: %w", ErrUnavailable, c.path, err)
	}
	// govici closes every notify channel when its reader ends, which is the
	// only way it tells that charon hung up. Events offered to this
	// unbuffered channel are dropped, as nobody reads it.
	dead := make(chan govici.Event)
	s.NotifyEvents(dead)
	// govici closes this channel with the session, so each session gets its own.
	stream := make(chan govici.Event, streamBuffer)
	s.NotifyEvents(stream)
	return s, dead, stream, nil
}

// session returns the open session, dialling a new one when there is none or
// the previous one was hung up. c.mu must be held.
func (c *Client) session(ctx context.Context) (*govici.Session, error) {
	if c.sess != nil {
		select {
		case <-c.dead:
			_ = c.sess.Close()
			c.sess = nil
		default:
		}
	}
	if c.sess == nil {
		s, dead, stream, err := c.dial(ctx)
		if err != nil {
			return nil, err
		}
		c.sess, c.dead, c.stream = s, dead, stream
		c.epoch++
	}
	return c.sess, nil
}

// drop forgets the session after a transport error: govici pairs responses
// with requests by counting, and after an interrupted exchange a fresh
// connection is the only state known to be clean. c.mu must be held.
func (c *Client) drop() {
	if c.sess != nil {
		_ = c.sess.Close()
		c.sess = nil
	}
}

// Connect implements Session.
func (c *Client) Connect(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.session(ctx); err != nil {
		return 0, err
	}
	return c.epoch, nil
}

// Call implements Session.
func (c *Client) Call(ctx context.Context, cmd string, in *govici.Message) (*govici.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := s.Call(ctx, cmd, in)
	if err != nil && resp == nil {
		c.drop()
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, cmd, err)
	}
	return resp, err
}

// streamBuffer bounds the number of events one streamed command may return
// (list-sas with more IKE_SAs than this would lose some).
const streamBuffer = 1 << 16

// Stream implements Session.
//
// It does not use govici's CallStreaming: that reads the streamed events and
// the final response from two channels in one select, so the response can
// overtake the last events (they are lost, or later taken for the answer of
// the next command). Instead the event is subscribed to on the command
// connection for the duration of the command: govici's reader hands every
// event to the notify channel before it reads the response that follows it,
// so once Call returns, all of the command's events are in the channel.
func (c *Client) Stream(ctx context.Context, cmd, event string, in *govici.Message) ([]*govici.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Subscribe(event); err != nil {
		c.drop()
		return nil, fmt.Errorf("%w: registering for %s: %w", ErrUnavailable, event, err)
	}
	resp, callErr := s.Call(ctx, cmd, in)
	var out []*govici.Message
	for drained := false; !drained; {
		select {
		case ev, ok := <-c.stream:
			if !ok {
				drained = true
				break
			}
			if ev.Name == event {
				out = append(out, ev.Message)
			}
		default:
			drained = true
		}
	}
	if callErr != nil && resp == nil {
		c.drop()
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, cmd, callErr)
	}
	if err := s.Unsubscribe(event); err != nil {
		c.drop()
		return nil, fmt.Errorf("%w: unregistering for %s: %w", ErrUnavailable, event, err)
	}
	if callErr != nil {
		return nil, callErr
	}
	if len(out) == streamBuffer {
		return nil, fmt.Errorf("%s: more than %d results", cmd, streamBuffer-1)
	}
	return out, nil
}

// Subscribe implements Session.
func (c *Client) Subscribe(ctx context.Context, events ...string) (<-chan govici.Event, error) {
	s, err := govici.NewSession(govici.WithSocketPath(c.path))
	if err != nil {
		return nil, fmt.Errorf("%w: dialing %s: %w", ErrUnavailable, c.path, err)
	}
	if err := s.Subscribe(events...); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("subscribing to %v: %w", events, err)
	}
	// govici drops events rather than block its reader; a roomy buffer keeps
	// bursts of log events from costing up/down events.
	in := make(chan govici.Event, 4096)
	s.NotifyEvents(in)
	out := make(chan govici.Event, 64)
	go func() {
		defer close(out)
		defer s.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// Close implements Session.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drop()
	return nil
}
