package vici_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	govici "github.com/strongswan/govici/vici"

	"github.com/ikegate/ikegate/internal/vici"
	"github.com/ikegate/ikegate/internal/vici/vicitest"
)

func session(name, eapID string, children ...vici.ChildSA) vici.IKESA {
	return vici.IKESA{
		Name: name, Version: 2, State: "ESTABLISHED",
		LocalHost: "192.0.2.1", LocalPort: 4500, LocalID: "vpn.example.com",
		RemoteHost: "198.51.100.7", RemotePort: 4500, RemoteID: "198.51.100.7", RemoteEAPID: eapID,
		Proposal:    vici.Proposal{Encr: "AES_GCM_16", EncrKeySize: 256, PRF: "PRF_HMAC_SHA2_256", DHGroup: "CURVE_25519"},
		Established: 42 * time.Second,
		RemoteVIPs:  []string{"10.3.200.1"},
		Children:    children,
	}
}

func child(name string, id uint32) vici.ChildSA {
	return vici.ChildSA{
		Name: name, UniqueID: id, State: "INSTALLED", Mode: "TUNNEL",
		Proposal: vici.Proposal{Encr: "AES_GCM_16", EncrKeySize: 256},
		BytesIn:  1234, PacketsIn: 10, BytesOut: 5678, PacketsOut: 12,
		LocalTS: []string{"10.3.0.0/24"}, RemoteTS: []string{"10.3.200.1/32"},
	}
}

func TestListSAs(t *testing.T) {
	f := vicitest.NewFake()
	want := session("mobile", "alice@example.com", child("mobile", 7))
	want.UniqueID = f.AddSA(want)
	sas, err := vici.ListSAs(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]vici.IKESA{want}, sas); diff != "" {
		t.Errorf("ListSAs (-want +got):\n%s", diff)
	}
	if got := f.Calls()[0].Message; vici.Str(got, "noblock") != "yes" {
		t.Error("list-sas was sent without noblock")
	}
}

func TestTerminateSAEndsOnlyThatIdentity(t *testing.T) {
	f := vicitest.NewFake()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := vici.Watch(ctx, f, vici.WatchOptions{})
	if ev := <-events; ev.Kind != vici.EventConnected {
		t.Fatalf("First event = %s, want connected", ev.Kind)
	}
	f.AddSA(session("mobile", "alice@example.com"))
	bob := f.AddSA(session("mobile", "bob@example.com"))
	f.AddSA(session("staff", "alice@example.com"))

	start := time.Now()
	n, err := terminateIdentity(ctx, f, "alice@example.com")
	if err != nil || n != 2 {
		t.Fatalf("terminateIdentity = %d, %v; want 2, nil", n, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("terminateIdentity took %v", d)
	}
	left := f.SAs()
	if len(left) != 1 || left[0].UniqueID != bob {
		t.Errorf("SAs left = %+v, want bob's only", left)
	}
	for _, c := range f.Writes() {
		if vici.Str(c.Message, "force") != "yes" || vici.Str(c.Message, "timeout") != "-1" {
			t.Errorf("%s sent without force and timeout -1: %v", c, c.Message)
		}
	}
	for i := 0; i < 2; i++ {
		ev := <-events
		if ev.Kind != vici.EventIKEUpDown || ev.Up || ev.IKE == nil || ev.IKE.Identity() != "alice@example.com" {
			t.Errorf("Event %d = %+v, want alice's IKE_SA down", i, ev)
		}
	}

	if n, err := terminateIdentity(ctx, f, "nobody@example.com"); n != 0 || err != nil {
		t.Errorf("terminateIdentity of an identity without SAs = %d, %v", n, err)
	}
}

func TestTerminateSAReportsRefusal(t *testing.T) {
	f := vicitest.NewFake()
	f.AddSA(session("mobile", "alice@example.com"))
	f.FailOn("terminate", "", "terminating SA failed")
	if _, err := terminateIdentity(context.Background(), f, "alice@example.com"); err == nil {
		t.Fatal("terminateIdentity hid charon's refusal")
	}
}

func TestWatchResubscribesAfterRestart(t *testing.T) {
	f := vicitest.NewFake()
	ctx, cancel := context.WithCancel(context.Background())
	events := vici.Watch(ctx, f, vici.WatchOptions{Log: true, Retry: time.Millisecond})
	next := func() vici.Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("No event within 5s")
		}
		return vici.Event{}
	}
	if ev := next(); ev.Kind != vici.EventConnected {
		t.Fatalf("Event = %s, want connected", ev.Kind)
	}
	up := govici.NewMessage()
	_ = up.Set("up", "yes")
	sa := session("mobile", "alice@example.com", child("mobile", 3))
	sa.UniqueID = 5
	_ = up.Set("mobile", vicitest.IKESAMessage(sa, true))
	f.Emit("child-updown", up)
	ev := next()
	if ev.Kind != vici.EventChildUpDown || !ev.Up || ev.IKE.UniqueID != 5 || ev.Child == nil || ev.Child.UniqueID != 3 || ev.Child.BytesOut != 5678 {
		t.Errorf("child-updown = %+v", ev)
	}
	if len(ev.IKE.Children) != 0 {
		t.Error("child-updown's IKE_SA carries the child twice")
	}

	f.Restart()
	if ev := next(); ev.Kind != vici.EventDisconnected {
		t.Fatalf("Event after restart = %s, want disconnected", ev.Kind)
	}
	if ev := next(); ev.Kind != vici.EventConnected {
		t.Fatalf("Event after disconnected = %s, want connected", ev.Kind)
	}

	log := govici.NewMessage()
	for k, v := range map[string]string{"group": "IKE", "level": "1", "thread": "12", "ikesa-name": "mobile", "ikesa-uniqueid": "5", "msg": "IKE_SA mobile[5] established"} {
		_ = log.Set(k, v)
	}
	f.Emit("log", log)
	want := vici.LogEntry{Group: "IKE", Level: 1, Thread: 12, IKEName: "mobile", IKEUniqueID: 5, Message: "IKE_SA mobile[5] established"}
	if ev := next(); ev.Kind != vici.EventLog || ev.Log == nil || *ev.Log != want {
		t.Errorf("log = %+v, want %+v", ev.Log, want)
	}
	cancel()
	for range events {
	}
}

func TestParseRekeyAndUpdateEvents(t *testing.T) {
	oldSA, newSA := session("mobile", "alice@example.com"), session("mobile", "alice@example.com")
	oldSA.UniqueID, newSA.UniqueID = 1, 2
	pair := govici.NewMessage()
	_ = pair.Set("old", vicitest.IKESAMessage(oldSA, false))
	_ = pair.Set("new", vicitest.IKESAMessage(newSA, false))
	rekey := govici.NewMessage()
	_ = rekey.Set("mobile", pair)
	ev, ok := vici.ParseEvent(govici.Event{Name: "ike-rekey", Message: rekey})
	if !ok || ev.OldIKE.UniqueID != 1 || ev.IKE.UniqueID != 2 {
		t.Errorf("ike-rekey = %+v, %v", ev, ok)
	}

	cpair := govici.NewMessage()
	_ = cpair.Set("old", vicitest.ChildSAMessage(child("mobile", 3)))
	_ = cpair.Set("new", vicitest.ChildSAMessage(child("mobile", 4)))
	children := govici.NewMessage()
	_ = children.Set("mobile-3", cpair)
	sa := vicitest.IKESAMessage(newSA, false)
	_ = sa.Set("child-sas", children)
	crekey := govici.NewMessage()
	_ = crekey.Set("mobile", sa)
	ev, ok = vici.ParseEvent(govici.Event{Name: "child-rekey", Message: crekey})
	if !ok || ev.OldChild.UniqueID != 3 || ev.Child.UniqueID != 4 || ev.IKE.UniqueID != 2 {
		t.Errorf("child-rekey = %+v, %v", ev, ok)
	}

	upd := govici.NewMessage()
	for k, v := range map[string]string{"local-host": "192.0.2.1", "local-port": "4500", "remote-host": "203.0.113.9", "remote-port": "61000"} {
		_ = upd.Set(k, v)
	}
	_ = upd.Set("mobile", vicitest.IKESAMessage(newSA, false))
	ev, ok = vici.ParseEvent(govici.Event{Name: "ike-update", Message: upd})
	if !ok || ev.Endpoint == nil || ev.Endpoint.RemoteHost != "203.0.113.9" || ev.Endpoint.RemotePort != 61000 || ev.IKE.RemoteHost != "198.51.100.7" {
		t.Errorf("ike-update = %+v, %v", ev, ok)
	}

	if _, ok := vici.ParseEvent(govici.Event{Name: "ike-updown", Message: govici.NewMessage()}); ok {
		t.Error("An ike-updown without an IKE_SA was accepted")
	}
}

// terminateIdentity ends every IKE_SA whose peer authenticated as identity
// with vici.TerminateSA, as the agent's revocation does, and counts them.
func terminateIdentity(ctx context.Context, s vici.Session, identity string) (int, error) {
	sas, err := vici.ListSAs(ctx, s)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, sa := range sas {
		if sa.Identity() != identity && sa.RemoteID != identity {
			continue
		}
		ended, err := vici.TerminateSA(ctx, s, sa.UniqueID)
		if err != nil {
			errs = append(errs, err)
		}
		if ended {
			n++
		}
	}
	return n, errors.Join(errs...)
}
