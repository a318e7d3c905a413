package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/profile"
	"github.com/ikegate/ikegate/internal/swan"
)

type profileOptions struct {
	files      []string
	gateway    string
	format     string
	output     string
	dial       string
	serverCert string
	ca         string
	now        func() time.Time
	// kube are kubectl's connection flags (--kubeconfig, --context, -n, ...),
	// used when no -f is given.
	kube *genericclioptions.ConfigFlags
}

func newProfileCommand() *cobra.Command {
	o := &profileOptions{now: time.Now, kube: genericclioptions.NewConfigFlags(true)}
	cmd := &cobra.Command{
		Use:   "profile USER --format apple|windows|android|networkmanager|swanctl [-n NAMESPACE | -f DIR_OR_FILE] [-o FILE]",
		Short: "Write a VPN user's client profile, from the cluster or offline",
		Long: `profile writes the client profile of a VPNUser: an Apple .mobileconfig, a
Windows PowerShell script, a strongSwan Android .sswan, a
NetworkManager-strongswan nmcli script or a swanctl.conf. The profile
proposes only what the gateway accepts, and it is refused, with the setting
that would fix it, when it could not work: a dialled name the server
certificate lacks, or no proposal the client can express.

Against a cluster (no -f), it reads the profile Secret the manager keeps for
the user (status.profileSecretName), which needs permission to read that
Secret; a format the manager could not build is reported with the reason
from the user's ProfileReady condition.

Offline (-f), it builds the profile from the same manifests render reads.
The gateway's certificate and CA come from its server TLS Secret
(<gateway>-server-tls, "kubectl get secret -o yaml") among the manifests, or
from --server-cert and --ca.

No password is written into a profile. The profile of a user whose
certificate ikegate issues carries it as PKCS#12, with its password.`,
		Example: `  kubectl ikegate profile jimp -n vpn --format apple -o jimp.mobileconfig

  kubectl get secret -n vpn vpn-server-tls -o yaml > tls.yaml
  kubectl ikegate profile jimp --format apple -f examples/pfsense-mobile/ -f tls.yaml -o jimp.mobileconfig`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	var formats []string
	for _, f := range profile.Formats {
		formats = append(formats, string(f))
	}
	cmd.Flags().StringSliceVarP(&o.files, "filename", "f", nil, "manifest file or directory (repeatable): build offline instead of reading the cluster")
	cmd.Flags().StringVar(&o.gateway, "gateway", "", "name of the VPNGateway when the manifests hold several (with -f)")
	cmd.Flags().StringVar(&o.format, "format", "", "profile format: "+strings.Join(formats, ", "))
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "file to write (mode 0600) instead of standard output")
	cmd.Flags().StringVar(&o.dial, "dial", "", "hostname or address the profile dials (with -f; default: the gateway's first hostname)")
	cmd.Flags().StringVar(&o.serverCert, "server-cert", "", "PEM file of the gateway's certificate (tls.crt, with -f)")
	cmd.Flags().StringVar(&o.ca, "ca", "", "PEM file of the gateway's CA (ca.crt, with -f)")
	o.kube.AddFlags(cmd.Flags())
	_ = cmd.MarkFlagRequired("format")
	return cmd
}

func (o *profileOptions) run(ctx context.Context, user string, out, errOut io.Writer) error {
	format := profile.Format(o.format)
	if !slices.Contains(profile.Formats, format) {
		return fmt.Errorf("unknown --format %q: use one of %v", o.format, profile.Formats)
	}
	var data []byte
	var err error
	if len(o.files) == 0 {
		data, err = o.fromCluster(ctx, user, format)
	} else {
		data, err = o.offline(user, format, errOut)
	}
	if err != nil {
		return err
	}
	if o.output == "" {
		_, err = out.Write(data)
		return err
	}
	return os.WriteFile(o.output, data, 0o600)
}

// offline builds the profile from manifests, as render does.
func (o *profileOptions) offline(user string, format profile.Format, errOut io.Writer) ([]byte, error) {
	var all swan.Manifests
	for _, f := range o.files {
		m, err := readManifests(f)
		if err != nil {
			return nil, err
		}
		all.Append(m)
	}
	in, err := all.Resources(o.gateway, o.now())
	if err != nil {
		return nil, err
	}
	if err := o.certificates(&in); err != nil {
		return nil, err
	}
	i := slices.IndexFunc(in.Users, func(u v1alpha1.VPNUser) bool { return u.Name == user })
	if i < 0 {
		return nil, fmt.Errorf("no VPNUser %q in the namespace of gateway %s", user, in.Gateway.Name)
	}
	built := swan.Build(in)
	pin, err := profile.FromBuild(&built, &in.Gateway, &in.Users[i], profile.Options{Dial: o.dial})
	if err != nil {
		for _, p := range built.Problems {
			fmt.Fprintln(errOut, p.String())
		}
		return nil, err
	}
	data, err := profile.Build(format, pin)
	if err != nil {
		return nil, fmt.Errorf("no %s profile for %s: %w", format, user, err)
	}
	return data, nil
}

// certificates takes the gateway's certificate and CA from the flags, or
// else from its server TLS Secret among the manifests.
func (o *profileOptions) certificates(in *swan.Resources) error {
	tls := in.Secrets[v1alpha1.ServerTLSSecretName(in.Gateway.Name)]
	in.ServerCertPEM, in.CAPEM = tls["tls.crt"], tls["ca.crt"]
	for _, f := range []struct {
		path string
		into *[]byte
	}{{o.serverCert, &in.ServerCertPEM}, {o.ca, &in.CAPEM}} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return err
		}
		*f.into = b
	}
	if len(in.ServerCertPEM) == 0 || len(in.CAPEM) == 0 {
		return fmt.Errorf("the gateway's certificate and CA are needed: add Secret %s to the manifests (kubectl get secret -n %s %s -o yaml) or pass --server-cert and --ca",
			v1alpha1.ServerTLSSecretName(in.Gateway.Name), in.Gateway.Namespace, v1alpha1.ServerTLSSecretName(in.Gateway.Name))
	}
	return nil
}
