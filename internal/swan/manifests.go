package swan

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// Manifests are the objects of multi-document YAML that Build reads; other
// kinds (Namespaces, Deployments, ...) are skipped.
type Manifests struct {
	Gateways []v1alpha1.VPNGateway
	Pools    []v1alpha1.MobilePool
	Users    []v1alpha1.VPNUser
	Tunnels  []v1alpha1.Tunnel
	Secrets  []corev1.Secret
}

// DecodeManifests reads YAML or JSON documents separated by "---". Objects
// of ikegate's kinds and Secrets must decode strictly: a misspelt field is
// an error, not a silently dropped setting. source names the input in errors.
func DecodeManifests(r io.Reader, source string) (Manifests, error) {
	var m Manifests
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return m, fmt.Errorf("%s: document %d: %w", source, n, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return m, fmt.Errorf("%s: document %d: %w", source, n, err)
		}
		if tm.Kind == "" && tm.APIVersion == "" {
			// A document of comments only.
			var v any
			if err := yaml.Unmarshal(doc, &v); err == nil && v == nil {
				continue
			}
		}
		var into any
		switch {
		case tm.APIVersion == v1alpha1.GroupVersion.String() && tm.Kind == "VPNGateway":
			m.Gateways = append(m.Gateways, v1alpha1.VPNGateway{})
			into = &m.Gateways[len(m.Gateways)-1]
		case tm.APIVersion == v1alpha1.GroupVersion.String() && tm.Kind == "MobilePool":
			m.Pools = append(m.Pools, v1alpha1.MobilePool{})
			into = &m.Pools[len(m.Pools)-1]
		case tm.APIVersion == v1alpha1.GroupVersion.String() && tm.Kind == "VPNUser":
			m.Users = append(m.Users, v1alpha1.VPNUser{})
			into = &m.Users[len(m.Users)-1]
		case tm.APIVersion == v1alpha1.GroupVersion.String() && tm.Kind == "Tunnel":
			m.Tunnels = append(m.Tunnels, v1alpha1.Tunnel{})
			into = &m.Tunnels[len(m.Tunnels)-1]
		case tm.APIVersion == "v1" && tm.Kind == "Secret":
			m.Secrets = append(m.Secrets, corev1.Secret{})
			into = &m.Secrets[len(m.Secrets)-1]
		case tm.APIVersion == v1alpha1.GroupVersion.String():
			return m, fmt.Errorf("%s: document %d: unknown kind %q of %s", source, n, tm.Kind, tm.APIVersion)
		default:
			continue
		}
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			return m, fmt.Errorf("%s: document %d (%s): %w", source, n, tm.Kind, err)
		}
	}
}

// Append adds the objects of o.
func (m *Manifests) Append(o Manifests) {
	m.Gateways = append(m.Gateways, o.Gateways...)
	m.Pools = append(m.Pools, o.Pools...)
	m.Users = append(m.Users, o.Users...)
	m.Tunnels = append(m.Tunnels, o.Tunnels...)
	m.Secrets = append(m.Secrets, o.Secrets...)
}

// Resources picks the gateway named name (any name if empty and there is
// only one) and the objects of its namespace. Objects without a namespace
// count as the gateway's, as kubectl apply -n would place them. Secrets
// keep stringData over data, as the API server merges them.
func (m Manifests) Resources(name string, now time.Time) (Resources, error) {
	var gws []*v1alpha1.VPNGateway
	for i := range m.Gateways {
		if name == "" || m.Gateways[i].Name == name {
			gws = append(gws, &m.Gateways[i])
		}
	}
	switch {
	case len(gws) == 0 && name != "":
		return Resources{}, fmt.Errorf("no VPNGateway named %q", name)
	case len(gws) == 0:
		return Resources{}, errors.New("no VPNGateway found")
	case len(gws) > 1:
		names := make([]string, len(gws))
		for i, g := range gws {
			names[i] = g.Namespace + "/" + g.Name
		}
		slices.Sort(names)
		return Resources{}, fmt.Errorf("several VPNGateways (%s): choose one", strings.Join(names, ", "))
	}
	gw := gws[0]
	ns := gw.Namespace
	same := func(o metav1.Object) bool { return o.GetNamespace() == "" || ns == "" || o.GetNamespace() == ns }
	in := Resources{Gateway: *gw, Secrets: map[string]map[string][]byte{}, Now: now}
	for i := range m.Pools {
		if same(&m.Pools[i]) {
			in.Pools = append(in.Pools, m.Pools[i])
		}
	}
	for i := range m.Users {
		if same(&m.Users[i]) {
			in.Users = append(in.Users, m.Users[i])
		}
	}
	for i := range m.Tunnels {
		if same(&m.Tunnels[i]) {
			in.Tunnels = append(in.Tunnels, m.Tunnels[i])
		}
	}
	for i := range m.Secrets {
		s := &m.Secrets[i]
		if !same(s) {
			continue
		}
		data := make(map[string][]byte, len(s.Data)+len(s.StringData))
		for k, v := range s.Data {
			data[k] = v
		}
		for k, v := range s.StringData {
			data[k] = []byte(v)
		}
		in.Secrets[s.Name] = data
	}
	return in, nil
}
