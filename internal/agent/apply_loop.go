package agent

import (
	"context"
	"time"

	"github.com/go-logr/logr"
)

// applyLoop waits for triggers, lets a burst settle for Debounce counted
// from its first trigger (so a steady stream of changes cannot starve the
// apply), then for the password hashes it knows are coming, for at most
// CredentialsWait, and retries failures with exponential backoff.
func (a *Agent) applyLoop(ctx context.Context) {
	log := logr.FromContextOrDiscard(ctx)
	var (
		retry   <-chan time.Time
		backoff time.Duration
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-retry:
		}
		if !a.gather(ctx) {
			return
		}
		err := a.sync(ctx)
		if err == nil || ctx.Err() != nil {
			backoff, retry = 0, nil
			continue
		}
		backoff = min(max(2*backoff, minBackoff), a.opts.MaxBackoff)
		retry = time.After(backoff)
		log.Error(err, "Applying the gateway configuration failed", "retryIn", backoff.String())
	}
}

// gather lets a burst of triggers settle: Debounce from the first, and
// then, while a new user's password hash is awaited, until it arrives or
// CredentialsWait has passed. It returns false when ctx is done.
func (a *Agent) gather(ctx context.Context) bool {
	if a.index != nil && a.dirty.onlyUsers() {
		// Deciding single users costs microseconds each: nothing is
		// gained by waiting for more, and a user whose hash is still on
		// its way is decided again when its shard comes.
		return ctx.Err() == nil
	}
	start := time.Now()
	deadline := start.Add(a.opts.Debounce + max(0, a.opts.CredentialsWait))
	timer := time.NewTimer(a.opts.Debounce)
	defer timer.Stop()
	settled := false
	for {
		select {
		case <-ctx.Done():
			return false
		case <-a.kick:
			if !settled {
				continue
			}
		case <-timer.C:
			settled = true
		}
		now := time.Now()
		if !now.Before(deadline) || !a.awaitingHashes(now) {
			return true
		}
		// Woken by the shard that brings the hash, or at the deadline.
		timer.Reset(deadline.Sub(now))
	}
}

// awaitingHashes reports whether a new user's password hash is on its way.
func (a *Agent) awaitingHashes(now time.Time) bool {
	if a.stores == nil || a.stores.pending == nil || a.opts.CredentialsWait <= 0 {
		return false
	}
	return a.stores.pending.waiting(now, a.opts.CredentialsWait)
}
