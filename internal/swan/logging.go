package swan

// payloadLevel is, per subsystem, the lowest log level at which charon
// (5.9 and 6.x) writes decrypted traffic or authentication material, read in
// strongSwan's source:
//   - enc 3: every decrypted IKE payload and the parser's and generator's
//     dumps of them (encrypted_payload.c "plain %B", parser.c, generator.c),
//     so EAP-MSCHAPv2 challenges and responses and the IDs inside IKE_AUTH;
//   - ike 3: the EAP payloads relayed by eap-radius and eap-peap
//     (eap_radius.c "%N payload %B") and the AUTH value with the octets it
//     signs (keymat_v2.c), which is enough to guess a PSK offline; ike 4 and
//     chd 4 dump the IKE and ESP keys;
//   - cfg 3: whole RADIUS messages (radius_socket.c, radius_client.c); cfg 4
//     the keys and PINs loaded over VICI (vici_cred.c);
//   - tls 3: EAP-TLS/PEAP/TTLS records after decryption (tls_fragmentation.c),
//     the inner EAP methods included; tls 4 the TLS secrets;
//   - esp 3: the decrypted user packets of the userspace data plane
//     (esp_packet.c);
//   - lib 3: EAP-SIM/AKA keys (simaka_crypto.c) and PKCS#7 plaintext; lib 4
//     the random generators' state;
//   - asn 3: the raw bytes of any ASN.1 object that fails to parse, which
//     need not be a public one (asn1_parser.c); asn 4 private objects;
//   - knl 4: netlink messages, the ESP keys sent to the kernel among them.
//
// net 3 dumps packets as received, which stay encrypted past IKE_SA_INIT.
var payloadLevel = map[string]int{
	"enc": LogRaw, "ike": LogRaw, "cfg": LogRaw, "tls": LogRaw, "esp": LogRaw,
	"lib": LogRaw, "asn": LogRaw, "chd": LogPrivate, "knl": LogPrivate,
}

// charonDefaultLevel is the level of a subsystem that neither it nor
// "default" names.
const charonDefaultLevel = LogControl

// WithoutPayloads returns levels (a Logging.Levels map) with every subsystem
// held below the level at which it would log decrypted payloads or
// authentication material, whether the level came from the subsystem itself
// or from "default".
func WithoutPayloads(levels map[string]int) map[string]int {
	out := make(map[string]int, len(levels)+len(payloadLevel))
	for k, v := range levels {
		out[k] = v
	}
	def, ok := levels["default"]
	if !ok {
		def = charonDefaultLevel
	}
	for sub, unsafe := range payloadLevel {
		v, ok := levels[sub]
		if !ok {
			v = def
		}
		if v >= unsafe {
			out[sub] = unsafe - 1
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
