package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// target is what `diagnose` was asked about: a gateway, or one member.
type target struct {
	kind, name string
}

func parseTarget(arg string) (target, error) {
	kind, name, found := strings.Cut(arg, "/")
	if !found {
		return target{kind: "VPNGateway", name: arg}, nil
	}
	switch strings.ToLower(kind) {
	case "vpnuser", "vpnusers":
		return target{kind: "VPNUser", name: name}, nil
	case "tunnel", "tunnels":
		return target{kind: "Tunnel", name: name}, nil
	case "vpngateway", "vpngateways", "vpngw":
		return target{kind: "VPNGateway", name: name}, nil
	}
	return target{}, fmt.Errorf("diagnose takes GATEWAY, vpnuser/NAME or tunnel/NAME, not %q", arg)
}

// kubeFlags are kubectl's flags for reaching a cluster, as a kubectl
// plugin receives them: kubectl passes none on, so the plugin reads them.
type kubeFlags struct {
	kubeconfig, context, namespace string
}

func (f *kubeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&f.context, "context", "", "kubeconfig context to use")
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "", "namespace of the object (default: the context's)")
}

// clusterClient makes a client from the kubeconfig flags, and returns the
// namespace they name.
func clusterClient(flags kubeFlags) (client.Client, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = flags.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: flags.context}
	overrides.Context.Namespace = flags.namespace
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, "", err
	}
	ns, _, err := loader.Namespace()
	if err != nil {
		return nil, "", err
	}
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, "", err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	return c, ns, err
}

// gatewayOf returns the gateway the target belongs to.
func gatewayOf(ctx context.Context, c client.Client, ns string, t target) (*v1alpha1.VPNGateway, error) {
	name := t.name
	switch t.kind {
	case "VPNUser":
		var u v1alpha1.VPNUser
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: t.name}, &u); err != nil {
			return nil, err
		}
		name = u.Spec.GatewayRef.Name
	case "Tunnel":
		var tn v1alpha1.Tunnel
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: t.name}, &tn); err != nil {
			return nil, err
		}
		name = tn.Spec.GatewayRef.Name
	}
	var gw v1alpha1.VPNGateway
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &gw); err != nil {
		return nil, err
	}
	return &gw, nil
}

// clusterFindings are the gateway pods' recent failures that concern the
// target, and the agents' Warning Events on it (or, for a gateway, on it
// and its members) that no recent failure already shows, such as the
// sessions the agent ended for a disabled user, newest last.
func clusterFindings(ctx context.Context, c client.Client, ns string, t target) ([]finding, error) {
	gw, err := gatewayOf(ctx, c, ns, t)
	if err != nil {
		return nil, err
	}
	concerns := func(kind, name string) bool {
		return t.kind == "VPNGateway" || (kind == t.kind && name == t.name)
	}
	var out []finding
	shown := map[string]bool{}
	for _, ag := range gw.Status.Agents {
		for _, rf := range ag.RecentFailures {
			if !concerns(rf.Kind, rf.Name) {
				continue
			}
			detail, advice := splitMessage(rf.Message)
			if rf.Peer == rf.RemoteAddress {
				rf.Peer = "" // no identity: the peer is known by its address only
			}
			out = append(out, finding{
				when: rf.LastSeen.Time, phase: rf.Phase, reason: rf.Reason, remote: rf.RemoteAddress, identity: rf.Peer,
				advice: advice, detail: detail, object: rf.Kind + "/" + rf.Name, count: rf.Count, pod: ag.Pod,
			})
			shown[rf.Kind+"/"+rf.Name+"/"+rf.Reason] = true
		}
	}
	var evs corev1.EventList
	if err := c.List(ctx, &evs, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing Events: %w", err)
	}
	members, err := memberNames(ctx, c, ns, gw.Name)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs.Items {
		o := ev.InvolvedObject
		if ev.Type != corev1.EventTypeWarning || ev.Source.Component != "ikegate-agent" || !concerns(o.Kind, o.Name) ||
			shown[o.Kind+"/"+o.Name+"/"+ev.Reason] || !(o.Kind == "VPNGateway" && o.Name == gw.Name || members[o.Kind+"/"+o.Name]) {
			continue
		}
		detail, advice := splitMessage(ev.Message)
		out = append(out, finding{when: ev.LastTimestamp.Time, reason: ev.Reason, advice: advice, detail: detail,
			object: o.Kind + "/" + o.Name, count: ev.Count, pod: ev.Source.Host})
	}
	slices.SortStableFunc(out, func(a, b finding) int { return a.when.Compare(b.when) })
	return out, nil
}

// memberNames are the gateway's VPNUsers and Tunnels as "Kind/name".
func memberNames(ctx context.Context, c client.Client, ns, gateway string) (map[string]bool, error) {
	out := map[string]bool{}
	var users v1alpha1.VPNUserList
	if err := c.List(ctx, &users, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	for _, u := range users.Items {
		if u.Spec.GatewayRef.Name == gateway {
			out["VPNUser/"+u.Name] = true
		}
	}
	var tunnels v1alpha1.TunnelList
	if err := c.List(ctx, &tunnels, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	for _, t := range tunnels.Items {
		if t.Spec.GatewayRef.Name == gateway {
			out["Tunnel/"+t.Name] = true
		}
	}
	return out, nil
}

// splitMessage separates the agent's message into what happened and the
// fix it names (internal/agent failureMessage ends with ". Fix: ...").
func splitMessage(msg string) (detail, advice string) {
	if i := strings.LastIndex(msg, ". Fix: "); i >= 0 {
		return msg[:i], msg[i+len(". Fix: "):]
	}
	return msg, ""
}

func (o *diagnoseOptions) runCluster(ctx context.Context, out io.Writer, arg string) error {
	t, err := parseTarget(arg)
	if err != nil {
		return err
	}
	c, ns, err := clusterClient(o.kube)
	if err != nil {
		return err
	}
	fs, err := clusterFindings(ctx, c, ns, t)
	if err != nil {
		return err
	}
	printFindings(out, fs)
	return nil
}
