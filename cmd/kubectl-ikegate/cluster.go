package main

import (
	"fmt"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// clusterFlags are kubectl's connection flags (--kubeconfig, --context,
// -n/--namespace, --server, --token, ...), with kubectl's meaning: kubectl
// passes none of its own flags to a plugin, so the plugin must read them
// itself. Commands that talk to a cluster add them with addTo.
type clusterFlags struct {
	config *genericclioptions.ConfigFlags
}

func newClusterFlags() *clusterFlags {
	return &clusterFlags{config: genericclioptions.NewConfigFlags(true)}
}

func (c *clusterFlags) addTo(fs *pflag.FlagSet) { c.config.AddFlags(fs) }

// namespace is -n, else the kubeconfig context's namespace, else "default",
// as kubectl resolves it.
func (c *clusterFlags) namespace() (string, error) {
	ns, _, err := c.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}

// client connects to the cluster the flags and the kubeconfig name, with
// the types the plugin reads.
func (c *clusterFlags) client() (client.Client, error) {
	rc, err := c.config.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return client.New(rc, client.Options{Scheme: s})
}
