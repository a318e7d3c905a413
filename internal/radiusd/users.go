package radiusd

import (
	"maps"
	"net/netip"
	"sync"
)

// Users is where the server looks up a user's NT hash (MD4 of the UTF-16LE
// password) by EAP identity. Lookups run on every login and must be safe
// while the set changes.
type Users interface {
	NTHash(identity string) ([16]byte, bool)
}

// Policy is per-user state returned on Access-Accept.
type Policy struct {
	// Address, when valid, is sent as Framed-IP-Address (Framed-IPv6-Address
	// for IPv6): charon assigns it
	// as the virtual IP if the connection's pools include "radius".
	Address netip.Addr
	// Class, when set, is sent as Class: with eap-radius class_group = yes
	// charon makes it a group of the user for the connection's groups.
	Class string
}

// PolicyUsers is a Users that also provides per-user policy. The server
// asks it only for a user whose response it has verified.
type PolicyUsers interface {
	Users
	Policy(identity string) Policy
}

// User is one entry of a Map.
type User struct {
	NTHash [16]byte
	Policy Policy
}

// Map is a Users held in memory: adding, changing or removing a user is
// one map update, visible to the next lookup. The zero Map is empty and
// ready to use.
type Map struct {
	mu    sync.RWMutex
	users map[string]User
}

// Set adds or replaces the user identity.
func (m *Map) Set(identity string, u User) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.users == nil {
		m.users = make(map[string]User)
	}
	m.users[identity] = u
}

// Replace makes users the map's whole content, in one step: a login sees
// either the old set or the new one. The map keeps users; the caller must
// not change it afterwards.
func (m *Map) Replace(users map[string]User) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users = users
}

// Delete removes the user identity; its next login is refused.
func (m *Map) Delete(identity string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.users, identity)
}

// Len is the number of users.
func (m *Map) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.users)
}

// NTHash implements Users.
func (m *Map) NTHash(identity string) ([16]byte, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, ok := m.users[identity]
	return u.NTHash, ok
}

// Policy implements PolicyUsers.
func (m *Map) Policy(identity string) Policy {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.users[identity].Policy
}

// Snapshot is a copy of the users the map holds.
func (m *Map) Snapshot() map[string]User {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return maps.Clone(m.users)
}
