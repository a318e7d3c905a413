package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// sessionLimits say how many devices each identity may have connected to
// this pod at once. The gateway's connections use charon's `unique = never`:
// under charon's default ("no") a device that logs in with INITIAL_CONTACT
// makes charon destroy every other IKE_SA of the identity without a DELETE
// (ike_sa_manager.c check_uniqueness), so a user could hold one device only,
// and the device cut off would not know it. charon's "replace" keeps one
// session and "keep" refuses the second device. So charon keeps them all
// and the agent ends the oldest of an identity beyond its limit with a
// DELETE.
type sessionLimits struct {
	// users maps identities to their VPNUser's name and limit.
	users map[string]userLimit
	// fallback is the limit of identities without a VPNUser (RADIUS users).
	fallback int
}

type userLimit struct {
	name  string
	limit int
}

// limitsFrom reads the limits of a Build result.
func limitsFrom(res *swan.Result) sessionLimits {
	l := sessionLimits{users: make(map[string]userLimit, len(res.Users)), fallback: res.MaxSessions}
	for _, u := range res.Users {
		l.users[u.Identity] = userLimit{name: u.Name, limit: u.MaxSessions}
	}
	return l
}

func (l sessionLimits) of(identity string) int {
	if u, ok := l.users[identity]; ok && u.limit > 0 {
		return u.limit
	}
	return l.fallback
}

// device is the IKE_SAs of one remote endpoint of an identity: an IKE_SA
// and its rekeyed or reauthenticated successor share the endpoint.
type device struct {
	identity string
	sas      []vici.IKESA
}

// first is the unique id of the device's oldest IKE_SA; charon numbers
// IKE_SAs in the order it creates them.
func (d device) first() uint32 { return d.sas[0].UniqueID }

// excessDevices are the oldest devices of each identity beyond its limit,
// among the IKE_SAs that are sessions (see userSessions). A limit of zero
// or less is no limit (before the first apply).
func excessDevices(sas []vici.IKESA, tunnels map[string]tunnelInfo, limits sessionLimits) []device {
	type endpoint struct {
		id, addr string
		port     int
	}
	byEndpoint := map[endpoint]*device{}
	byIdentity := map[string][]*device{}
	for _, sa := range sas {
		if sa.State != stateEstablished || !carriesTraffic(&sa) {
			continue
		}
		if _, isTunnel := tunnels[sa.Name]; isTunnel {
			continue
		}
		id := sa.Identity()
		k := endpoint{id, sa.RemoteHost, sa.RemotePort}
		d, ok := byEndpoint[k]
		if !ok {
			d = &device{identity: id}
			byEndpoint[k] = d
			byIdentity[id] = append(byIdentity[id], d)
		}
		d.sas = append(d.sas, sa)
	}
	var out []device
	for id, ds := range byIdentity {
		limit := limits.of(id)
		if limit <= 0 || len(ds) <= limit {
			continue
		}
		for _, d := range ds {
			slices.SortFunc(d.sas, func(a, b vici.IKESA) int { return cmp.Compare(a.UniqueID, b.UniqueID) })
		}
		slices.SortFunc(ds, func(a, b *device) int { return cmp.Compare(a.first(), b.first()) })
		for _, d := range ds[:len(ds)-limit] {
			out = append(out, *d)
		}
	}
	slices.SortFunc(out, func(a, b device) int {
		return cmp.Or(strings.Compare(a.identity, b.identity), cmp.Compare(a.first(), b.first()))
	})
	return out
}

// enforceSessionLimits ends the devices beyond their identity's limit: each
// gets a DELETE, and its user an Event saying which device was replaced.
// It reports whether it ended any, so the caller lists the SAs again.
func (a *Agent) enforceSessionLimits(ctx context.Context, sas []vici.IKESA) bool {
	// Under the lock: a change of single users updates the limits in place.
	a.mu.Lock()
	excess := excessDevices(sas, a.tunnelConns, a.limits)
	limits := make([]int, len(excess))
	owners := make([]string, len(excess))
	for i, d := range excess {
		limits[i] = a.limits.of(d.identity)
		owners[i] = a.limits.users[d.identity].name
	}
	a.mu.Unlock()
	if len(excess) == 0 {
		return false
	}
	log := logr.FromContextOrDiscard(ctx)
	var errs []error
	for i, d := range excess {
		ended := false
		for _, sa := range d.sas {
			ok, err := vici.DeleteSA(ctx, a.opts.VICI, sa.UniqueID)
			if err != nil {
				errs = append(errs, fmt.Errorf("deleting IKE_SA %s[%d] of %s: %w", sa.Name, sa.UniqueID, d.identity, err))
			}
			ended = ended || ok
		}
		if !ended {
			continue
		}
		sa := d.sas[len(d.sas)-1]
		limit := limits[i]
		log.Info("Replaced the oldest session of a user over its session limit", "identity", d.identity,
			"remote", sa.RemoteHost, "port", sa.RemotePort, "ikeSA", sa.UniqueID, "maxSessions", limit)
		if owner := owners[i]; owner != "" {
			msg := fmt.Sprintf("Session from %s port %d (IKE identity %s, virtual IPs %s) was ended with a DELETE: a new login exceeded maxSessions %d",
				sa.RemoteHost, sa.RemotePort, sa.RemoteID, strings.Join(sa.RemoteVIPs, ", "), limit)
			if err := a.userEvent(ctx, owner, v1alpha1.EventReasonSessionReplaced, msg); err != nil {
				errs = append(errs, fmt.Errorf("recording the replaced session of VPNUser %s: %w", owner, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		log.Error(err, "Enforcing session limits failed")
	}
	return true
}

// userEvent records a Normal Event on a VPNUser, as this pod's agent.
func (a *Agent) userEvent(ctx context.Context, name, reason, message string) error {
	var u v1alpha1.VPNUser
	if err := a.opts.Reader.Get(ctx, client.ObjectKey{Namespace: a.opts.Namespace, Name: name}, &u); err != nil {
		return err
	}
	now := metav1.NewTime(a.opts.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: a.opts.Namespace, GenerateName: name + "."},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: "VPNUser",
			Namespace: a.opts.Namespace, Name: name, UID: u.UID, ResourceVersion: u.ResourceVersion,
		},
		Reason: reason, Message: message, Type: corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: "ikegate-agent", Host: a.opts.Pod},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	return a.opts.Writer.Create(ctx, ev)
}
