package firewall

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// Counter is what a rule's (or a named) counter saw.
type Counter struct {
	Packets uint64
	Bytes   uint64
}

// Applier makes one inet table in one network namespace match a Ruleset.
// It is safe for concurrent use.
type Applier struct {
	table string
	conn  *nftables.Conn

	mu sync.Mutex
	// ids maps installed rule comments to rule IDs, for IDs too long to be
	// kept verbatim in a comment.
	ids map[string]string
}

// NewApplier manages table through a netlink connection made with opts, for
// example nftables.WithNetNSFd(fd) for the gateway pod's network namespace.
func NewApplier(table string, opts ...nftables.ConnOption) (*Applier, error) {
	if table == "" {
		return nil, errors.New("table name is empty")
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("opening nftables netlink connection: %w", err)
	}
	return &Applier{table: table, conn: conn, ids: map[string]string{}}, nil
}

// Table is the name of the managed table.
func (a *Applier) Table() string { return a.table }

// installed is what the kernel has of the table.
type installed struct {
	table   *nftables.Table
	chains  []*nftables.Chain // in kernel order
	rules   map[string][]*nftables.Rule
	objects map[string]*nftables.NamedObj
	foreign bool // objects we never create (sets, other object types)
}

// Apply makes the kernel's table equal to rs in one atomic transaction, and
// does not write anything when it already is (changed is then false). The
// comparison covers chain order and parameters, named counters, and every
// rule's comment, which carries the rule's ID and a digest of its content.
//
// On a change the rules and chains are replaced wholesale while named counter
// objects are kept, so the per-pool drop counters survive configuration changes.
func (a *Applier) Apply(rs *Ruleset) (changed bool, err error) {
	if rs.Table != a.table {
		return false, fmt.Errorf("ruleset is for table %q, applier manages %q", rs.Table, a.table)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cur, err := a.read()
	if err != nil {
		return false, err
	}
	a.ids = map[string]string{}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			a.ids[r.Comment()] = r.ID
		}
	}
	if cur != nil && cur.matches(rs) {
		return false, nil
	}
	if err := a.program(a.conn, rs, cur); err != nil {
		return false, err
	}
	if err := a.conn.Flush(); err != nil {
		return false, fmt.Errorf("applying table %s: %w", a.table, err)
	}
	return true, nil
}

// program queues the messages that turn cur (nil: no table) into rs.
func (a *Applier) program(conn *nftables.Conn, rs *Ruleset, cur *installed) error {
	t := &nftables.Table{Name: rs.Table, Family: nftables.TableFamilyINet}
	if cur != nil && cur.foreign {
		// Someone added sets or other objects this package never creates:
		// start from an empty table rather than leave them behind.
		conn.DelTable(t)
		cur = nil
	}
	t = conn.AddTable(t)
	if cur != nil {
		// Rules first, so chains lose their references, then chains, so they
		// are recreated in the ruleset's order.
		conn.FlushTable(t)
		for _, c := range cur.chains {
			conn.DelChain(&nftables.Chain{Name: c.Name, Table: t})
		}
		for name, o := range cur.objects {
			if !slices.Contains(rs.Counters, name) {
				conn.DeleteObject(o)
			}
		}
	}
	for _, name := range rs.Counters {
		if cur != nil && cur.objects[name] != nil {
			continue
		}
		conn.AddObj(&nftables.NamedObj{Table: t, Name: name, Type: nftables.ObjTypeCounter, Obj: &expr.Counter{}})
	}
	chains := map[string]*nftables.Chain{}
	for _, c := range rs.Chains {
		chains[c.Name] = conn.AddChain(nftChain(t, c))
	}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			exprs, err := r.exprs()
			if err != nil {
				return err
			}
			conn.AddRule(&nftables.Rule{
				Table:    t,
				Chain:    chains[c.Name],
				Exprs:    exprs,
				UserData: userdata.AppendString(nil, userdata.TypeComment, r.Comment()),
			})
		}
	}
	return nil
}

var hooks = map[Hook]*nftables.ChainHook{
	HookInput:       nftables.ChainHookInput,
	HookForward:     nftables.ChainHookForward,
	HookPostrouting: nftables.ChainHookPostrouting,
}

func nftChain(t *nftables.Table, c Chain) *nftables.Chain {
	nc := &nftables.Chain{Name: c.Name, Table: t}
	if c.Base != nil {
		accept := nftables.ChainPolicyAccept
		nc.Type = nftables.ChainType(c.Base.Type)
		nc.Hooknum = hooks[c.Base.Hook]
		nc.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(c.Base.Priority))
		nc.Policy = &accept
	}
	return nc
}

// read returns the installed table, or nil when there is none.
func (a *Applier) read() (*installed, error) {
	tables, err := a.conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	i := slices.IndexFunc(tables, func(t *nftables.Table) bool { return t.Name == a.table })
	if i < 0 {
		return nil, nil
	}
	cur := &installed{table: tables[i], rules: map[string][]*nftables.Rule{}, objects: map[string]*nftables.NamedObj{}}
	chains, err := a.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing chains of %s: %w", a.table, err)
	}
	for _, c := range chains {
		if c.Table == nil || c.Table.Name != a.table {
			continue
		}
		cur.chains = append(cur.chains, c)
		rules, err := a.conn.GetRules(cur.table, c)
		if err != nil {
			return nil, fmt.Errorf("listing rules of %s/%s: %w", a.table, c.Name, err)
		}
		cur.rules[c.Name] = rules
	}
	sets, err := a.conn.GetSets(cur.table)
	if err != nil {
		return nil, fmt.Errorf("listing sets of %s: %w", a.table, err)
	}
	cur.foreign = len(sets) > 0
	objs, err := a.conn.GetNamedObjects(cur.table)
	if err != nil {
		return nil, fmt.Errorf("listing objects of %s: %w", a.table, err)
	}
	for _, o := range objs {
		no, ok := o.(*nftables.NamedObj)
		if !ok || no.Type != nftables.ObjTypeCounter {
			cur.foreign = true
			continue
		}
		cur.objects[no.Name] = no
	}
	return cur, nil
}

// matches reports whether the installed table already is rs.
func (cur *installed) matches(rs *Ruleset) bool {
	if cur.foreign || len(cur.objects) != len(rs.Counters) || len(cur.chains) != len(rs.Chains) {
		return false
	}
	for _, name := range rs.Counters {
		if cur.objects[name] == nil {
			return false
		}
	}
	for i, want := range rs.Chains {
		got := cur.chains[i]
		if got.Name != want.Name || !sameBase(got, want.Base) {
			return false
		}
		rules := cur.rules[got.Name]
		if len(rules) != len(want.Rules) {
			return false
		}
		for j, r := range want.Rules {
			c, ok := userdata.GetString(rules[j].UserData, userdata.TypeComment)
			if !ok || c != r.Comment() {
				return false
			}
		}
	}
	return true
}

func sameBase(got *nftables.Chain, want *Base) bool {
	if want == nil {
		return got.Hooknum == nil
	}
	return got.Hooknum != nil && *got.Hooknum == *hooks[want.Hook] &&
		got.Priority != nil && int32(*got.Priority) == want.Priority &&
		string(got.Type) == want.Type &&
		got.Policy != nil && *got.Policy == nftables.ChainPolicyAccept
}

// Delete removes the table with everything in it; a missing table is fine.
func (a *Applier) Delete() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur, err := a.read()
	if err != nil || cur == nil {
		return err
	}
	a.conn.DelTable(cur.table)
	if err := a.conn.Flush(); err != nil {
		return fmt.Errorf("deleting table %s: %w", a.table, err)
	}
	return nil
}

// Counters returns the counters of the installed rules by rule ID; the drop
// rule of a pool (PoolDropRuleID) reports the pool's named counter. A missing
// table gives an empty map.
func (a *Applier) Counters() (map[string]Counter, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur, err := a.read()
	if err != nil || cur == nil {
		return map[string]Counter{}, err
	}
	out := map[string]Counter{}
	for _, c := range cur.chains {
		for _, r := range cur.rules[c.Name] {
			comment, ok := userdata.GetString(r.UserData, userdata.TypeComment)
			if !ok {
				continue
			}
			id, ok := a.ids[comment]
			if !ok {
				if id, ok = ruleIDFromComment(comment); !ok {
					continue
				}
			}
			for _, e := range r.Exprs {
				switch e := e.(type) {
				case *expr.Counter:
					out[id] = Counter{Packets: e.Packets, Bytes: e.Bytes}
				case *expr.Objref:
					if o := cur.objects[e.Name]; o != nil {
						if oc, ok := o.Obj.(*expr.Counter); ok {
							out[id] = Counter{Packets: oc.Packets, Bytes: oc.Bytes}
						}
					}
				}
			}
		}
	}
	return out, nil
}
