package controllers

import (
	"maps"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Spacing of the writes of one credentials shard (see shardPacer).
const (
	// firstShardGap follows a write after a quiet spell: the second change
	// of a burst waits this long, the first none.
	firstShardGap = 50 * time.Millisecond
	// maxShardGap bounds the spacing, and with it how long a change made
	// during a long burst waits for its shard: a bulk import is complete in
	// its shards at most this long after its last write.
	maxShardGap = time.Second
)

// shardPacer spaces the writes of each credentials shard. Every write
// sends the whole shard to every gateway pod, whose agent decodes it again,
// so a bulk import that wrote a shard per new user would cost the pods
// time quadratic in its size. A change after a quiet spell is written at
// once (a single new user waits for nothing); while changes keep coming,
// each gap is twice the one before, up to maxShardGap, and the changes
// that arrive in a gap go out together at its end. A burst of length D thus
// writes a shard at most about log2(maxShardGap/firstShardGap) + D/maxShardGap
// times, however many users it brings. Safe for concurrent use.
type shardPacer struct {
	mu     sync.Mutex
	shards map[credentialsRequest]pace
}

type pace struct {
	// next is the earliest time of the shard's next write, gap the
	// spacing that set it.
	next time.Time
	gap  time.Duration
}

func newShardPacer() *shardPacer { return &shardPacer{shards: map[credentialsRequest]pace{}} }

// wait is how long the shard's next write has to wait from now; 0 when it
// may be written now.
func (p *shardPacer) wait(r credentialsRequest, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(0, p.shards[r].next.Sub(now))
}

// wrote records that the shard was written at now. A write that comes
// within a gap of the time the previous gap ended continues a burst and
// doubles the gap; a later one starts over.
func (p *shardPacer) wrote(r credentialsRequest, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.shards[r]
	if !ok || now.Sub(s.next) > s.gap {
		s.gap = firstShardGap
	} else {
		s.gap = min(maxShardGap, 2*s.gap)
	}
	s.next = now.Add(s.gap)
	p.shards[r] = s
}

// forget drops what is recorded of a gateway's shards.
func (p *shardPacer) forget(gw types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	maps.DeleteFunc(p.shards, func(r credentialsRequest, _ pace) bool { return r.Gateway == gw })
}
