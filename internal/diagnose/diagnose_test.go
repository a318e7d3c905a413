package diagnose_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/ikegate/ikegate/internal/diagnose"
)

func TestCleanStripsControlCharactersAndBounds(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "jimp@example.com", "jimp@example.com"},
		{"newline forges a log line", "a\n12:00:00 08[IKE] forged", "a?12:00:00 08[IKE] forged"},
		{"terminal escape", "\x1b[31mred", "?[31mred"},
		{"invalid UTF-8", "a\xffb", "a?b"},
		{"bidi override", "a\u202eb", "a?b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := diagnose.Clean(tc.in); got != tc.want {
				t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	long := strings.Repeat("é", 500)
	got := diagnose.Clean(long)
	if len(got) > diagnose.MaxString || !utf8.ValidString(got) || !strings.HasSuffix(got, "...") {
		t.Errorf("Clean of %d bytes = %d bytes %q", len(long), len(got), got)
	}
}

func TestParseLineFormats(t *testing.T) {
	for _, tc := range []struct {
		name, line    string
		group, msg    string
		thread, level int
		id            uint32
		conn          string
		stamped       bool
	}{
		{"file log with ike_name", "22:51:03 12[IKE] <mobile|3> EAP-MS-CHAPv2 verification failed, retry (1)", "IKE", "EAP-MS-CHAPv2 verification failed, retry (1)", 12, -1, 3, "mobile", true},
		{"file log before a config is selected", "22:51:03 06[CFG] <1> received proposals: IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "CFG", "received proposals: IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", 6, -1, 1, "", true},
		{"Debian default time format, log_level", "Jan  2 22:51:03 05[IKE1] received proposals unacceptable", "IKE", "received proposals unacceptable", 5, 1, 0, "", true},
		{"no time, no ike_name", "05[IKE] received proposals unacceptable", "IKE", "received proposals unacceptable", 5, -1, 0, "", false},
		{"syslog", "Jan  2 22:51:03 vpn charon: 05[IKE] <mobile|7> giving up after 5 retransmits", "IKE", "giving up after 5 retransmits", 5, -1, 7, "mobile", true},
		{"journal", "2024-01-02T22:51:03.123456+00:00 vpn charon-systemd[812]: no matching peer config found", "", "no matching peer config found", -1, -1, 0, "", true},
		{"swanctl", "[IKE] received AUTHENTICATION_FAILED notify error", "IKE", "received AUTHENTICATION_FAILED notify error", -1, -1, 0, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, ok := diagnose.ParseLine(tc.line)
			if !ok {
				t.Fatalf("ParseLine(%q) failed", tc.line)
			}
			if ev.Group != tc.group || ev.Msg != tc.msg || ev.Thread != tc.thread || ev.Level != tc.level || ev.IKESA != tc.id || ev.IKEName != tc.conn || ev.Time.IsZero() == tc.stamped {
				t.Errorf("ParseLine(%q) = %+v", tc.line, ev)
			}
		})
	}
	if _, ok := diagnose.ParseLine("not a charon line"); ok {
		t.Error("ParseLine accepted a line no logger of charon's prints")
	}
}

// alertBytes lays out an error_notify_msg_t as error_notify_listener.c
// fills it: htonl(type), then NUL-terminated strings in fixed fields.
func alertBytes(typ int, str, name, id, ip string) []byte {
	b := make([]byte, diagnose.AlertSize)
	binary.BigEndian.PutUint32(b, uint32(typ))
	copy(b[4:4+383], str)
	copy(b[388:388+63], name)
	copy(b[452:452+255], id)
	copy(b[708:708+59], ip)
	return b
}

func TestDecodeAlert(t *testing.T) {
	if diagnose.AlertSize != 768 {
		t.Fatalf("AlertSize = %d, want 4+384+64+256+60", diagnose.AlertSize)
	}
	a, err := diagnose.DecodeAlert(alertBytes(diagnose.AlertProposalMismatchIKE,
		"the received IKE_SA proposals did not match: IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "mobile", "evil\x1b[2J", "192.0.2.2[500]"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Type != diagnose.AlertProposalMismatchIKE || a.Connection != "mobile" || a.PeerID != "evil?[2J" || a.Peer != "192.0.2.2[500]" {
		t.Fatalf("DecodeAlert = %+v", a)
	}
	f, ok := diagnose.NewCorrelator(diagnose.Options{}).Alert(a)
	if !ok || f.Reason != diagnose.ReasonProposalMismatch || f.Phase != diagnose.PhaseIKESAInit || f.Remote != "192.0.2.2" ||
		len(f.Offered) != 1 || f.Offered[0] != "IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024" {
		t.Fatalf("Alert gave %+v, %v", f, ok)
	}
	if _, err := diagnose.DecodeAlert(make([]byte, 100)); err == nil {
		t.Error("DecodeAlert accepted a short message")
	}
}

// TestLogAndAlertReportOnce: charon raises an alert and logs the same
// failure; the Correlator returns one Failure, whichever comes first.
func TestLogAndAlertReportOnce(t *testing.T) {
	lines := []string{
		"10:00:00 05[IKE] <4> 192.0.2.2 is initiating an IKE_SA",
		"10:00:00 05[CFG] <4> received proposals: IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024",
		"10:00:00 05[CFG] <4> configured proposals: IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
		"10:00:00 05[IKE] <4> received proposals unacceptable",
	}
	c := diagnose.NewCorrelator(diagnose.Options{})
	n := 0
	for i, l := range lines {
		if i == 3 {
			a, _ := diagnose.DecodeAlert(alertBytes(diagnose.AlertProposalMismatchIKE, "the received IKE_SA proposals did not match: x", "", "", "192.0.2.2[500]"))
			f, ok := c.Alert(a)
			if !ok || len(f.Transforms) != 4 || len(f.Configured) != 1 {
				t.Fatalf("Alert did not join the logged attempt: %+v", f)
			}
			n++
		}
		ev, _ := diagnose.ParseLine(l)
		if _, ok := c.Observe(ev); ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d Failures for one attempt", n)
	}
}

// TestAnAlertJoinsTheAttemptOfItsIdentity: two users from one address;
// the alert about the first user's full pool comes after the second user
// connected, and must neither be taken for the second user nor rename
// its IKE_SA, whose later loss names the second user.
func TestAnAlertJoinsTheAttemptOfItsIdentity(t *testing.T) {
	lines := []string{
		"10:00:00 05[IKE] <5> 192.0.2.2 is initiating an IKE_SA",
		"10:00:00 05[IKE] <mobile|5> received EAP identity 'carl@example.com'",
		"10:00:00 05[IKE] <mobile|5> no virtual IP found for %any requested by 'carl@example.com'",
		"10:00:01 06[IKE] <7> 192.0.2.2 is initiating an IKE_SA",
		"10:00:01 06[IKE] <mobile|7> received EAP identity 'jimp@example.com'",
		"10:00:01 06[IKE] <mobile|7> IKE_SA mobile[7] established between 192.0.2.1[vpn.example.com]...192.0.2.2[192.0.2.2]",
	}
	c := diagnose.NewCorrelator(diagnose.Options{})
	var got []diagnose.Failure
	observe := func(l string) {
		ev, ok := diagnose.ParseLine(l)
		if !ok {
			t.Fatalf("Line not parsed: %s", l)
		}
		if f, ok := c.Observe(ev); ok {
			got = append(got, f)
		}
	}
	for _, l := range lines {
		observe(l)
	}
	a, _ := diagnose.DecodeAlert(alertBytes(diagnose.AlertVIPFailure, "allocating a virtual IP failed", "mobile", "carl@example.com", "192.0.2.2[4500]"))
	if f, ok := c.Alert(a); ok {
		got = append(got, f)
	}
	observe("10:00:05 07[ENC] <mobile|7> generating INFORMATIONAL request 0 [ ]")
	observe("10:00:09 07[IKE] <mobile|7> giving up after 2 retransmits")
	if len(got) != 2 {
		t.Fatalf("Failures %+v, want the pool's and the dead peer's", got)
	}
	if got[0].Reason != diagnose.ReasonPoolExhausted || got[0].RemoteID != "carl@example.com" {
		t.Errorf("First failure %s of %q, want PoolExhausted of carl", got[0].Reason, got[0].RemoteID)
	}
	if got[1].Reason != diagnose.ReasonPeerUnreachable || got[1].RemoteID != "jimp@example.com" || got[1].IKESA != 7 {
		t.Errorf("Second failure %s of %q (IKE_SA %d), want PeerUnreachable of jimp on IKE_SA 7", got[1].Reason, got[1].RemoteID, got[1].IKESA)
	}
}

// TestAnIKEProposalAlertSkipsAnAttemptPastIKESAINIT: a client at one
// address offered weak proposals, then another user logged in from there;
// the weak attempt's alert, read late, is not the second user's.
func TestAnIKEProposalAlertSkipsAnAttemptPastIKESAINIT(t *testing.T) {
	c := diagnose.NewCorrelator(diagnose.Options{})
	for _, l := range []string{
		"10:00:01 06[IKE] <6> 192.0.2.2 is initiating an IKE_SA",
		"10:00:01 06[ENC] <6> parsed IKE_AUTH request 1 [ IDi N(INIT_CONTACT) CERTREQ IDr CPRQ(ADDR) SA TSi TSr ]",
		"10:00:01 06[IKE] <mobile|6> received EAP identity 'ann@example.com'",
	} {
		ev, ok := diagnose.ParseLine(l)
		if !ok {
			t.Fatalf("Line not parsed: %s", l)
		}
		if f, ok := c.Observe(ev); ok {
			t.Fatalf("Failure %+v from a login in progress", f)
		}
	}
	a, _ := diagnose.DecodeAlert(alertBytes(diagnose.AlertProposalMismatchIKE, "the received IKE_SA proposals did not match: IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "", "", "192.0.2.2[500]"))
	f, ok := c.Alert(a)
	if !ok || f.Reason != diagnose.ReasonProposalMismatch {
		t.Fatalf("Alert gave %+v, %v; want a ProposalMismatch", f, ok)
	}
	if f.IKESA == 6 || f.RemoteID == "ann@example.com" {
		t.Errorf("The weak client's alert joined ann's IKE_SA %d (%q)", f.IKESA, f.RemoteID)
	}
}

func FuzzParseAndCorrelate(f *testing.F) {
	for _, s := range []string{
		"22:51:03 12[IKE] <mobile|3> EAP-MS-CHAPv2 verification failed, retry (1)",
		"22:51:03 06[CFG] <1> received proposals: IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024, IKE:UNKNOWN_4_99",
		"05[IKE] <2> received proposals unacceptable",
		"05[CFG] <2> looking for peer configs matching 192.0.2.1[vpn.example.com]...192.0.2.2[a]b]...c[d]",
		"05[IKE] <2> traffic selectors 10.0.0.0/8 === 0.0.0.0/0 unacceptable",
		"Jan  2 22:51:03 vpn charon: 05[ENC] <7> parsed INFORMATIONAL request 2 [ N(AUTH_FAILED) ]",
		"05[IKE] <9> no EAP key found for hosts 'vpn' - '\x1b]0;x\x07'",
	} {
		f.Add(s, uint8(diagnose.AlertProposalMismatchESP))
	}
	f.Fuzz(func(t *testing.T, line string, alertType uint8) {
		c := diagnose.NewCorrelator(diagnose.Options{MaxAttempts: 4})
		var fs []diagnose.Failure
		for _, l := range strings.Split(line, "\n") {
			if ev, ok := diagnose.ParseLine(l); ok {
				if f, ok := c.Observe(ev); ok {
					fs = append(fs, f)
				}
			}
		}
		a, err := diagnose.DecodeAlert(alertBytes(int(alertType), line, line, line, line))
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := c.Alert(a); ok {
			fs = append(fs, f)
		}
		for _, f := range fs {
			for _, s := range append([]string{f.Connection, f.Remote, f.RemoteID, f.LocalID, f.Detail}, append(f.Offered, f.Configured...)...) {
				if len(s) > 2*diagnose.MaxString || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
					t.Fatalf("Unclean string %q in %+v", s, f)
				}
			}
			if len(f.Offered) > diagnose.MaxValues || len(f.Configured) > diagnose.MaxValues {
				t.Fatalf("Unbounded values in %+v", f)
			}
		}
	})
}

// TestProposalClassesOf6x: strongSwan 6 prints additional key exchanges as
// "KE%d_%N" and NONE as KE_NONE (proposal.c print_alg, key_exchange.c).
func TestProposalClassesOf6x(t *testing.T) {
	for _, tc := range []struct {
		name, received, configured string
		want                       []string
	}{
		{"ML-KEM differs", "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256/KE1_ML_KEM_768",
			"IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256/KE1_ML_KEM_1024", []string{"additional key exchange 1"}},
		{"optional additional exchange", "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256",
			"IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256/KE1_ML_KEM_768/KE1_KE_NONE", nil},
		{"classic DH group differs too", "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/MODP_2048/KE1_ML_KEM_768",
			"IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256/KE1_ML_KEM_1024", []string{diagnose.TransformDH, "additional key exchange 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := diagnose.NewCorrelator(diagnose.Options{})
			var got []string
			found := false
			for _, l := range []string{"<1> 192.0.2.2 is initiating an IKE_SA", "<1> received proposals: " + tc.received,
				"<1> configured proposals: " + tc.configured, "<1> received proposals unacceptable"} {
				ev, _ := diagnose.ParseLine("05[CFG] " + l)
				if f, ok := c.Observe(ev); ok {
					got, found = f.Transforms, true
				}
			}
			if !found {
				t.Fatal("No Failure for unacceptable proposals")
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Transforms = %q, want %q", got, tc.want)
			}
		})
	}
}

// BenchmarkObserve replays the real fixtures line by line: the cost of one
// log line to the agent.
func BenchmarkObserve(b *testing.B) {
	var evs []diagnose.LogEvent
	files, _ := filepath.Glob(filepath.Join("testdata", "*.log"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if ev, ok := diagnose.ParseLine(l); ok {
				evs = append(evs, ev)
			}
		}
	}
	c := diagnose.NewCorrelator(diagnose.Options{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Observe(evs[i%len(evs)])
	}
}

// TestVICIEvents: VICI's log events carry the IKE_SA's unique id and name
// as fields (vici_logger.c), "(unnamed)" until a peer config is selected.
func TestVICIEvents(t *testing.T) {
	c := diagnose.NewCorrelator(diagnose.Options{})
	var got []diagnose.Failure
	for _, ev := range []diagnose.LogEvent{
		{Group: "IKE", Level: 0, Thread: 9, IKESA: 5, IKEName: "(unnamed)", Msg: "192.0.2.9 is initiating an IKE_SA"},
		{Group: "CFG", Level: 1, Thread: 9, IKESA: 5, IKEName: "(unnamed)", Msg: "looking for peer configs matching 192.0.2.1[vpn.example.com]...192.0.2.9[192.0.2.9]"},
		{Group: "CFG", Level: 1, Thread: 9, IKESA: 5, IKEName: "mobile", Msg: "selected peer config 'mobile'"},
		{Group: "IKE", Level: 1, Thread: 9, IKESA: 5, IKEName: "mobile", Msg: "no virtual IP found for %any requested by 'jimp@example.com'"},
		{Group: "IKE", Level: 1, Thread: 9, IKESA: 5, IKEName: "mobile", Msg: "no virtual IP found, sending INTERNAL_ADDRESS_FAILURE"},
	} {
		if f, ok := c.Observe(ev); ok {
			got = append(got, f)
		}
	}
	if len(got) != 1 {
		t.Fatalf("Got %d Failures, want 1: %+v", len(got), got)
	}
	if f := got[0]; f.Reason != diagnose.ReasonPoolExhausted || f.Connection != "mobile" || f.IKESA != 5 || f.Remote != "192.0.2.9" || f.RemoteID != "jimp@example.com" {
		t.Errorf("Failure = %+v", f)
	}
}

// TestCorrelatorStaysBounded: a long log of attempts (ids or none) keeps
// at most MaxAttempts IKE_SAs in memory, and still diagnoses new ones.
func TestCorrelatorStaysBounded(t *testing.T) {
	c := diagnose.NewCorrelator(diagnose.Options{MaxAttempts: 8})
	n := 0
	for i := 1; i <= 10000; i++ {
		for _, id := range []uint32{uint32(i), 0} {
			remote := fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)
			for _, msg := range []string{remote + " is initiating an IKE_SA", "received proposals unacceptable"} {
				if _, ok := c.Observe(diagnose.LogEvent{IKESA: id, Thread: 1, Msg: msg}); ok {
					n++
				}
			}
		}
	}
	if n != 20000 {
		t.Errorf("%d Failures from 20000 failed attempts", n)
	}
	if attempts, order, remotes := c.Sizes(); attempts > 8 || order > 2*8+1 || remotes > 8 {
		t.Errorf("Bookkeeping grew: %d attempts, %d order entries, %d remotes; bound 8", attempts, order, remotes)
	}
}

// TestDisabledAndExpiredUsersAreSaidSo: charon logs the same "no EAP key"
// for a disabled, an expired and an unknown user; the Failure of a known
// user names its state, not the missing password.
func TestDisabledAndExpiredUsersAreSaidSo(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "unknown-identity.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ state, word string }{
		{diagnose.ReasonDisabled, "disabled"},
		{diagnose.ReasonExpired, "expired"},
	} {
		t.Run(tc.state, func(t *testing.T) {
			sc := scenario{opts: diagnose.Options{UserState: func(string) string { return tc.state }}}
			got := replay(t, sc, string(b))
			if len(got) != 1 {
				t.Fatalf("Failures = %+v, want one", got)
			}
			f := got[0]
			if f.Reason != tc.state || !strings.Contains(f.Detail, tc.word) || strings.Contains(f.Detail, "password") {
				t.Errorf("Failure %s: %q, want reason %s and a detail saying %q without a password", f.Reason, f.Detail, tc.state, tc.word)
			}
			if adv := f.Advice(); !strings.Contains(adv, "VPNUser nobody@example.com") {
				t.Errorf("Advice %q does not name the user", adv)
			}
		})
	}
}
