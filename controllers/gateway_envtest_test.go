package controllers

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/certmanagertest"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// TestGatewayEnvtest runs the manager and cert-manager's controllers against
// a real API server: the seed example comes up Ready, then faults are put in
// one at a time, each seen as a condition and a Warning Event, and fixed.
//
// envtest has no kubelet, no StatefulSet controller and no agent: where the
// test needs pods to be ready it writes the StatefulSet's status itself, and
// where it needs an agent's report it writes status.agents the way the agent
// does (server-side apply under the agent's field owner).
func TestGatewayEnvtest(t *testing.T) {
	outer := t
	s := testScheme(t)
	cfg, c, kubeconfig := testenv.Start(t, testenv.WithScheme(s))
	stopCM := certmanagertest.Start(t, kubeconfig)
	startManager(t, cfg, s, Options{StatusWorkers: 4})
	ctx := context.Background()

	applyFiles(t, c, exampleFiles(t, "pfsense-mobile")...)
	const ns = "vpn"
	gw := &v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn"}}
	gwConds := func() []metav1.Condition { return gw.Status.Conditions }
	user := &v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "jimp"}}
	userConds := func() []metav1.Condition { return user.Status.Conditions }
	pool := &v1alpha1.MobilePool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "staff"}}
	poolConds := func() []metav1.Condition { return pool.Status.Conditions }

	t.Run("certificates", func(t *testing.T) {
		eventually(t, "CertificateReady", conditionIs(c, gw, gwConds, v1alpha1.ConditionCertificateReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
		if !slices.Contains(gw.Finalizers, GatewayFinalizer) {
			t.Errorf("finalizers = %v, want %s", gw.Finalizers, GatewayFinalizer)
		}
		var server, ca corev1.Secret
		mustGet(t, c, ns, "vpn-server-tls", &server)
		mustGet(t, c, ns, "vpn-ca", &ca)
		leaf := parseCert(t, server.Data["tls.crt"])
		caCert := parseCert(t, ca.Data["tls.crt"])
		if leaf.Subject.CommonName != "vpn.example.com" || !slices.Equal(leaf.DNSNames, []string{"vpn.example.com"}) {
			t.Errorf("leaf CN %q DNS %v, want vpn.example.com", leaf.Subject.CommonName, leaf.DNSNames)
		}
		if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("198.51.100.10")) {
			t.Errorf("leaf IP SANs %v, want [198.51.100.10]", leaf.IPAddresses)
		}
		if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
			t.Errorf("leaf usages %v / %v, want serverAuth and digitalSignature", leaf.ExtKeyUsage, leaf.KeyUsage)
		}
		if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Errorf("leaf key %T, want ECDSA P-256", leaf.PublicKey)
		}
		if d := leaf.NotAfter.Sub(leaf.NotBefore).Hours(); d < 2159 || d > 2161 {
			t.Errorf("leaf lifetime %.0fh, want 2160h", d)
		}
		if !caCert.IsCA {
			t.Error("CA certificate is not a CA")
		}
		pool := x509.NewCertPool()
		pool.AddCert(caCert)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "vpn.example.com", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("leaf does not verify against the gateway CA: %v", err)
		}
		var bundle corev1.ConfigMap
		eventually(t, "CA bundle ConfigMap", func() error {
			return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vpn-ca-bundle"}, &bundle)
		})
		if got := parseCert(t, []byte(bundle.Data["ca.crt"])); !got.Equal(caCert) {
			t.Error("CA bundle ConfigMap does not hold the gateway's CA")
		}
		if gw.Status.CAConfigMapName != "vpn-ca-bundle" || gw.Status.CertificateSecretName != "vpn-server-tls" || gw.Status.CertificateNotAfter == nil {
			t.Errorf("status names %q %q %v", gw.Status.CAConfigMapName, gw.Status.CertificateSecretName, gw.Status.CertificateNotAfter)
		}
	})

	t.Run("workload", func(t *testing.T) {
		var sts appsv1.StatefulSet
		eventually(t, "StatefulSet", func() error { return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vpn-gateway"}, &sts) })
		p := sts.Spec.Template.Spec
		if !p.HostNetwork || p.NodeSelector["ikegate.io/gateway"] != "true" || p.ServiceAccountName != "vpn-agent" {
			t.Errorf("pod spec hostNetwork=%v nodeSelector=%v sa=%q", p.HostNetwork, p.NodeSelector, p.ServiceAccountName)
		}
		for _, ctr := range p.Containers {
			sc := ctr.SecurityContext
			if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: privileged or escalation allowed: %+v", ctr.Name, sc)
				continue
			}
			want := map[string][]corev1.Capability{"charon": {"NET_ADMIN", "NET_BIND_SERVICE"}, "agent": {"NET_ADMIN"}}[ctr.Name]
			if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || !slices.Equal(sc.Capabilities.Add, want) {
				t.Errorf("%s capabilities %+v, want drop ALL add %v", ctr.Name, sc.Capabilities, want)
			}
		}
		agent := p.Containers[1]
		if agent.ReadinessProbe == nil || agent.ReadinessProbe.HTTPGet.Path != "/readyz" || agent.ReadinessProbe.HTTPGet.Port.IntValue() != 8081 {
			t.Errorf("agent readiness probe %+v", agent.ReadinessProbe)
		}
		var conf corev1.ConfigMap
		mustGet(t, c, ns, "vpn-charon", &conf)
		if s := conf.Data["strongswan.conf"]; !strings.Contains(s, "unix:///run/ikegate/charon.vici") || !strings.Contains(s, "ike = 2") {
			t.Errorf("strongswan.conf lacks the VICI socket or the ike log level:\n%s", s)
		}
		// The agent reads a fixed set of Secrets by name, so its Role does
		// not change with every user.
		var role rbacv1.Role
		eventually(t, "agent Role", func() error {
			mustGet(t, c, ns, "vpn-agent", &role)
			for _, r := range role.Rules {
				if slices.Contains(r.Resources, "secrets") {
					if !slices.Equal(r.ResourceNames, append(credentials.SecretNames("vpn"), "vpn-server-tls")) || !slices.Equal(r.Verbs, []string{"get", "list", "watch"}) {
						return fmt.Errorf("agent Role's Secret rule %+v, want read of the credentials and server certificate Secrets", r)
					}
					return nil
				}
			}
			return fmt.Errorf("agent Role has no Secret rule: %+v", role.Rules)
		})
		var rb rbacv1.RoleBinding
		var sa corev1.ServiceAccount
		eventually(t, "RoleBinding and ServiceAccount", func() error {
			return errors.Join(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vpn-agent"}, &rb), c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vpn-agent"}, &sa))
		})
		for _, o := range []client.Object{&sts, &conf, &role, &rb, &sa} {
			if refs := o.GetOwnerReferences(); len(refs) != 1 || refs[0].Name != "vpn" || refs[0].Kind != "VPNGateway" {
				t.Errorf("%s owner references %v", o.GetName(), refs)
			}
		}

		eventually(t, "NoNodesSelected", conditionIs(c, gw, gwConds, v1alpha1.ConditionWorkloadReady, metav1.ConditionFalse, v1alpha1.ReasonNoNodesSelected))
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-1", Labels: map[string]string{"ikegate.io/gateway": "true"}}}
		if err := c.Create(ctx, node); err != nil {
			t.Fatal(err)
		}
		// No StatefulSet controller runs, so nothing has observed the spec.
		eventually(t, "RollingOut", conditionIs(c, gw, gwConds, v1alpha1.ConditionWorkloadReady, metav1.ConditionFalse, v1alpha1.ReasonRollingOut))

		// Play the StatefulSet controller: it saw the spec, the pod is not ready.
		setStatefulSetStatus(t, c, ns, "vpn-gateway", 0)
		eventually(t, "PodsUnavailable", conditionIs(c, gw, gwConds, v1alpha1.ConditionWorkloadReady, metav1.ConditionFalse, v1alpha1.ReasonPodsUnavailable))
		// ...and the kubelet: the agent's readiness probe passes.
		setStatefulSetStatus(t, c, ns, "vpn-gateway", 1)
		eventually(t, "WorkloadReady", conditionIs(c, gw, gwConds, v1alpha1.ConditionWorkloadReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
	})

	t.Run("config applied by the agent", func(t *testing.T) {
		eventually(t, "ApplyPending", conditionIs(c, gw, gwConds, v1alpha1.ConditionConfigApplied, metav1.ConditionFalse, v1alpha1.ReasonApplyPending))
		agentReport(t, c, gw, v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: gw.Generation, Sessions: 2})
		eventually(t, "gateway Ready", conditionIs(c, gw, gwConds, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
		if gw.Status.Sessions != 2 || gw.Status.ReadyReplicas != 1 || len(gw.Status.Agents) != 1 {
			t.Errorf("sessions %d readyReplicas %d agents %v", gw.Status.Sessions, gw.Status.ReadyReplicas, gw.Status.Agents)
		}
		eventually(t, "pool Ready", conditionIs(c, pool, poolConds, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
		eventually(t, "user Ready", conditionIs(c, user, userConds, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady))

		agentReport(t, c, gw, v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: gw.Generation, LastError: "loading connection mobile: unknown proposal"})
		eventually(t, "ApplyFailed", conditionIs(c, gw, gwConds, v1alpha1.ConditionConfigApplied, metav1.ConditionFalse, v1alpha1.ReasonApplyFailed))
		warningEvent(t, c, ns, "vpn", v1alpha1.ReasonApplyFailed, "vpn-gateway-0", "unknown proposal")
		eventually(t, "user follows the gateway", conditionIs(c, user, userConds, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonGatewayNotReady))
		agentReport(t, c, gw, v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: gw.Generation})
		eventually(t, "gateway Ready again", conditionIs(c, gw, gwConds, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady))

		none, one := int32(0), int32(1)
		agentReport(t, c, gw, v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: gw.Generation, Connections: &none})
		eventually(t, "NoConnections", conditionIs(c, gw, gwConds, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNoConnections))
		if cond := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionReady); !strings.Contains(cond.Message, "vpn-gateway-0 holds no connection") {
			t.Errorf("NoConnections message %q does not name the pod", cond.Message)
		}
		agentReport(t, c, gw, v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: gw.Generation, Connections: &one})
		eventually(t, "gateway Ready with a connection", conditionIs(c, gw, gwConds, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
	})

	t.Run("pool nearly full", func(t *testing.T) {
		// The seed's /24 hands out 254 addresses; 90% of them is 229.
		report := func(leased int32) {
			agentReport(t, c, gw, v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: gw.Generation,
				Pools: []v1alpha1.PoolLeases{{Name: "staff", Leased: leased}}})
		}
		eventually(t, "AddressesAvailable", conditionIs(c, pool, poolConds, v1alpha1.ConditionAddressesAvailable, metav1.ConditionTrue, v1alpha1.ReasonAddressesAvailable))
		report(229)
		eventually(t, "PoolNearlyFull", conditionIs(c, pool, poolConds, v1alpha1.ConditionAddressesAvailable, metav1.ConditionFalse, v1alpha1.ReasonPoolNearlyFull))
		if pool.Status.Leased != 229 || pool.Status.Size != 254 {
			t.Errorf("leased %d size %d, want 229 of 254", pool.Status.Leased, pool.Status.Size)
		}
		warningEvent(t, c, ns, "staff", v1alpha1.ReasonPoolNearlyFull, "90%")
		report(254)
		eventually(t, "PoolExhausted", conditionIs(c, pool, poolConds, v1alpha1.ConditionAddressesAvailable, metav1.ConditionFalse, v1alpha1.ReasonPoolExhausted))
		report(0)
		eventually(t, "AddressesAvailable again", conditionIs(c, pool, poolConds, v1alpha1.ConditionAddressesAvailable, metav1.ConditionTrue, v1alpha1.ReasonAddressesAvailable))
		eventually(t, "pool still Ready", conditionIs(c, pool, poolConds, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
	})

	t.Run("missing Secret", func(t *testing.T) {
		var sec corev1.Secret
		mustGet(t, c, ns, "jimp", &sec)
		if err := c.Delete(ctx, &sec); err != nil {
			t.Fatal(err)
		}
		eventually(t, "SecretNotFound", conditionIs(c, user, userConds, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound))
		if m := condMessage(user.Status.Conditions, v1alpha1.ConditionValid); !strings.Contains(m, "jimp") {
			t.Errorf("message %q does not name the Secret", m)
		}
		warningEvent(t, c, ns, "jimp", v1alpha1.ReasonSecretNotFound, "Secret jimp")
		fixed := gen.Secret(ns, "jimp", map[string]string{gen.PasswordKey: "abc123"})
		if err := c.Create(ctx, fixed); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Valid again", conditionIs(c, user, userConds, v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonReady))
		// The agent gets the password's NT hash through the credentials
		// shard of Secret jimp, never the password.
		eventually(t, "credentials Secret holds the NT hash", func() error {
			data, creds, err := credentialsOf(ctx, c, ns, "vpn", "jimp")
			if err != nil {
				return err
			}
			if !metav1.IsControlledBy(creds, gw) || creds.Labels[v1alpha1.LabelGateway] != "vpn" || creds.Type != corev1.SecretTypeOpaque {
				return fmt.Errorf("credentials Secret not the gateway's: %+v %v %s", creds.OwnerReferences, creds.Labels, creds.Type)
			}
			if got := data["nthash_jimp_password"]; !bytes.Equal(got, swan.NTHash("abc123")) {
				return fmt.Errorf("nthash_jimp_password = %x, want the NT hash of the password", got)
			}
			for k, v := range data {
				if bytes.Contains(v, []byte("abc123")) {
					return fmt.Errorf("key %s holds the plain password", k)
				}
			}
			return nil
		})

		mustGet(t, c, ns, "jimp", fixed)
		fixed.Data = map[string][]byte{"pass": []byte("abc123")}
		if err := c.Update(ctx, fixed); err != nil {
			t.Fatal(err)
		}
		eventually(t, "SecretKeyNotFound", conditionIs(c, user, userConds, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonSecretKeyNotFound))
		fixed.Data = map[string][]byte{"password": []byte("abc123")}
		if err := c.Update(ctx, fixed); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Valid after the key is back", conditionIs(c, user, userConds, v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonReady))
	})

	t.Run("credentials follow the user's reference", func(t *testing.T) {
		// A Secret in another shard than jimp's.
		moved := "jimp-new"
		for credentials.Shard(moved) == credentials.Shard("jimp") {
			moved += "-x"
		}
		if err := c.Create(ctx, gen.Secret(ns, moved, map[string]string{gen.PasswordKey: "a new password"})); err != nil {
			t.Fatal(err)
		}
		shardHolds := func(secret string, want []byte) func() error {
			return func() error {
				data, creds, err := credentialsOf(ctx, c, ns, "vpn", secret)
				if err != nil {
					return err
				}
				got, ok := data[credentials.NTHashKey(secret, "password")]
				switch {
				case want == nil && ok:
					return fmt.Errorf("shard %s still holds the hash of Secret %s", creds.Name, secret)
				case want != nil && !bytes.Equal(got, want):
					return fmt.Errorf("shard %s holds %x for Secret %s, want %x", creds.Name, got, secret, want)
				}
				return nil
			}
		}
		setRef := func(secret string) {
			t.Helper()
			// The manager writes the user's status meanwhile.
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				mustGet(t, c, ns, "jimp", user)
				user.Spec.PasswordSecretRef.Name = secret
				return c.Update(ctx, user)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		setRef(moved)
		eventually(t, "the new Secret's hash in its shard", shardHolds(moved, swan.NTHash("a new password")))
		eventually(t, "the former Secret's hash gone from its shard", shardHolds("jimp", nil))

		// A shard changed by hand is put right, and so are its recent
		// changes.
		for _, name := range []string{credentials.ShardName("vpn", credentials.Shard(moved)), credentials.RecentName("vpn", credentials.Shard(moved))} {
			var creds corev1.Secret
			mustGet(t, c, ns, name, &creds)
			if creds.Data == nil {
				creds.Data = map[string][]byte{}
			}
			creds.Data[credentials.NTHashKey(moved, "password")] = []byte("0123456789abcdef")
			if err := c.Update(ctx, &creds); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the hand-edited "+name+" restored", shardHolds(moved, swan.NTHash("a new password")))
		}

		setRef("jimp")
		eventually(t, "jimp's hash back in its shard", shardHolds("jimp", swan.NTHash("abc123")))
		eventually(t, "the other Secret's hash gone", shardHolds(moved, nil))
	})

	t.Run("tunnel PSK Secret", func(t *testing.T) {
		tun := gen.Tunnel(ns, "site-b")
		if err := c.Create(ctx, tun); err != nil {
			t.Fatal(err)
		}
		tunConds := func() []metav1.Condition { return tun.Status.Conditions }
		eventually(t, "SecretNotFound", conditionIs(c, tun, tunConds, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound))
		warningEvent(t, c, ns, "site-b", v1alpha1.ReasonSecretNotFound, "site-b-psk")
		psk := gen.Secret(ns, "site-b-psk", map[string]string{gen.PSKKey: "a long random pre-shared key"})
		if err := c.Create(ctx, psk); err != nil {
			t.Fatal(err)
		}
		eventually(t, "tunnel Valid", conditionIs(c, tun, tunConds, v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonReady))
	})

	t.Run("agent RBAC is least privilege", func(t *testing.T) {
		// The API server's own RBAC authorizer answers for the agent's
		// ServiceAccount: it reads (never writes) its credentials and
		// certificate Secrets, writes only status, and nothing outside the
		// namespace.
		const agent = "system:serviceaccount:vpn:vpn-agent"
		tests := []struct {
			verb, group, resource, sub, name string
			ns                               string
			allowed                          bool
		}{
			{"get", "ikegate.io", "vpngateways", "", "vpn", ns, true},
			{"watch", "ikegate.io", "vpngateways", "", "vpn", ns, true},
			{"get", "ikegate.io", "vpngateways", "", "corp", ns, false},
			{"list", "ikegate.io", "vpngateways", "", "", ns, false},
			{"update", "ikegate.io", "vpngateways", "", "vpn", ns, false},
			{"patch", "ikegate.io", "vpngateways", "status", "vpn", ns, true},
			{"patch", "ikegate.io", "vpngateways", "status", "corp", ns, false},
			{"list", "ikegate.io", "vpnusers", "", "", ns, true},
			{"patch", "ikegate.io", "vpnusers", "status", "jimp", ns, true},
			{"update", "ikegate.io", "vpnusers", "", "jimp", ns, false},
			{"list", "ikegate.io", "vpnusers", "", "", "default", false},
			// The list and watch of one Secret by field selector
			// metadata.name is authorized as a request for that name.
			{"get", "", "secrets", "", "vpn-agent-credentials-0", ns, true},
			{"list", "", "secrets", "", "vpn-agent-credentials-7", ns, true},
			{"watch", "", "secrets", "", "vpn-agent-credentials-15", ns, true},
			{"get", "", "secrets", "", "vpn-agent-credentials-16", ns, false},
			{"get", "", "secrets", "", "vpn-server-tls", ns, true},
			{"watch", "", "secrets", "", "vpn-server-tls", ns, true},
			{"update", "", "secrets", "", "vpn-agent-credentials-7", ns, false},
			// Not the CA's key, not the referenced Secrets, not all of them.
			{"get", "", "secrets", "", "vpn-ca", ns, false},
			{"get", "", "secrets", "", "jimp", ns, false},
			// Nor the users' profiles, which hold their client keys.
			{"get", "", "secrets", "", "jimp-vpn-profile", ns, false},
			{"watch", "", "secrets", "", "jimp-vpn-profile", ns, false},
			{"watch", "", "secrets", "", "site-b-psk", ns, false},
			{"list", "", "secrets", "", "", ns, false},
			{"watch", "", "secrets", "", "", ns, false},
			{"list", "", "secrets", "", "", "default", false},
			{"update", "", "secrets", "", "jimp", ns, false},
			{"create", "", "pods", "", "", ns, false},
			// Events on the gateway's objects (diagnosed failures), in its namespace only.
			{"create", "", "events", "", "", ns, true},
			{"patch", "", "events", "", "jimp.1a2b", ns, true},
			{"create", "", "events", "", "", "default", false},
			// The tunnel Lease, and no other (the manager's own election included).
			{"get", "coordination.k8s.io", "leases", "", "vpn-tunnels", ns, true},
			{"update", "coordination.k8s.io", "leases", "", "vpn-tunnels", ns, true},
			{"update", "coordination.k8s.io", "leases", "", "ikegate-manager", ns, false},
			{"get", "coordination.k8s.io", "leases", "", "other-tunnels", ns, false},
		}
		for _, tc := range tests {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   agent,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:vpn", "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: tc.ns, Verb: tc.verb, Group: tc.group, Resource: tc.resource, Subresource: tc.sub, Name: tc.name,
				},
			}}
			eventually(t, "access review", func() error { return c.Create(ctx, sar) })
			if sar.Status.Allowed != tc.allowed {
				t.Errorf("%s %s/%s %q in %s: allowed=%v, want %v (%s)", tc.verb, tc.resource, tc.sub, tc.name, tc.ns, sar.Status.Allowed, tc.allowed, sar.Status.Reason)
			}
		}
	})

	t.Run("overlapping pool", func(t *testing.T) {
		guests := gen.Pool(ns, "guests", "10.3.200.128/25", gen.Selecting(map[string]string{"group": "guests"}))
		if err := c.Create(ctx, guests); err != nil {
			t.Fatal(err)
		}
		// The newer pool is refused; the older one, although it sorts
		// after it, keeps serving.
		guestConds := func() []metav1.Condition { return guests.Status.Conditions }
		eventually(t, "PoolOverlap on guests", conditionIs(c, guests, guestConds, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonPoolOverlap))
		if m := condMessage(guests.Status.Conditions, v1alpha1.ConditionValid); !strings.Contains(m, "10.3.200.0/24") || !strings.Contains(m, "staff") {
			t.Errorf("message %q does not name the networks and the other pool", m)
		}
		warningEvent(t, c, ns, "guests", v1alpha1.ReasonPoolOverlap, "staff")
		eventually(t, "staff still Valid", conditionIs(c, pool, poolConds, v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonReady))
		if err := c.Delete(ctx, guests); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("duplicate identity", func(t *testing.T) {
		twin := gen.User(ns, "jimp-2", "jimp@example.com", gen.WithPassword("jimp", gen.PasswordKey))
		if err := c.Create(ctx, twin); err != nil {
			t.Fatal(err)
		}
		eventually(t, "DuplicateIdentity", conditionIs(c, user, userConds, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonDuplicateIdentity))
		warningEvent(t, c, ns, "jimp", v1alpha1.ReasonDuplicateIdentity, "jimp-2")
		if err := c.Delete(ctx, twin); err != nil {
			t.Fatal(err)
		}
		eventually(t, "jimp Valid again", conditionIs(c, user, userConds, v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonReady))
	})

	t.Run("insecure algorithm", func(t *testing.T) {
		// The API's CEL rules refuse insecure proposals without the opt-in
		// before the manager sees them; Build's check (InsecureAlgorithm)
		// guards objects stored before a rule existed, see
		// TestMembersInsecureAlgorithm.
		legacy := gen.Pool(ns, "legacy", "10.3.201.0/24", func(p *v1alpha1.MobilePool) { p.Spec.ESP.Preset = v1alpha1.PresetLegacy })
		err := c.Create(ctx, legacy)
		if err == nil || !strings.Contains(err.Error(), "allowInsecureAlgorithms") {
			t.Fatalf("creating a Legacy pool without the opt-in: %v, want a refusal naming allowInsecureAlgorithms", err)
		}
	})

	t.Run("SAN the certificate lacks", func(t *testing.T) {
		// With cert-manager down the Secret keeps the old certificate while
		// the spec asks for another name: clients dialling it would fail.
		var sts appsv1.StatefulSet
		mustGet(t, c, ns, "vpn-gateway", &sts)
		stopCM()
		mustGet(t, c, ns, "vpn", gw)
		gw.Spec.Hostnames = append(gw.Spec.Hostnames, "vpn2.example.com")
		if err := c.Update(ctx, gw); err != nil {
			t.Fatal(err)
		}
		eventually(t, "SANMismatch", conditionIs(c, gw, gwConds, v1alpha1.ConditionCertificateReady, metav1.ConditionFalse, v1alpha1.ReasonSANMismatch))
		if m := condMessage(gw.Status.Conditions, v1alpha1.ConditionCertificateReady); !strings.Contains(m, "DNS name vpn2.example.com") {
			t.Errorf("message %q does not name the missing SAN", m)
		}
		warningEvent(t, c, ns, "vpn", v1alpha1.ReasonSANMismatch, "vpn2.example.com")
		eventually(t, "Ready follows", conditionIs(c, gw, gwConds, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSANMismatch))

		// Started for the rest of the test, not just this subtest.
		certmanagertest.Start(outer, kubeconfig)
		eventually(t, "CertificateReady after reissue", conditionIs(c, gw, gwConds, v1alpha1.ConditionCertificateReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
		var server corev1.Secret
		mustGet(t, c, ns, "vpn-server-tls", &server)
		if leaf := parseCert(t, server.Data["tls.crt"]); !slices.Equal(leaf.DNSNames, []string{"vpn.example.com", "vpn2.example.com"}) {
			t.Errorf("reissued DNS SANs %v", leaf.DNSNames)
		}
		// A new certificate reaches the pods through the Secret (the agent
		// reloads it over VICI); the pod template must not change, or every
		// renewal would restart charon and drop the clients' SAs.
		var after appsv1.StatefulSet
		mustGet(t, c, ns, "vpn-gateway", &after)
		if after.Generation != sts.Generation {
			t.Errorf("StatefulSet generation %d -> %d after a certificate change", sts.Generation, after.Generation)
		}
	})

	t.Run("wrong issuer", func(t *testing.T) {
		corp := gen.Gateway(ns, "corp", gen.WithIssuer("corp-ca"))
		if err := c.Create(ctx, corp); err != nil {
			t.Fatal(err)
		}
		corpConds := func() []metav1.Condition { return corp.Status.Conditions }
		eventually(t, "IssuerNotFound", conditionIs(c, corp, corpConds, v1alpha1.ConditionCertificateReady, metav1.ConditionFalse, v1alpha1.ReasonIssuerNotFound))
		if m := condMessage(corp.Status.Conditions, v1alpha1.ConditionCertificateReady); !strings.Contains(m, "Issuer corp-ca") {
			t.Errorf("message %q does not name the issuer", m)
		}
		warningEvent(t, c, ns, "corp", v1alpha1.ReasonIssuerNotFound, "corp-ca")
		var issuers cmv1.IssuerList
		if err := c.List(ctx, &issuers, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelGateway: "corp"}); err != nil || len(issuers.Items) != 0 {
			t.Errorf("a gateway with an issuerRef got issuers of its own: %v %v", issuers.Items, err)
		}
		iss := &cmv1.Issuer{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "corp-ca"},
			Spec:       cmv1.IssuerSpec{IssuerConfig: cmv1.IssuerConfig{SelfSigned: &cmv1.SelfSignedIssuer{}}},
		}
		if err := c.Create(ctx, iss); err != nil {
			t.Fatal(err)
		}
		issued := conditionIs(c, corp, corpConds, v1alpha1.ConditionCertificateReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
		eventually(t, "CertificateReady with the named issuer", func() error {
			err := issued()
			if err != nil {
				var now cmv1.Issuer
				_ = c.Get(ctx, client.ObjectKeyFromObject(iss), &now)
				return fmt.Errorf("%w (issuer status %+v)", err, now.Status)
			}
			return nil
		})
		var cert cmv1.Certificate
		mustGet(t, c, ns, "corp-server", &cert)
		if cert.Spec.IssuerRef != (cmmeta.IssuerReference{Name: "corp-ca", Kind: "Issuer", Group: "cert-manager.io"}) {
			t.Errorf("issuerRef %+v", cert.Spec.IssuerRef)
		}
	})

	t.Run("gateway's own references", func(t *testing.T) {
		radius := gen.Gateway(ns, "radius", gen.WithRADIUS(gen.RADIUSServer("nps", "10.3.0.5", "nps-secret", "secret")))
		if err := c.Create(ctx, radius); err != nil {
			t.Fatal(err)
		}
		conds := func() []metav1.Condition { return radius.Status.Conditions }
		eventually(t, "gateway Valid False", conditionIs(c, radius, conds, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound))
		warningEvent(t, c, ns, "radius", v1alpha1.ReasonSecretNotFound, "nps-secret")
		eventually(t, "Ready says why", conditionIs(c, radius, conds, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound))
		sec := gen.Secret(ns, "nps-secret", map[string]string{"secret": "shared with the RADIUS server"})
		if err := c.Create(ctx, sec); err != nil {
			t.Fatal(err)
		}
		eventually(t, "gateway Valid", conditionIs(c, radius, conds, v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonReady))
	})

	t.Run("load balancer exposure", func(t *testing.T) {
		edge := gen.Gateway(ns, "edge", gen.LoadBalancer, gen.WithReplicas(2), gen.Userspace)
		if err := c.Create(ctx, edge); err != nil {
			t.Fatal(err)
		}
		var svc corev1.Service
		eventually(t, "Service", func() error { return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "edge-gateway"}, &svc) })
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(svc.Spec.Ports) != 2 ||
			svc.Spec.Ports[0].Port != 500 || svc.Spec.Ports[1].Port != 4500 || svc.Spec.Ports[0].Protocol != corev1.ProtocolUDP ||
			svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
			t.Errorf("service spec %+v", svc.Spec)
		}
		var sts appsv1.StatefulSet
		eventually(t, "StatefulSet", func() error { return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "edge-gateway"}, &sts) })
		if sts.Spec.Template.Spec.HostNetwork || *sts.Spec.Replicas != 2 {
			t.Errorf("hostNetwork %v replicas %d", sts.Spec.Template.Spec.HostNetwork, *sts.Spec.Replicas)
		}
		var conf corev1.ConfigMap
		mustGet(t, c, ns, "edge-charon", &conf)
		if !regexp.MustCompile(`kernel-libipsec \{\s*load = yes`).MatchString(conf.Data["strongswan.conf"]) {
			t.Errorf("strongswan.conf does not load kernel-libipsec:\n%s", conf.Data["strongswan.conf"])
		}
		edgeConds := func() []metav1.Condition { return edge.Status.Conditions }
		eventually(t, "edge certificate", conditionIs(c, edge, edgeConds, v1alpha1.ConditionCertificateReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
		setStatefulSetStatus(t, c, ns, "edge-gateway", 1)
		eventually(t, "one of two pods", conditionIs(c, edge, edgeConds, v1alpha1.ConditionWorkloadReady, metav1.ConditionFalse, v1alpha1.ReasonPodsUnavailable))
		if m := condMessage(edge.Status.Conditions, v1alpha1.ConditionWorkloadReady); m != "1 of 2 gateway pods of StatefulSet edge-gateway are ready" {
			t.Errorf("message %q", m)
		}
	})

	t.Run("gateway name limit", func(t *testing.T) {
		long := gen.Gateway(ns, strings.Repeat("g", 41))
		if err := c.Create(ctx, long); err == nil || !strings.Contains(err.Error(), "at most 40 characters") {
			t.Errorf("creating a gateway with a 41-character name: %v, want a refusal", err)
		}
		long.Name = strings.Repeat("g", 40)
		if err := c.Create(ctx, long); err != nil {
			t.Fatalf("a 40-character name: %v", err)
		}
		var sts appsv1.StatefulSet
		eventually(t, "StatefulSet of the longest name", func() error {
			return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: long.Name + "-gateway"}, &sts)
		})
	})

	t.Run("members of a missing gateway", func(t *testing.T) {
		orphan := gen.User(ns, "orphan", "orphan@example.com", gen.OfGateway("nowhere"), gen.WithPassword("jimp", gen.PasswordKey))
		if err := c.Create(ctx, orphan); err != nil {
			t.Fatal(err)
		}
		eventually(t, "GatewayNotFound", conditionIs(c, orphan, func() []metav1.Condition { return orphan.Status.Conditions },
			v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonGatewayNotFound))
		warningEvent(t, c, ns, "orphan", v1alpha1.ReasonGatewayNotFound, "nowhere")
	})

	t.Run("agent status survives the manager", func(t *testing.T) {
		mustGet(t, c, ns, "vpn", gw)
		if len(gw.Status.Agents) != 1 || gw.Status.Agents[0].Pod != "vpn-gateway-0" {
			t.Fatalf("agents %v, want the agent's entry kept", gw.Status.Agents)
		}
		for _, mf := range gw.ManagedFields {
			if mf.Manager == v1alpha1.ManagerFieldOwner && mf.Subresource == "status" && strings.Contains(string(mf.FieldsV1.Raw), "f:agents") {
				t.Errorf("the manager owns status.agents: %s", mf.FieldsV1.Raw)
			}
		}
	})

	t.Run("steady state writes nothing", func(t *testing.T) {
		// A reconciler that rewrites what did not change loops on its own
		// events; once settled, no object may change.
		objs := []client.Object{
			&v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn"}},
			&v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "jimp"}},
			&v1alpha1.MobilePool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "staff"}},
			&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn-gateway"}},
			&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn-agent"}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn-charon"}},
			&cmv1.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn-server"}},
		}
		versions := func() []string {
			var out []string
			for _, o := range objs {
				mustGet(t, c, ns, o.GetName(), o)
				out = append(out, o.GetName()+"@"+o.GetResourceVersion())
			}
			return out
		}
		// Settle: the same versions twice, a second apart.
		var before []string
		eventually(t, "settled", func() error {
			a := versions()
			time.Sleep(time.Second)
			if b := versions(); !slices.Equal(a, b) {
				return fmt.Errorf("still changing: %v -> %v", a, b)
			}
			before = a
			return nil
		})
		// Nudge both controllers without changing anything they compute.
		mustGet(t, c, ns, "vpn", gw)
		agentReport(t, c, gw, v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: gw.Generation, Sessions: 3})
		time.Sleep(2 * time.Second)
		after := versions()
		if diff := cmp.Diff(before[1:], after[1:]); diff != "" {
			t.Errorf("objects changed in steady state (-before +after):\n%s", diff)
		}
		mustGet(t, c, ns, "vpn", gw)
		if gw.Status.Sessions != 3 {
			t.Errorf("sessions %d after the agent reported 3", gw.Status.Sessions)
		}
	})

	t.Run("deletion", func(t *testing.T) {
		mustGet(t, c, ns, "vpn", gw)
		if err := c.Delete(ctx, gw); err != nil {
			t.Fatal(err)
		}
		eventually(t, "gateway gone", gone(c, gw))
		for _, name := range []string{"vpn-server", "vpn-ca"} {
			eventually(t, "Certificate "+name+" deleted", gone(c, &cmv1.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}))
		}
		for _, name := range []string{"vpn-server-tls", "vpn-ca"} {
			eventually(t, "Secret "+name+" deleted", gone(c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}))
		}
		// cert-manager, still running, must not have issued them again.
		time.Sleep(time.Second)
		for _, name := range []string{"vpn-server-tls", "vpn-ca"} {
			if err := gone(c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})(); err != nil {
				t.Errorf("after deletion: %v", err)
			}
		}
		eventually(t, "user reports the missing gateway", conditionIs(c, user, userConds, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonGatewayNotFound))
	})
}

// setStatefulSetStatus writes what the StatefulSet controller would after
// the kubelet reported ready pods.
func setStatefulSetStatus(t *testing.T, c client.Client, ns, name string, ready int32) {
	t.Helper()
	var sts appsv1.StatefulSet
	mustGet(t, c, ns, name, &sts)
	sts.Status = appsv1.StatefulSetStatus{ObservedGeneration: sts.Generation, Replicas: *sts.Spec.Replicas, ReadyReplicas: ready, AvailableReplicas: ready,
		UpdatedReplicas: *sts.Spec.Replicas, CurrentReplicas: *sts.Spec.Replicas, CurrentRevision: "r1", UpdateRevision: "r1"}
	if err := c.Status().Update(context.Background(), &sts); err != nil {
		t.Fatal(err)
	}
}

// agentReport writes one agent's entry of status.agents as the agent does.
func agentReport(t *testing.T, c client.Client, gw *v1alpha1.VPNGateway, a v1alpha1.AgentStatus) {
	t.Helper()
	// Sent as the agent sends it: the fields it sets, no zero values.
	raw, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var entry map[string]any
	if err := json.Unmarshal(raw, &entry); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       "VPNGateway",
		"metadata":   map[string]any{"name": gw.Name, "namespace": gw.Namespace},
		"status":     map[string]any{"agents": []any{entry}},
	}}
	if err := c.Status().Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(v1alpha1.AgentFieldOwner(a.Pod)), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
}

func parseCert(t testing.TB, data []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(data)
	if blk == nil {
		t.Fatal("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
