package v1alpha1

import "slices"

// The Secrets each kind references, in one place: the manager's field
// indexes, the agent's credentials and the Secrets a build reads all list
// them from here, so a new reference cannot be read by one and missed by
// another.

// SecretRefs are the Secret keys the gateway references: the client CA and
// the RADIUS servers' shared secrets.
func (g *VPNGateway) SecretRefs() []SecretKeyReference {
	var out []SecretKeyReference
	if ca := g.Spec.ClientAuth.ClientCA; ca != nil {
		out = append(out, *ca)
	}
	if r := g.Spec.ClientAuth.RADIUS; r != nil {
		for _, s := range r.Servers {
			out = append(out, s.SecretRef)
		}
	}
	return out
}

// SecretRefs are the Secret keys the user references: its password.
func (u *VPNUser) SecretRefs() []SecretKeyReference {
	if r := u.Spec.PasswordSecretRef; r != nil {
		return []SecretKeyReference{*r}
	}
	return nil
}

// SecretRefs are the Secret keys the tunnel references: its pre-shared key
// or its peer's CA.
func (t *Tunnel) SecretRefs() []SecretKeyReference {
	var out []SecretKeyReference
	if p := t.Spec.Auth.PSK; p != nil {
		out = append(out, p.SecretRef)
	}
	if c := t.Spec.Auth.Certificate; c != nil {
		out = append(out, c.PeerCARef)
	}
	return out
}

// SecretNames are the names of the Secrets refs select, sorted, each once.
func SecretNames(refs []SecretKeyReference) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
