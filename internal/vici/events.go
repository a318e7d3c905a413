package vici

import (
	"context"
	"time"

	govici "github.com/strongswan/govici/vici"
)

// EventKind is the type of an Event: a VICI event name, or one of the two
// connection markers Watch adds.
type EventKind string

// Event kinds. The VICI ones are every event charon 5.9.8 raises outside of
// streamed commands.
const (
	EventIKEUpDown   EventKind = "ike-updown"
	EventIKERekey    EventKind = "ike-rekey"
	EventIKEUpdate   EventKind = "ike-update"
	EventChildUpDown EventKind = "child-updown"
	EventChildRekey  EventKind = "child-rekey"
	EventLog         EventKind = "log"
	// EventConnected marks a (re)subscription: charon is there, and may have
	// restarted since the last EventDisconnected, so its configuration must be
	// applied again and its SAs listed afresh.
	EventConnected EventKind = "connected"
	// EventDisconnected marks the loss of charon's socket.
	EventDisconnected EventKind = "disconnected"
)

// Event is one typed event.
type Event struct {
	Kind EventKind
	// Time is when the event was received.
	Time time.Time
	// Up is set for ike-updown and child-updown events reporting an SA up.
	Up bool
	// IKE is the IKE_SA concerned; for ike-rekey the new one. For
	// child-updown and child-rekey it carries no children.
	IKE *IKESA
	// OldIKE is the rekeyed IKE_SA of an ike-rekey event.
	OldIKE *IKESA
	// Child is the CHILD_SA of a child-updown event, the new one of a
	// child-rekey event.
	Child *ChildSA
	// OldChild is the rekeyed CHILD_SA of a child-rekey event.
	OldChild *ChildSA
	// Endpoint is the new address pair of an ike-update event.
	Endpoint *Endpoint
	Log      *LogEntry
}

// Endpoint is a pair of IKE endpoints.
type Endpoint struct {
	LocalHost  string
	LocalPort  int
	RemoteHost string
	RemotePort int
}

// LogEntry is one of charon's log messages (up to level 1, which is all
// charon sends over VICI).
type LogEntry struct {
	Group       string
	Level       int
	Thread      int
	IKEName     string
	IKEUniqueID uint32
	Message     string
}

// WatchOptions tunes Watch.
type WatchOptions struct {
	// Log subscribes to charon's log messages as well.
	Log bool
	// Retry is how often to try subscribing again after charon went away;
	// 100ms when zero.
	Retry time.Duration
}

// Watch delivers charon's events until ctx is done, then closes the channel.
// When charon goes away it sends EventDisconnected, keeps trying to subscribe
// again, and sends EventConnected once it succeeded. The first event is
// EventConnected (as soon as charon is reachable).
func Watch(ctx context.Context, s Session, opts WatchOptions) <-chan Event {
	if opts.Retry <= 0 {
		opts.Retry = 100 * time.Millisecond
	}
	names := []string{
		string(EventIKEUpDown), string(EventIKERekey), string(EventIKEUpdate),
		string(EventChildUpDown), string(EventChildRekey),
	}
	if opts.Log {
		names = append(names, string(EventLog))
	}
	out := make(chan Event, 256)
	send := func(ev Event) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer close(out)
		for {
			in, err := s.Subscribe(ctx, names...)
			if err != nil {
				select {
				case <-time.After(opts.Retry):
					continue
				case <-ctx.Done():
					return
				}
			}
			if !send(Event{Kind: EventConnected, Time: time.Now()}) {
				return
			}
			for raw := range in {
				if ev, ok := parseEvent(raw); ok && !send(ev) {
					return
				}
			}
			if ctx.Err() != nil || !send(Event{Kind: EventDisconnected, Time: time.Now()}) {
				return
			}
		}
	}()
	return out
}

// parseEvent types one VICI event; it reports false for events it does not know.
func parseEvent(raw govici.Event) (Event, bool) {
	m := raw.Message
	ev := Event{Kind: EventKind(raw.Name), Time: raw.Timestamp}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if m == nil {
		return ev, false
	}
	// Every SA event carries exactly one section named after the connection.
	name, sec := "", (*govici.Message)(nil)
	for _, k := range m.Keys() {
		if s := section(m, k); s != nil {
			name, sec = k, s
			break
		}
	}
	switch ev.Kind {
	case EventLog:
		ev.Log = &LogEntry{
			Group:       str(m, "group"),
			Level:       num(m, "level"),
			Thread:      num(m, "thread"),
			IKEName:     str(m, "ikesa-name"),
			IKEUniqueID: uint32(num(m, "ikesa-uniqueid")),
			Message:     str(m, "msg"),
		}
		return ev, true
	case EventIKEUpDown, EventIKEUpdate:
		if sec == nil {
			return ev, false
		}
		ev.Up = yes(m, "up")
		sa := parseIKESA(name, sec)
		ev.IKE = &sa
		if ev.Kind == EventIKEUpdate {
			ev.Endpoint = &Endpoint{
				LocalHost: str(m, "local-host"), LocalPort: num(m, "local-port"),
				RemoteHost: str(m, "remote-host"), RemotePort: num(m, "remote-port"),
			}
		}
		return ev, true
	case EventIKERekey:
		if sec == nil || section(sec, "old") == nil || section(sec, "new") == nil {
			return ev, false
		}
		oldSA, newSA := parseIKESA(name, section(sec, "old")), parseIKESA(name, section(sec, "new"))
		ev.OldIKE, ev.IKE = &oldSA, &newSA
		return ev, true
	case EventChildUpDown, EventChildRekey:
		if sec == nil {
			return ev, false
		}
		ev.Up = yes(m, "up")
		sa := parseIKESA(name, sec)
		children := section(sec, "child-sas")
		sa.Children = nil
		ev.IKE = &sa
		if children == nil || len(children.Keys()) == 0 {
			return ev, false
		}
		key := children.Keys()[0]
		c := section(children, key)
		if c == nil {
			return ev, false
		}
		if ev.Kind == EventChildUpDown {
			child := parseChildSA(key, c)
			ev.Child = &child
			return ev, true
		}
		if section(c, "old") == nil || section(c, "new") == nil {
			return ev, false
		}
		oldC, newC := parseChildSA(key, section(c, "old")), parseChildSA(key, section(c, "new"))
		ev.OldChild, ev.Child = &oldC, &newC
		return ev, true
	}
	return ev, false
}
