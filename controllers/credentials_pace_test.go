package controllers

import (
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// burst runs a shard's pacer over changes arriving every step from start
// for length, writing whenever the pacer lets it (as Reconcile does when a
// change or the requeue at the end of a gap wakes it), and returns the
// times of the writes relative to start.
func burst(p *shardPacer, r credentialsRequest, start time.Time, length, step time.Duration) []time.Duration {
	var writes []time.Duration
	pending := false
	for at := time.Duration(0); at <= length || pending; at += step {
		now := start.Add(at)
		pending = pending || at <= length
		if pending && p.wait(r, now) == 0 {
			p.wrote(r, now)
			writes = append(writes, at)
			pending = false
		}
	}
	return writes
}

var (
	shardA = credentialsRequest{Gateway: types.NamespacedName{Namespace: "vpn", Name: "a"}, Shard: 3}
	shardB = credentialsRequest{Gateway: types.NamespacedName{Namespace: "vpn", Name: "b"}, Shard: 3}
)

func TestABurstDoublesTheGapBetweenShardWritesUpToTheCap(t *testing.T) {
	p := newShardPacer()
	writes := burst(p, shardA, time.Unix(1000, 0), 4*time.Second, time.Millisecond)
	ms := time.Millisecond
	// The first change at once; then gaps of 50, 100, 200, 400, 800 ms and
	// maxShardGap from there on; the last write carries the burst's end.
	want := []time.Duration{0, 50 * ms, 150 * ms, 350 * ms, 750 * ms, 1550 * ms, 2550 * ms, 3550 * ms, 4550 * ms}
	if !slices.Equal(writes, want) {
		t.Errorf("Writes at %v, want %v", writes, want)
	}
}

func TestABulkImportWritesEachShardABoundedNumberOfTimes(t *testing.T) {
	// A change every 100 µs for a minute: 600,000 users.
	writes := burst(newShardPacer(), shardA, time.Unix(1000, 0), time.Minute, 100*time.Microsecond)
	// log2(maxShardGap/firstShardGap) writes while the gap grows, then one
	// per maxShardGap, and the last carries the end of the burst.
	if bound := 6 + int(time.Minute/maxShardGap) + 1; len(writes) > bound {
		t.Errorf("%d writes of the shard, want at most %d", len(writes), bound)
	}
	if last := writes[len(writes)-1]; last > time.Minute+maxShardGap {
		t.Errorf("The last change was written %s after the burst ended, want within %s", last-time.Minute, maxShardGap)
	}
}

func TestAChangeAfterAQuietSpellIsWrittenAtOnce(t *testing.T) {
	p := newShardPacer()
	start := time.Unix(1000, 0)
	burst(p, shardA, start, 10*time.Second, time.Millisecond)
	// The burst's last write opened a gap of maxShardGap; a change after
	// it is written at once, and the one following it waits only
	// firstShardGap again.
	later := start.Add(time.Minute)
	if w := p.wait(shardA, later); w != 0 {
		t.Fatalf("A change after a quiet minute waits %s, want 0", w)
	}
	p.wrote(shardA, later)
	if w := p.wait(shardA, later); w != firstShardGap {
		t.Errorf("The next change waits %s, want %s", w, firstShardGap)
	}
}

func TestABurstInOneShardDoesNotDelayAnother(t *testing.T) {
	p := newShardPacer()
	start := time.Unix(1000, 0)
	burst(p, shardA, start, 10*time.Second, time.Millisecond)
	now := start.Add(10 * time.Second)
	if w := p.wait(shardB, now); w != 0 {
		t.Errorf("Another gateway's shard waits %s, want 0", w)
	}
	other := shardA
	other.Shard++
	if w := p.wait(other, now); w != 0 {
		t.Errorf("Another shard of the gateway waits %s, want 0", w)
	}
	if p.wait(shardA, now) == 0 {
		t.Errorf("The busy shard may be written again at once; want it to wait out its gap")
	}
	p.forget(shardA.Gateway)
	if w := p.wait(shardA, now); w != 0 {
		t.Errorf("A shard of a deleted gateway waits %s, want 0", w)
	}
}
