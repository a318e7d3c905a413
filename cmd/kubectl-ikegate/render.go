package main

import (
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
}

func newRenderCommand() *cobra.Command {
	o := &renderOptions{now: time.Now}
	cmd := &cobra.Command{
		Use:   "render -f DIR_OR_FILE [--gateway NAME] [--show-secrets] [--firewall]",
		Short: "Print the strongSwan configuration a gateway's resources produce, offline",
		Long: `render reads VPNGateway, MobilePool, VPNUser, Tunnel and Secret manifests
(multi-document YAML or JSON; directories are read for *.yaml, *.yml and *.json)
and prints the swanctl.conf the gateway's charon would be given, without a
cluster. Certificates and keys appear as the file names charon loads them
from. Secrets are redacted unless --show-secrets is given. With --firewall it
prints the gateway's nftables table instead, as ` + "`nft list table`" + ` shows it. If the
resources have problems, they are printed instead and the command fails.`,
		Example: `  kubectl ikegate render -f examples/pfsense-mobile/`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringSliceVarP(&o.files, "filename", "f", nil, "manifest file or directory (repeatable)")
	cmd.Flags().StringVar(&o.gateway, "gateway", "", "name of the VPNGateway to render when the manifests hold several")
	cmd.Flags().BoolVar(&o.firewall, "firewall", false, "print the gateway's nftables table instead of its charon configuration")
	cmd.Flags().BoolVar(&o.showSecrets, "show-secrets", false, "print shared secrets (NT hashes, pre-shared keys) instead of <redacted>")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

func (o *renderOptions) run(out, errOut io.Writer) error {
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
	return err
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
		r, err := os.Open(f)
		if err != nil {
			return all, err
		}
		m, err := swan.DecodeManifests(r, f)
		_ = r.Close()
		if err != nil {
			return all, err
		}
		all.Append(m)
	}
	return all, nil
}
