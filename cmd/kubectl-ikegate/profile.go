package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

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
}

func newProfileCommand() *cobra.Command {
	o := &profileOptions{now: time.Now}
	cmd := &cobra.Command{
		Use:   "profile USER --format apple|windows|android|networkmanager|swanctl -f DIR_OR_FILE [-o FILE]",
		Short: "Write a VPN user's client profile, offline",
		Long: `profile builds the client profile of a VPNUser from the same manifests render
reads: an Apple .mobileconfig, a Windows PowerShell script, a strongSwan
Android .sswan, a NetworkManager-strongswan nmcli script or a swanctl.conf.
The profile proposes only what the gateway accepts, and it is refused, with
the setting that would fix it, when it could not work: a dialled name the
server certificate lacks, or no proposal the client can express.

The gateway's certificate and CA come from its server TLS Secret
(<gateway>-server-tls, "kubectl get secret -o yaml") among the manifests, or
from --server-cert and --ca. No password is written into a profile.
Working against a cluster (reading the profile Secret) is not there yet.`,
		Example: `  kubectl get secret -n vpn vpn-server-tls -o yaml > tls.yaml
  kubectl ikegate profile jimp --format apple -f examples/pfsense-mobile/ -f tls.yaml -o jimp.mobileconfig`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	var formats []string
	for _, f := range profile.Formats {
		formats = append(formats, string(f))
	}
	cmd.Flags().StringSliceVarP(&o.files, "filename", "f", nil, "manifest file or directory (repeatable)")
	cmd.Flags().StringVar(&o.gateway, "gateway", "", "name of the VPNGateway when the manifests hold several")
	cmd.Flags().StringVar(&o.format, "format", "", "profile format: "+strings.Join(formats, ", "))
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "file to write (mode 0600) instead of standard output")
	cmd.Flags().StringVar(&o.dial, "dial", "", "hostname or address the profile dials (default: the gateway's first hostname)")
	cmd.Flags().StringVar(&o.serverCert, "server-cert", "", "PEM file of the gateway's certificate (tls.crt)")
	cmd.Flags().StringVar(&o.ca, "ca", "", "PEM file of the gateway's CA (ca.crt)")
	_ = cmd.MarkFlagRequired("filename")
	_ = cmd.MarkFlagRequired("format")
	return cmd
}

func (o *profileOptions) run(user string, out, errOut io.Writer) error {
	format := profile.Format(o.format)
	if !slices.Contains(profile.Formats, format) {
		return fmt.Errorf("unknown --format %q: use one of %v", o.format, profile.Formats)
	}
	var all swan.Manifests
	for _, f := range o.files {
		m, err := readManifests(f)
		if err != nil {
			return err
		}
		all.Append(m)
	}
	in, err := all.Resources(o.gateway, o.now())
	if err != nil {
		return err
	}
	if err := o.certificates(&in); err != nil {
		return err
	}
	i := slices.IndexFunc(in.Users, func(u v1alpha1.VPNUser) bool { return u.Name == user })
	if i < 0 {
		return fmt.Errorf("no VPNUser %q in the namespace of gateway %s", user, in.Gateway.Name)
	}
	built := swan.Build(in)
	pin, err := profile.FromBuild(&built, &in.Gateway, &in.Users[i], profile.Options{Dial: o.dial})
	if err != nil {
		for _, p := range built.Problems {
			fmt.Fprintln(errOut, p.String())
		}
		return err
	}
	data, err := profile.Build(format, pin)
	if err != nil {
		return fmt.Errorf("no %s profile for %s: %w", format, user, err)
	}
	if o.output == "" {
		_, err = out.Write(data)
		return err
	}
	return os.WriteFile(o.output, data, 0o600)
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
