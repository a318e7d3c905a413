package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "kubectl-ikegate",
		Short:         "Work with ikegate VPN gateways",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRenderCommand(), newProfileCommand(), newDiagnoseCommand())
	return root
}
