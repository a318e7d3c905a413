// Package radiusd is a RADIUS server for charon's eap-radius plugin that
// answers EAP-MSCHAPv2 itself, against NT hashes held in memory (Users,
// e.g. a Map). charon then holds no user secrets: adding, changing or
// removing a user is a map update, seen by the next login, and a charon
// restart has nothing per user to reload.
//
// # Protocol
//
// Each login is three Access-Request/reply round trips, tied together by a
// State attribute the server picks:
//
//  1. EAP-Response/Identity -> Access-Challenge with an EAP-MSCHAPv2
//     Challenge (a random 16-octet authenticator challenge);
//  2. the peer's MS-CHAPv2 Response -> verified against Users.NTHash of
//     the EAP identity (the name in the response must be that identity);
//     Access-Challenge with an MS-CHAPv2 Success carrying the authenticator
//     response, or Access-Reject with EAP-Failure;
//  3. the peer's Success acknowledgement -> Access-Accept with
//     EAP-Success, MS-MPPE-Recv-Key and MS-MPPE-Send-Key (charon joins
//     them into the MSK the IKE AUTH payloads are computed with), and the
//     user's Policy: Framed-IP-Address, Class. A user removed between 2
//     and 3 is refused.
//
// Accounting-Requests (Start, Interim-Update, Stop) on the same port are
// checked against the secret (their Request Authenticator), handed to
// Options.Accounting and acknowledged, so the caller learns of sessions as
// charon opens and closes them.
//
// Every Access-Request must carry a valid Message-Authenticator (HMAC-MD5 with
// the shared secret) and every reply carries one; requests that fail are
// dropped before any state is allocated. Logins in progress are bounded
// in all and per source address and expire (Options.MaxPending,
// MaxPendingPerSource, PendingTTL), so a flood cannot grow memory; a
// retransmitted request gets the reply it had before.
//
// The shared secret and the NT hashes are never logged; identities and
// outcomes are, at V(1).
//
// # Configuring charon
//
// The server listens on a loopback address of the pod (Options.Addr, e.g.
// 127.0.0.1:18120; New refuses any other) with a per-pod secret the
// caller generates and writes, mode 0600, where only charon reads it. In
// strongswan.conf (internal/swan: Settings.EAPRADIUS, and the servers file
// RenderRADIUSServers writes for its include):
//
//	charon.plugins.eap-radius {
//	  accounting = yes           # Start/Stop to Options.Accounting
//	  servers {
//	    agent {
//	      address = 127.0.0.1
//	      auth_port = 18120
//	      acct_port = 18120      # the same socket answers accounting
//	      secret = "<per-pod secret>"
//	      # sockets = 1 (default) keeps one request in flight; raise it
//	      # for many logins at once.
//	    }
//	  }
//	  load = 2                   # before vici: see Policy.Address below
//	  class_group = yes          # make Policy.Class a group of the user,
//	                             # for connections with remote.groups
//	}
//
// and in swanctl.conf the connection's remote authentication:
//
//	remote {
//	  auth = eap-radius
//	  eap_id = %any              # charon asks the client for its identity
//	}
//
// For Policy.Address the connection's pools must include "radius". charon
// asks its address providers in the order they were registered
// (attribute_manager.c acquire_address), each plugin registering its own
// when it loads; with the plugins' default priority vici's comes before
// eap-radius's, and in "pools = radius, mobile4" the vici pool mobile4
// would win over a Framed-IP-Address. load = 2 loads eap-radius first
// (swan.EAPRADIUS renders it), so the Framed-IP-Address wins and a user
// without one draws from mobile4.
package radiusd
