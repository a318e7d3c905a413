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
	done    bool // in pending.done; guarded by pending.mu

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
	// replyAt is when the reply may be sent: later than now for a wrong
	// password (Options.FailureDelay), for its retransmissions too.
	replyAt time.Time
}

// doneTTL is how long an answered login is kept to repeat its last reply:
// charon's eap-radius gives up on a request after about 15 s of
// retransmissions (4 tries from 2 s, factor 1.4).
const doneTTL = 15 * time.Second

// pending holds the sessions: logins in progress, bounded in all and per
// source and each dropped ttl after it began, so a flood of new logins
// cannot grow memory; and answered logins, kept a short while to repeat
// their reply and bounded too, the oldest making way, so that finished
// logins never hold the slots of new ones.
type pending struct {
	ttl            time.Duration
	max, perSource int

	mu      sync.Mutex
	byState map[string]*session
	// live and done are in creation (live) or finishing (done) order,
	// which is also their expiry order.
	live, done list.List
	sources    map[netip.Addr]int // live sessions per source
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
	if p.live.Len() >= p.max || p.sources[source] >= p.perSource {
		return nil, false
	}
	s := &session{state: string(b[:]), source: source, expires: now.Add(p.ttl)}
	s.elem = p.live.PushBack(s)
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

// finish moves a live session to the answered ones.
func (p *pending) finish(now time.Time, s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.byState[s.state]; !ok || s.done {
		return
	}
	p.live.Remove(s.elem)
	p.release(s.source)
	if p.done.Len() >= p.max {
		p.drop(&p.done, p.done.Front())
	}
	s.done, s.expires = true, now.Add(doneTTL)
	s.elem = p.done.PushBack(s)
}

// len is the number of logins in progress and answered, expired ones
// included until the next add or get.
func (p *pending) len() (live, done int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live.Len(), p.done.Len()
}

func (p *pending) expire(now time.Time) {
	for _, l := range []*list.List{&p.live, &p.done} {
		for e := l.Front(); e != nil && !now.Before(e.Value.(*session).expires); e = l.Front() {
			if s := e.Value.(*session); !s.done {
				p.release(s.source)
			}
			p.drop(l, e)
		}
	}
}

func (p *pending) drop(l *list.List, e *list.Element) {
	l.Remove(e)
	delete(p.byState, e.Value.(*session).state)
}

func (p *pending) release(source netip.Addr) {
	if p.sources[source]--; p.sources[source] <= 0 {
		delete(p.sources, source)
	}
}
