package radiusd

import (
	"container/list"
	"crypto/rand"
	"net/netip"
	"sync"
	"time"
)

// Steps of a login, named after the packet the server waits for next.
const (
	awaitResponse = iota // MS-CHAPv2 Response to our Challenge
	awaitSuccess         // the peer's acknowledgement of our Success
	finished             // answered for good; kept to repeat the answer
)

// session is one login in progress, found by its State attribute.
type session struct {
	state   string
	source  netip.Addr
	expires time.Time
	elem    *list.Element

	mu        sync.Mutex
	step      int
	identity  string
	challenge [challengeLen]byte
	eapID     byte
	msID      byte
	keys      msKeys
	// lastAuth and lastReply let a retransmitted request (same Request
	// Authenticator) get the same reply: the session has moved on.
	lastAuth  [16]byte
	lastReply []byte
}

// pending holds the sessions: bounded in all and per source, each dropped
// ttl after it began, so a flood of new logins cannot grow memory.
type pending struct {
	ttl            time.Duration
	max, perSource int

	mu      sync.Mutex
	byState map[string]*session
	order   list.List // by creation, which is also expiry order
	sources map[netip.Addr]int
}

func newPending(ttl time.Duration, max, perSource int) *pending {
	return &pending{ttl: ttl, max: max, perSource: perSource, byState: map[string]*session{}, sources: map[netip.Addr]int{}}
}

// add starts a session for source; false when a bound is reached (the
// request is dropped and the NAS retries or gives up).
func (p *pending) add(now time.Time, source netip.Addr) (*session, bool) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	if len(p.byState) >= p.max || p.sources[source] >= p.perSource {
		return nil, false
	}
	s := &session{state: string(b[:]), source: source, expires: now.Add(p.ttl)}
	s.elem = p.order.PushBack(s)
	p.byState[s.state] = s
	p.sources[source]++
	return s, true
}

// get finds the live session of state opened by source.
func (p *pending) get(now time.Time, state []byte, source netip.Addr) (*session, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	s, ok := p.byState[string(state)]
	if !ok || s.source != source {
		return nil, false
	}
	return s, true
}

// len is the number of sessions held, expired ones included until the
// next add or get.
func (p *pending) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byState)
}

func (p *pending) expire(now time.Time) {
	for e := p.order.Front(); e != nil; e = p.order.Front() {
		s := e.Value.(*session)
		if now.Before(s.expires) {
			return
		}
		p.order.Remove(e)
		delete(p.byState, s.state)
		if p.sources[s.source]--; p.sources[s.source] <= 0 {
			delete(p.sources, s.source)
		}
	}
}
