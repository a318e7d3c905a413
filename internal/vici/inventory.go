package vici

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	govici "github.com/strongswan/govici/vici"
)

// Inventory is what charon reports it holds, by name. charon never returns
// secret material, and returns connections, pools and authorities only in
// part, so an Inventory says what exists, not with which content.
type Inventory struct {
	// Conns are the names of all loaded connections (list-conns).
	Conns []string
	// Pools are the loaded virtual IP pools (get-pools).
	Pools []PoolState
	// Shared are the ids of shared secrets loaded over VICI (get-shared).
	Shared []string
	// Keys are the ids of private keys loaded over VICI (get-keys).
	Keys []string
	// Certs are all certificates charon knows (list-certs).
	Certs []CertState
	// Authorities are the names of loaded certification authorities.
	Authorities []string
}

// PoolState is one pool as get-pools reports it.
type PoolState struct {
	Name    string
	Base    string
	Size    int
	Online  int
	Offline int
}

// CertState is one certificate as list-certs reports it.
type CertState struct {
	Type string
	Flag string
	// Fingerprint is the hex SHA-256 of the DER encoding.
	Fingerprint string
}

// ReadInventory asks charon what it holds.
func ReadInventory(ctx context.Context, s Session) (*Inventory, error) {
	inv := &Inventory{}

	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	conns, err := s.Stream(lctx, "list-conns", "list-conn", nil)
	if err != nil {
		return nil, fmt.Errorf("listing connections: %w", err)
	}
	for _, m := range conns {
		inv.Conns = append(inv.Conns, m.Keys()...)
	}

	pools, err := s.Call(lctx, "get-pools", nil)
	if err != nil {
		return nil, fmt.Errorf("listing pools: %w", err)
	}
	for _, name := range pools.Keys() {
		p, ok := pools.Get(name).(*govici.Message)
		if !ok {
			continue
		}
		inv.Pools = append(inv.Pools, PoolState{
			Name:    name,
			Base:    str(p, "base"),
			Size:    num(p, "size"),
			Online:  num(p, "online"),
			Offline: num(p, "offline"),
		})
	}

	if inv.Shared, err = callList(ctx, s, "get-shared", "keys"); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			// charon drops replies over 512 KiB without a word; get-shared
			// has no paging, so this is where many users would end up.
			return nil, fmt.Errorf("listing shared secrets: no reply within %v; charon discards replies over 512 KiB (roughly 18,000 ids of 25 characters): %w", listTimeout, err)
		}
		return nil, fmt.Errorf("listing shared secrets: %w", err)
	}
	if inv.Keys, err = callList(ctx, s, "get-keys", "keys"); err != nil {
		return nil, fmt.Errorf("listing private keys: %w", err)
	}
	if inv.Authorities, err = callList(ctx, s, "get-authorities", "authorities"); err != nil {
		return nil, fmt.Errorf("listing authorities: %w", err)
	}

	certs, err := s.Stream(lctx, "list-certs", "list-cert", nil)
	if err != nil {
		return nil, fmt.Errorf("listing certificates: %w", err)
	}
	for _, m := range certs {
		data := str(m, "data")
		if data == "" {
			continue
		}
		sum := sha256.Sum256([]byte(data))
		inv.Certs = append(inv.Certs, CertState{
			Type:        str(m, "type"),
			Flag:        str(m, "flag"),
			Fingerprint: hex.EncodeToString(sum[:]),
		})
	}

	sort.Strings(inv.Conns)
	sort.Slice(inv.Pools, func(i, j int) bool { return inv.Pools[i].Name < inv.Pools[j].Name })
	sort.Strings(inv.Shared)
	sort.Strings(inv.Keys)
	sort.Strings(inv.Authorities)
	return inv, nil
}

// listTimeout bounds each listing command: a reply charon discarded (too
// large) would otherwise be waited for forever.
const listTimeout = 30 * time.Second

func callList(ctx context.Context, s Session, cmd, key string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	m, err := s.Call(ctx, cmd, nil)
	if err != nil {
		return nil, err
	}
	l, _ := m.Get(key).([]string)
	return append([]string(nil), l...), nil
}

func str(m *govici.Message, key string) string {
	s, _ := m.Get(key).(string)
	return s
}

func num(m *govici.Message, key string) int {
	n, _ := strconv.Atoi(str(m, key))
	return n
}

func list(m *govici.Message, key string) []string {
	l, _ := m.Get(key).([]string)
	return l
}

func section(m *govici.Message, key string) *govici.Message {
	s, _ := m.Get(key).(*govici.Message)
	return s
}
