// Package swan holds ikegate's model of what one charon daemon holds: connections,
// address pools, shared secrets, certificates, keys and authorities. The model is
// pure data with deterministic order; internal/vici diffs and applies it over VICI,
// and the renderer prints it as swanctl.conf for humans, goldens and GitOps previews.
package swan

import "time"

// Model is the complete desired (or observed) configuration of one charon.
// Every slice is sorted by its element's Name so that two models built from the
// same inputs are deeply equal and render byte-for-byte the same.
type Model struct {
	Connections []Connection
	Pools       []Pool
	Secrets     []Secret
	Certs       []Cert
	Keys        []PrivateKey
	Authorities []Authority
}

// Connection is one IKE peer configuration (VICI load-conn, swanctl connections.<name>).
type Connection struct {
	Name string
	// Version is the IKE major version: 0 (any), 1 or 2.
	Version     int
	LocalAddrs  []string
	RemoteAddrs []string
	// Proposals are IKE proposals as strongSwan tokens, e.g. "aes256gcm16-prfsha256-x25519".
	Proposals []string
	// Vips are virtual IPs requested by this end (clients); gateways use Pools.
	Vips  []string
	Pools []string
	// Encap forces UDP encapsulation (NAT-T) even without NAT.
	Encap  bool
	Mobike bool
	// Aggressive selects IKEv1 aggressive mode.
	Aggressive bool
	DPDDelay   time.Duration
	DPDTimeout time.Duration
	// Fragmentation is one of "yes", "accept", "force", "no".
	Fragmentation string
	// SendCert is one of "always", "ifasked", "never".
	SendCert    string
	SendCertReq bool
	// Unique is the uniqueness policy: "no", "never", "keep" or "replace".
	Unique string
	// KeyingTries is how often charon tries to establish the IKE_SA: 0
	// keeps charon's default (1), KeyingTriesForever retries without end
	// (charon's keyingtries = 0).
	KeyingTries int
	RekeyTime   time.Duration
	ReauthTime  time.Duration
	OverTime    time.Duration
	RandTime    time.Duration
	// Local and Remote are authentication rounds, in round order.
	Local    []Auth
	Remote   []Auth
	Children []Child
}

// KeyingTriesForever is Connection.KeyingTries for a connection charon
// retries until it is established (swanctl and VICI spell it 0, which the
// model's zero value cannot carry).
const KeyingTriesForever = -1

// Auth is one authentication round of one side of a connection.
type Auth struct {
	// Name is the section suffix: "" renders as local/remote, "eap" as local-eap.
	Name  string
	Round int
	// Method is a strongSwan auth token: "pubkey", "psk", "eap-mschapv2",
	// "eap-radius", "eap-tls", "eap-dynamic", "xauth".
	Method string
	ID     string
	EAPID  string
	AAAID  string
	// Certs names entries of Model.Certs used as this end's certificate.
	Certs []string
	// CACerts names entries of Model.Certs the peer's chain must end in.
	CACerts    []string
	Groups     []string
	CertPolicy []string
	// Revocation is "strict", "ifuri" or "relaxed"; empty means charon's default.
	Revocation string
}

// Child is one CHILD_SA configuration of a connection.
type Child struct {
	Name         string
	Mode         string // "tunnel" (default), "transport", "pass", "drop"
	LocalTS      []string
	RemoteTS     []string
	ESPProposals []string
	RekeyTime    time.Duration
	LifeTime     time.Duration
	RandTime     time.Duration
	// StartAction is "none", "trap" or "start".
	StartAction string
	// CloseAction and DPDAction are "none", "clear", "trap" or "start" (5.9.x: "restart" for close).
	CloseAction string
	DPDAction   string
	HostAccess  bool
}

// Pool is one virtual IP pool with the configuration attributes sent with it.
// charon pools hold one address family each; a dual-stack MobilePool becomes two.
type Pool struct {
	Name string
	// Addrs is a CIDR or a range "a-b".
	Addrs      string
	Attributes []Attribute
}

// Attribute is one configuration payload attribute of a pool. Key is a strongSwan
// name ("dns", "nbns", "split_include", "split_exclude") or an attribute number
// ("25" INTERNAL_DNS_DOMAIN, "28672" UNITY_BANNER, "28674" UNITY_DEF_DOMAIN,
// "28675" UNITY_SPLITDNS_NAME).
type Attribute struct {
	Key    string
	Values []string
}

// Secret is one shared secret (VICI load-shared, swanctl secrets.<name>).
type Secret struct {
	// Name is the unique key id charon knows the secret by (VICI "id").
	Name string
	// Type is the VICI type: "EAP", "NTLM", "IKE", "PPK", "XAUTH".
	Type   string
	Owners []string
	// Data is the raw secret: the NT hash for NTLM, the key for IKE/EAP.
	Data []byte
}

// Cert is a certificate charon should hold.
type Cert struct {
	Name string
	// Type is "x509" (end entity) or "x509ca".
	Type string
	PEM  []byte
}

// PrivateKey is a private key charon should hold.
type PrivateKey struct {
	Name string
	// Type is "any", "rsa", "ecdsa" or "ed25519".
	Type string
	PEM  []byte
}

// Authority is a certification authority with revocation settings.
type Authority struct {
	Name     string
	CACert   string // name of a Model.Certs entry
	CRLURIs  []string
	OCSPURIs []string
}
