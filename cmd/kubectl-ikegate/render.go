package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/swan"
)

// errProblems is returned after the problems have been printed, so the
// command exits non-zero without repeating them.
var errProblems = errors.New("the resources have problems")

type renderOptions struct {
	files       []string
	gateway     string
	showSecrets bool
	firewall    bool
	now         func() time.Time
	cluster     *clusterFlags
}

func newRenderCommand() *cobra.Command {
	o := &renderOptions{now: time.Now, cluster: newClusterFlags()}
	cmd := &cobra.Command{
		Use:   "render (-f DIR_OR_FILE [--gateway NAME] | [-n NAMESPACE] GATEWAY) [--show-secrets] [--firewall]",
		Short: "Print the strongSwan configuration a gateway's resources produce, from manifests or the cluster",
		Long: `render reads VPNGateway, MobilePool, VPNUser, Tunnel and Secret manifests
(multi-document YAML or JSON; directories are read for *.yaml, *.yml and *.json)
and prints the swanctl.conf the gateway's charon would be given, without a
cluster. Every ikegate.io object is first validated as the API server
validates it on create (the CRDs' schemas and CEL rules, offline), and refused
with the API server's message. With a GATEWAY name instead of -f it renders
the gateway as it is in the cluster, read with kubectl's connection flags
(--kubeconfig, --context, -n). Certificates and keys appear as the file names
charon loads them from. Secrets are redacted unless --show-secrets is given.
With --firewall it prints the gateway's nftables table instead, as
` + "`nft list table`" + ` shows it. If the resources have problems, they are
printed instead and the command fails.`,
		Example: `  kubectl ikegate render -f examples/pfsense-mobile/
  kubectl ikegate render -n vpn vpn --firewall`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && len(o.files) > 0:
				return errors.New("give either -f or a GATEWAY name, not both")
			case len(args) == 0 && len(o.files) == 0:
				return errors.New("give -f DIR_OR_FILE, or the name of a GATEWAY in the cluster")
			case len(args) == 1 && o.gateway != "":
				return errors.New("--gateway chooses among the gateways of -f; name a live GATEWAY as the argument only")
			}
			all, err := o.manifests(cmd.Context(), args)
			if err != nil {
				return err
			}
			return o.run(all, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringSliceVarP(&o.files, "filename", "f", nil, "manifest file or directory (repeatable)")
	cmd.Flags().StringVar(&o.gateway, "gateway", "", "name of the VPNGateway to render when the manifests hold several")
	cmd.Flags().BoolVar(&o.firewall, "firewall", false, "print the gateway's nftables table instead of its charon configuration")
	cmd.Flags().BoolVar(&o.showSecrets, "show-secrets", false, "print shared secrets (NT hashes, pre-shared keys) instead of <redacted>")
	o.cluster.addTo(cmd.Flags())
	return cmd
}

// manifests reads the files of -f, validated, or the live gateway named by args.
func (o *renderOptions) manifests(ctx context.Context, args []string) (swan.Manifests, error) {
	var all swan.Manifests
	if len(args) == 1 {
		ns, err := o.cluster.namespace()
		if err != nil {
			return all, err
		}
		c, err := o.cluster.client()
		if err != nil {
			return all, err
		}
		o.gateway = args[0]
		return liveManifests(ctx, c, ns, args[0])
	}
	for _, f := range o.files {
		m, err := readManifests(f)
		if err != nil {
			return all, err
		}
		all.Append(m)
	}
	return all, nil
}

func (o *renderOptions) run(all swan.Manifests, out, errOut io.Writer) error {
	in, err := all.Resources(o.gateway, o.now())
	if err != nil {
		return err
	}
	res := swan.Build(in)
	if len(res.Problems) > 0 {
		for _, p := range res.Problems {
			fmt.Fprintln(errOut, p.String())
		}
		return fmt.Errorf("%w: %d found", errProblems, len(res.Problems))
	}
	if o.firewall {
		gw := &in.Gateway
		rs, err := firewall.Build(firewall.FromBuild(firewall.TableName(gw.Namespace, gw.Name), gw, &res))
		if err != nil {
			return fmt.Errorf("building the firewall: %w", err)
		}
		_, err = io.WriteString(out, firewall.RenderNft(rs))
		return err
	}
	_, err = io.WriteString(out, swan.Render(res.Model, swan.RenderOptions{ShowSecrets: o.showSecrets}))
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, radiusNote(&res))
	return err
}

// radiusNote describes, as swanctl.conf comments, the eap-radius servers
// the agent gives charon at run time (they are not in swanctl.conf):
// the agent's own server for EAPMSCHAPv2 gateways, or the gateway's
// RADIUS servers. No shared secret is printed, not even with
// --show-secrets: the agent's is made per pod at start, and an external
// server's lives in its Secret.
func radiusNote(res *swan.Result) string {
	var servers []swan.RADIUSServer
	switch {
	case res.AgentRADIUS:
		servers = []swan.RADIUSServer{{Name: "agent", Address: "127.0.0.1", Secret: []byte("<per-pod secret>")}}
	case res.RADIUSOn:
		for _, s := range res.RADIUS {
			s.Secret = []byte("<redacted>")
			servers = append(servers, s)
		}
	default:
		return ""
	}
	var b strings.Builder
	b.WriteString("\n# charon's eap-radius servers, written by the agent into " + v1alpha1.RADIUSServersInclude + ":\n")
	if res.AgentRADIUS {
		fmt.Fprintf(&b, "# the agent's own server on the pod's loopback (a port it picks at start) checks the passwords; VPNUsers it holds: %d\n", len(res.Users))
	}
	for _, l := range strings.Split(strings.TrimRight(swan.RenderRADIUSServers(servers), "\n"), "\n") {
		if strings.HasPrefix(l, "#") || (res.AgentRADIUS && strings.Contains(l, "_port = 0")) {
			continue
		}
		b.WriteString("# " + l + "\n")
	}
	return b.String()
}

// readManifests reads a file, or every manifest file of a directory tree in
// lexical order.
func readManifests(path string) (swan.Manifests, error) {
	var all swan.Manifests
	info, err := os.Stat(path)
	if err != nil {
		return all, err
	}
	var files []string
	if info.IsDir() {
		err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch strings.ToLower(filepath.Ext(p)) {
			case ".yaml", ".yml", ".json":
				if !d.IsDir() {
					files = append(files, p)
				}
			}
			return nil
		})
		if err != nil {
			return all, err
		}
		slices.Sort(files)
	} else {
		files = []string{path}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return all, err
		}
		if err := validateManifests(context.Background(), data, f); err != nil {
			return all, err
		}
		m, err := swan.DecodeManifests(bytes.NewReader(data), f)
		if err != nil {
			return all, err
		}
		all.Append(m)
	}
	return all, nil
}
