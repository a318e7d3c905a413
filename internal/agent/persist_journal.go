package agent

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/ikegate/ikegate/internal/radiusd"
)

// A change of single users is kept for a restart without writing the
// whole state file, which at 100,000 users takes about a tenth of a
// second: it is appended to a journal beside the file
// (<state file>.journal), one JSON record per line. The journal's first
// line names the state file it continues by the digest of its bytes; a
// whole write of the file removes the journal, so that a journal left by a
// crash between the two names a file that is no longer there and is
// ignored. A record torn by a crash ends the replay: the journal's records
// before it stand.

// journalRecord is one user set or removed, as the RADIUS server's map
// holds it.
type journalRecord struct {
	Set  string        `json:"set,omitempty"`
	User *radiusd.User `json:"user,omitempty"`
	Del  string        `json:"del,omitempty"`
}

type journalHeader struct {
	State string `json:"state"`
}

// minWholeAfter is the fewest journal records after which the next change
// rewrites the state file whole instead; past it, a quarter of the users:
// the journal stays a fraction of the file, and whole writes come once per
// thousands of changes.
const minWholeAfter = 1024

// errWholeDue is record's answer when the change is to be saved in a whole
// write of the state file instead.
var errWholeDue = errors.New("the state file is due to be written whole")

func journalPath(state string) string { return state + ".journal" }

// record appends the records to the journal of the state file this
// process last wrote whole, made at the first of them. users is the
// number of users served, which bounds the journal.
func (f *stateFile) record(recs []journalRecord, users int) error {
	if f.path == "" || len(recs) == 0 {
		return nil
	}
	if f.sum == ([32]byte{}) || f.broken || f.records+len(recs) > max(minWholeAfter, users/4) {
		return errWholeDue
	}
	var buf bytes.Buffer
	if f.journal == nil {
		j, err := os.OpenFile(journalPath(f.path), os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			f.broken = true
			return fmt.Errorf("starting the state file's journal: %w", err)
		}
		f.journal = j
		line, _ := json.Marshal(journalHeader{State: hex.EncodeToString(f.sum[:])})
		buf.Write(append(line, '\n'))
	}
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf.Write(append(line, '\n'))
	}
	if _, err := f.journal.Write(buf.Bytes()); err != nil {
		f.broken = true
		return fmt.Errorf("appending to the state file's journal: %w", err)
	}
	if err := f.journal.Sync(); err != nil {
		f.broken = true
		return fmt.Errorf("syncing the state file's journal: %w", err)
	}
	f.records += len(recs)
	return nil
}

// dropJournal removes the journal: the state file was just written whole,
// or found to hold what it would have been written with.
func (f *stateFile) dropJournal() error {
	if f.journal != nil {
		_ = f.journal.Close()
		f.journal = nil
	}
	f.records, f.broken = 0, false
	if err := os.Remove(journalPath(f.path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the state file's journal: %w", err)
	}
	return nil
}

// replayJournal applies to users the journal that continues the state
// file whose bytes digest to sum, if there is one.
func replayJournal(path string, sum [32]byte, users map[string]radiusd.User) map[string]radiusd.User {
	data, err := os.ReadFile(journalPath(path))
	if err != nil {
		return users
	}
	lines := bufio.NewScanner(bytes.NewReader(data))
	lines.Buffer(nil, 1<<20)
	var h journalHeader
	if !lines.Scan() || json.Unmarshal(lines.Bytes(), &h) != nil || h.State != hex.EncodeToString(sum[:]) {
		return users
	}
	if users == nil {
		users = map[string]radiusd.User{}
	}
	for lines.Scan() {
		var r journalRecord
		if json.Unmarshal(lines.Bytes(), &r) != nil {
			break
		}
		if r.Del != "" {
			delete(users, r.Del)
		}
		if r.Set != "" && r.User != nil {
			users[r.Set] = *r.User
		}
	}
	return users
}

// journalOf is what a change of single users did to the RADIUS server's
// map (see serveChanges), as journal records.
func journalOf(changes []userChange) []journalRecord {
	var out []journalRecord
	for _, c := range changes {
		if b := c.left(); b != "" {
			out = append(out, journalRecord{Del: b})
		}
		if n := c.After; n != nil {
			u := radiusUser(n)
			out = append(out, journalRecord{Set: n.Identity, User: &u})
		}
	}
	return out
}
