package swan_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	. "github.com/ikegate/ikegate/internal/swan"
)

// deltaWorld is a gateway with four pool groups whose users change one at
// a time in every way the checks look at.
type deltaWorld struct {
	rnd    *rand.Rand
	in     Resources
	hashes map[SecretKeyRef][]byte
}

func newDeltaWorld(seed uint64) *deltaWorld {
	w := &deltaWorld{rnd: rand.New(rand.NewPCG(seed, 18)), hashes: map[SecretKeyRef][]byte{}}
	w.in = Resources{Gateway: newGateway(), Now: testNow, Secrets: map[string]map[string][]byte{}, IndexUsers: true}
	w.in.Pools = []v1alpha1.MobilePool{
		newPool("engineering", "10.3.202.0/24", selecting("eng")),
		newPool("sales", "10.3.201.0/24", selecting("sales")),
		newPool("staff", "10.3.200.0/24"),
		newPool("europe", "10.3.203.0/24", func(p *v1alpha1.MobilePool) {
			p.Spec.UserSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"region": "eu"}}
		}),
	}
	w.in.PasswordHashes = w.hashes
	return w
}

func (w *deltaWorld) pick(options ...string) string { return options[w.rnd.IntN(len(options))] }

// user makes a random state of the user named name.
func (w *deltaWorld) user(name string) v1alpha1.VPNUser {
	// Mostly an identity of its own; now and then one another user may
	// claim too (spelt alike or in another case), the gateway's own, a
	// pattern or none.
	id := name + "@example.com"
	if w.rnd.IntN(3) == 0 {
		id = w.pick("a@example.com", "A@example.com", "b@example.com", "c@example.com", "vpn.example.com", "*@example.com", "")
	}
	u := newUser(name, id)
	switch w.rnd.IntN(8) {
	case 0:
		u.Labels = map[string]string{"team": "eng"}
	case 1:
		u.Labels = map[string]string{"team": "sales"}
	case 2:
		u.Labels = map[string]string{"team": "eng", "region": "eu"}
	case 3:
		u.Labels = map[string]string{"region": "eu"}
	}
	u.Spec.Disabled = w.rnd.IntN(8) == 0
	switch w.rnd.IntN(8) {
	case 0:
		u.Spec.ExpiresAt = &metav1.Time{Time: testNow.Add(-time.Hour)}
	case 1:
		u.Spec.ExpiresAt = &metav1.Time{Time: testNow.Add(time.Hour)}
	}
	if w.rnd.IntN(10) == 0 {
		u.Spec.StaticAddress = v1alpha1.IPAddress(fmt.Sprintf("10.3.200.%d", 10+w.rnd.IntN(3)))
	}
	if w.rnd.IntN(20) == 0 {
		u.Spec.GatewayRef.Name = "other"
	}
	switch w.rnd.IntN(10) {
	case 0:
		u.Spec.PasswordSecretRef = nil
	case 1:
		// A key whose hash has not arrived and whose Secret is not there.
		u.Spec.PasswordSecretRef.Key = "missing"
	default:
		w.setHash(SecretKeyRef{Name: name, Key: "password"})
	}
	return u
}

// setHash gives a reference a new hash, now and then one of a wrong length.
func (w *deltaWorld) setHash(ref SecretKeyRef) {
	h := make([]byte, 16)
	if w.rnd.IntN(12) == 0 {
		h = h[:7]
	}
	for i := range h {
		h[i] = byte(w.rnd.IntN(256))
	}
	w.hashes[ref] = h
}

func (w *deltaWorld) set(u v1alpha1.VPNUser) {
	i := slices.IndexFunc(w.in.Users, func(x v1alpha1.VPNUser) bool { return x.Name == u.Name })
	if i < 0 {
		w.in.Users = append(w.in.Users, u)
		return
	}
	w.in.Users[i] = u
}

func (w *deltaWorld) remove(name string) {
	w.in.Users = slices.DeleteFunc(w.in.Users, func(x v1alpha1.VPNUser) bool { return x.Name == name })
}

func (w *deltaWorld) get(name string) *v1alpha1.VPNUser {
	i := slices.IndexFunc(w.in.Users, func(x v1alpha1.VPNUser) bool { return x.Name == name })
	if i < 0 {
		return nil
	}
	u := w.in.Users[i]
	return &u
}

// TestUserIndexAgreesWithBuild changes users one at a time, in random
// ways, and after every change the index must say exactly what a whole
// Build of the gateway says: the served users, every problem, and, when it
// took the change, a model that did not change. A change it refuses is
// followed by the Build's own index, as the agent does.
func TestUserIndexAgreesWithBuild(t *testing.T) {
	var taken, refused int
	for seed := range uint64(6) {
		w := newDeltaWorld(seed)
		for i := range 12 {
			w.set(w.user(fmt.Sprintf("u%02d", i)))
		}
		res := Build(w.in)
		x := res.Index
		if x == nil {
			t.Fatalf("Build of an EAP-MSCHAPv2 gateway with IndexUsers returned no index: %v", res.Problems)
		}
		for step := range 400 {
			name := fmt.Sprintf("u%02d", w.rnd.IntN(14))
			var changed []string
			switch w.rnd.IntN(6) {
			case 0:
				w.remove(name)
				changed = []string{name}
			case 1:
				// A password changes: its users are decided again.
				ref := SecretKeyRef{Name: name, Key: "password"}
				w.setHash(ref)
				changed = x.Users(ref)
			default:
				w.set(w.user(name))
				changed = []string{name}
			}
			full := Build(w.in)
			ok := true
			for _, n := range changed {
				if _, ok = x.Change(n, w.get(n), UserInputs{PasswordHashes: w.hashes, Secrets: w.in.Secrets, Now: w.in.Now}); !ok {
					break
				}
			}
			if !ok {
				refused++
				x = full.Index
				res = full
				continue
			}
			taken++
			where := fmt.Sprintf("seed %d step %d (%v)", seed, step, changed)
			if got, want := sortedUsers(x.Accepted()), full.Users; !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: the index serves\n%v\nBuild serves\n%v", where, got, want)
			}
			if got, want := sortedProblems(x.Problems()), full.Problems; !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: the index reports\n%v\nBuild reports\n%v", where, got, want)
			}
			if Render(res.Model, RenderOptions{}) != Render(full.Model, RenderOptions{}) {
				t.Fatalf("%s: the index took a change that changed the model", where)
			}
		}
	}
	t.Logf("%d changes decided by the index, %d needed a whole Build", taken, refused)
	// Most changes in this world are the index's to decide; if it refused
	// nearly all of them, it would prove nothing.
	if taken < refused {
		t.Errorf("The index took %d changes and refused %d; want it to take most", taken, refused)
	}
	if refused == 0 {
		t.Error("The index refused no change; shared identities, static addresses and emptied groups must go to Build")
	}
}

// TestBuildIndexOnlyWhenAsked: the manager's Builds carry no index, nor
// does a gateway whose users the agent does not check.
func TestBuildIndexOnlyWhenAsked(t *testing.T) {
	in := twoGroups(t)
	if Build(in).Index != nil {
		t.Error("Build without IndexUsers returned an index")
	}
	in.IndexUsers = true
	if Build(in).Index == nil {
		t.Error("Build with IndexUsers of an EAP-MSCHAPv2 gateway returned no index")
	}
	in.Gateway.Spec.ClientAuth.Method = v1alpha1.ClientAuthEAPRADIUS
	if Build(in).Index != nil {
		t.Error("Build of an EAPRADIUS gateway returned an index")
	}
}

func sortedUsers(u []AcceptedUser) []AcceptedUser {
	slices.SortFunc(u, func(a, b AcceptedUser) int { return cmp.Compare(a.Name, b.Name) })
	return u
}

func sortedProblems(p []Problem) []Problem {
	slices.SortFunc(p, func(x, y Problem) int {
		return cmp.Or(cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Name, y.Name), cmp.Compare(x.Reason, y.Reason), cmp.Compare(x.Message, y.Message))
	})
	return p
}

// BenchmarkUserIndexChange is the agent's work for one more user at
// gateway sizes, decided by the index, beside a whole Build of the same
// users (the path every change took before): the index's cost must not
// grow with the users.
func BenchmarkUserIndexChange(b *testing.B) {
	for _, n := range []int{10, 10000, 100000} {
		in := manyUsers(n)
		in.IndexUsers = true
		in.PasswordHashes = map[SecretKeyRef][]byte{}
		for _, u := range in.Users {
			r := u.Spec.PasswordSecretRef
			in.PasswordHashes[SecretKeyRef{Name: r.Name, Key: r.Key}] = make([]byte, 16)
		}
		in.Secrets = nil
		res := Build(in)
		if res.Index == nil || len(res.Users) != n {
			b.Fatalf("%d users: index %v, %d served", n, res.Index != nil, len(res.Users))
		}
		extra := newUser("extra", "extra@example.com")
		in.PasswordHashes[SecretKeyRef{Name: "extra", Key: "password"}] = make([]byte, 16)
		inputs := UserInputs{PasswordHashes: in.PasswordHashes, Now: in.Now}
		b.Run(fmt.Sprintf("users=%d/index", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if c, ok := res.Index.Change("extra", &extra, inputs); !ok || c.After == nil {
					b.Fatalf("adding a user: taken %v, served %v", ok, c.After != nil)
				}
				if _, ok := res.Index.Change("extra", nil, inputs); !ok {
					b.Fatal("removing the user was refused")
				}
			}
		})
		b.Run(fmt.Sprintf("users=%d/build", n), func(b *testing.B) {
			with := in
			with.Users = append(slices.Clip(in.Users), extra)
			for b.Loop() {
				Build(with)
			}
		})
	}
}
