package proposals_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/ikegate/ikegate/internal/proposals"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/poll"
)

var selectedRE = regexp.MustCompile(`selected proposal: ((?:IKE|ESP):\S+)`)

// TestNegotiateAgainstCharon checks the selection model against charon
// itself: a gateway charon offers each preset, a client charon proposes what
// each client family proposes, and the proposals charon selects (IKE_SA,
// CHILD_SA with IKE_AUTH, and the CHILD_SA rekeyed with CREATE_CHILD_SA)
// must be what Negotiate, NegotiateESPInitial and NegotiateESP predict.
// It also proves that charon 5.9 accepts every keyword the presets emit.
func TestNegotiateAgainstCharon(t *testing.T) {
	gwNS := netns.New(t, "prgw")
	clNS := netns.New(t, "prcl")
	netns.Veth(t, gwNS, clNS, "192.0.2.1/24", "192.0.2.2/24")
	// kernel-libipsec routes a CHILD_SA from a local address inside its local
	// traffic selector, and refuses a route that would swallow the IKE
	// traffic: both ends tunnel between networks of their own.
	gwNS.AddLoopbackAddr(t, "10.3.0.1/24")
	clNS.AddLoopbackAddr(t, "10.9.0.2/32")
	// IKE and CHILD_SA negotiation only; charon logs the selections at level 1.
	levels := map[string]int{"default": 1, "cfg": 1, "ike": 1, "knl": 1}
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true, LogLevels: levels})
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Userspace: true, Client: true, LogLevels: levels})

	for _, p := range Presets {
		for _, pfs := range []DHGroup{"", ECP256} {
			ike, err := IKE(p)
			if err != nil {
				t.Fatal(err)
			}
			esp, err := ESP(p, pfs)
			if err != nil {
				t.Fatal(err)
			}
			if out, err := gw.LoadAll(gatewayConf(ike, esp), nil); err != nil {
				t.Fatalf("Preset %s (PFS %q) rejected by charon: %v\n%s", p, pfs, err, out)
			}
			for _, c := range ClientFamilies {
				t.Run(fmt.Sprintf("%s/%s/pfs=%s", p, c.Name, pfs), func(t *testing.T) {
					checkAgainstCharon(t, cl, c, ike, esp)
				})
			}
		}
	}
}

func checkAgainstCharon(t *testing.T, cl *charontest.Charon, c ClientFamily, ike, esp []string) {
	if out, err := cl.LoadAll(clientConf(c), nil); err != nil {
		t.Fatalf("Client proposals rejected by charon: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		_, _ = cl.Swanctl("--terminate", "--ike", "home", "--timeout", "5")
	})
	wantIKE, ikeOK := Negotiate(ike, c.IKE)
	wantInit, initOK := NegotiateESPInitial(esp, c.ESP)
	wantRekey, rekeyOK := NegotiateESP(esp, c.ESP)

	out, initErr := cl.Swanctl("--initiate", "--child", "home", "--timeout", "10")
	var sel []string
	for _, m := range selectedRE.FindAllStringSubmatch(out, -1) {
		ps, err := ParseCharon(m[1])
		if err != nil {
			t.Fatalf("Parsing charon's selection: %v", err)
		}
		sel = append(sel, ps[0].String())
	}
	if !ikeOK {
		if initErr == nil || len(sel) > 0 {
			t.Fatalf("Model rejects the IKE proposals, charon selected %v:\n%s", sel, out)
		}
		return
	}
	if len(sel) == 0 || sel[0] != wantIKE {
		t.Fatalf("IKE: charon selected %v, model %q:\n%s", sel, wantIKE, out)
	}
	if !initOK {
		if initErr == nil || len(sel) > 1 {
			t.Fatalf("Model rejects the initial CHILD_SA, charon selected %v:\n%s", sel, out)
		}
		return
	}
	if initErr != nil || len(sel) < 2 || sel[1] != wantInit {
		t.Fatalf("Initial CHILD_SA: charon selected %v (%v), model %q:\n%s", sel, initErr, wantInit, out)
	}

	before := strings.Count(cl.Log(), "selected proposal: ESP:")
	failedBefore := strings.Count(cl.Log(), "NO_PROPOSAL_CHOSEN")
	if _, err := cl.Swanctl("--rekey", "--child", "home"); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, "Rekey", 10*time.Second, func() error {
		log := cl.Log()
		if m := selectedRE.FindAllStringSubmatch(log, -1); strings.Count(log, "selected proposal: ESP:") > before {
			ps, err := ParseCharon(m[len(m)-1][1])
			if err != nil {
				t.Fatal(err)
			}
			if got := ps[0].String(); !rekeyOK || got != wantRekey {
				t.Fatalf("Rekey: charon selected %q, model %q (ok=%v)", got, wantRekey, rekeyOK)
			}
			return nil
		}
		if strings.Count(log, "NO_PROPOSAL_CHOSEN") > failedBefore {
			if rekeyOK {
				t.Fatalf("Rekey: charon found no proposal, model %q", wantRekey)
			}
			return nil
		}
		return errors.New("neither a selection nor a failure logged")
	}, poll.Every(20*time.Millisecond))
}

func gatewayConf(ike, esp []string) string {
	return `connections {
  gw {
    version = 2
    proposals = ` + strings.Join(ike, ", ") + `
    local {
      auth = psk
      id = gw.example.com
    }
    remote {
      auth = psk
    }
    children {
      gw {
        local_ts = 10.3.0.0/24
        remote_ts = 10.9.0.0/24
        esp_proposals = ` + strings.Join(esp, ", ") + `
      }
    }
  }
}
secrets {
  ike-test {
    secret = proposal-test-only
  }
}
`
}

func clientConf(c ClientFamily) string {
	return `connections {
  home {
    version = 2
    remote_addrs = 192.0.2.1
    keyingtries = 1
    proposals = ` + strings.Join(c.IKE, ", ") + `
    local {
      auth = psk
      id = client.example.com
    }
    remote {
      auth = psk
      id = gw.example.com
    }
    children {
      home {
        local_ts = 10.9.0.2/32
        remote_ts = 10.3.0.0/24
        esp_proposals = ` + strings.Join(c.ESP, ", ") + `
      }
    }
  }
}
secrets {
  ike-test {
    secret = proposal-test-only
  }
}
`
}
