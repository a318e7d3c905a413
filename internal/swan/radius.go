package swan

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// EAPRADIUS configures charon's eap-radius plugin in strongswan.conf. The
// servers and their shared secrets are not part of it: a ConfigMap is no
// place for secrets, and the servers change without a restart. They live in
// files that the gateway's agent writes at run time (RenderRADIUSServers)
// into a directory shared with charon, which strongswan.conf includes inside
// the plugin's section; charon re-reads them on the VICI command
// reload-settings, which runs the plugin's reload and rebuilds its server list.
type EAPRADIUS struct {
	// Accounting sends RADIUS accounting records. charon reads it only when
	// the plugin starts, so it belongs here and not in the servers file.
	Accounting bool
	// ServersInclude is the absolute glob of the servers files. A glob that
	// matches nothing (the agent has not written yet) leaves the plugin
	// without servers; charon starts all the same.
	ServersInclude string
	// ClassGroup makes each Class attribute of an Access-Accept a group of
	// the user (class_group; eap_radius.c process_class adds it to the
	// IKE_SA's remote auth as AUTH_RULE_GROUP, skipping values of 44 bytes
	// or more), which the connections' remote groups then match: how the
	// agent's RADIUS server (AcceptedUser.Group) puts a user on its pool
	// group's connection. Off for external servers, whose Class values are
	// theirs.
	ClassGroup bool
}

func (r *EAPRADIUS) validate() error {
	if r == nil {
		return nil
	}
	if !strings.HasPrefix(r.ServersInclude, "/") {
		return fmt.Errorf("eap-radius servers include %q is not absolute", r.ServersInclude)
	}
	// An include pattern ends at white space, '#' or '}'.
	if strings.ContainsAny(r.ServersInclude, " \t\r\n{}#\"\\") {
		return fmt.Errorf("eap-radius servers include %q contains strongswan.conf syntax", r.ServersInclude)
	}
	return nil
}

func (r *EAPRADIUS) render(w *confWriter) {
	if r == nil {
		return
	}
	w.open("eap-radius")
	// Priority 2 loads the plugin before those with "yes" (1), vici among
	// them. charon asks its address providers in the order they registered
	// (attribute_manager.c acquire_address takes the first answer), and
	// each plugin registers its own when loaded, so eap-radius's comes
	// before vici's: in "pools = radius, <vici pools>" a Framed-IP-Address
	// wins, and a user the server sends none draws from the vici pools
	// (eap_radius_provider.c acquire_address answers only for an IKE_SA
	// whose Access-Accept carried an address).
	w.kv("load", "2")
	w.kv("accounting", yesNo(r.Accounting))
	if r.ClassGroup {
		w.kv("class_group", "yes")
	}
	w.line("include " + r.ServersInclude)
	w.close()
}

// RADIUSServer is one server of charon's eap-radius plugin with its shared
// secret read from its Secret.
type RADIUSServer struct {
	Name          string
	Address       string
	AuthPort      int
	AcctPort      int
	Secret        []byte
	NASIdentifier string
	// Sockets is how many requests charon keeps in flight to the server
	// at once (eap-radius sockets); 0 keeps charon's default, 1.
	Sockets int
}

// Ports the API defaults to; Resources read offline may lack the defaults.
const (
	RADIUSAuthPort = 1812
	RADIUSAcctPort = 1813
)

// sectionName is what charon's settings parser takes as a section name.
var sectionName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// RADIUSServers returns the RADIUS servers of an EAPRADIUS gateway with
// their shared secrets. Like Build, it leaves out what it cannot complete:
// a server whose secret is missing, empty or unusable is reported as a
// Problem on the gateway and not returned. Other gateways yield nothing.
func RADIUSServers(gw *v1alpha1.VPNGateway, secrets map[string]map[string][]byte) ([]RADIUSServer, []Problem) {
	r := gw.Spec.ClientAuth.RADIUS
	if !gw.Spec.UsesRADIUS() {
		return nil, nil
	}
	var (
		out      []RADIUSServer
		problems []Problem
	)
	problem := func(reason, format string, args ...any) {
		problems = append(problems, Problem{Reason: reason, Kind: KindVPNGateway, Name: gw.Name, Message: fmt.Sprintf(format, args...)})
	}
	for _, srv := range r.Servers {
		ref := srv.SecretRef
		what := fmt.Sprintf("clientAuth.radius.servers[%s].secretRef", srv.Name)
		data, ok := secrets[ref.Name]
		secret := data[ref.Key]
		switch {
		case !sectionName.MatchString(srv.Name):
			problem(v1alpha1.ReasonInvalidSpec, "clientAuth.radius.servers: name %q is not a lower-case DNS label", srv.Name)
			continue
		case !ok:
			problem(v1alpha1.ReasonSecretNotFound, "%s: Secret %s not found", what, ref.Name)
			continue
		case secret == nil:
			problem(v1alpha1.ReasonSecretKeyNotFound, "%s: Secret %s has no key %q", what, ref.Name, ref.Key)
			continue
		case len(secret) == 0:
			problem(v1alpha1.ReasonSecretInvalid, "%s: key %q of Secret %s is empty", what, ref.Key, ref.Name)
			continue
		case bytes.IndexByte(secret, 0) >= 0:
			// charon holds the secret as a C string.
			problem(v1alpha1.ReasonSecretInvalid, "%s: key %q of Secret %s contains a NUL byte", what, ref.Key, ref.Name)
			continue
		}
		s := RADIUSServer{
			Name:          srv.Name,
			Address:       srv.Address,
			AuthPort:      int(srv.AuthPort),
			AcctPort:      int(srv.AccountingPort),
			Secret:        secret,
			NASIdentifier: r.NASIdentifier,
		}
		if s.AuthPort == 0 {
			s.AuthPort = RADIUSAuthPort
		}
		if s.AcctPort == 0 {
			s.AcctPort = RADIUSAcctPort
		}
		out = append(out, s)
	}
	return out, problems
}

// RenderRADIUSServers prints servers as the body of charon's eap-radius
// section: the file the agent writes where EAPRADIUS.ServersInclude points.
// Every value is quoted, so no address, identifier or secret can end its
// line or section. The output holds the shared secrets: never log it.
// Servers come from RADIUSServers (names are section names, secrets hold no
// NUL byte); the output depends only on them, in their order.
func RenderRADIUSServers(servers []RADIUSServer) string {
	w := &confWriter{}
	w.line("# eap-radius servers written by the ikegate agent; charon reads them on reload-settings.")
	w.open("servers")
	for _, s := range servers {
		w.open(s.Name)
		w.kv("address", confString(s.Address))
		w.kv("secret", confString(string(s.Secret)))
		w.kv("auth_port", strconv.Itoa(s.AuthPort))
		w.kv("acct_port", strconv.Itoa(s.AcctPort))
		if s.NASIdentifier != "" {
			w.kv("nas_identifier", confString(s.NASIdentifier))
		}
		if s.Sockets > 0 {
			w.kv("sockets", strconv.Itoa(s.Sockets))
		}
		w.close()
	}
	w.close()
	return w.b.String()
}

// confString makes s a quoted strongswan.conf string, byte for byte (a
// secret need not be UTF-8): the parser drops a raw CR and
// takes a backslash as an escape, so both are escaped along with the quote
// and the other line breaks.
func confString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
