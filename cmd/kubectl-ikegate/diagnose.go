package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ikegate/ikegate/internal/diagnose"
)

type diagnoseOptions struct {
	log        string
	gatewayIDs []string
	kube       kubeFlags
}

func newDiagnoseCommand() *cobra.Command {
	o := &diagnoseOptions{}
	cmd := &cobra.Command{
		Use:   "diagnose [-n NAMESPACE] (GATEWAY | vpnuser/NAME | tunnel/NAME | --log FILE)",
		Short: "Explain failed IKEv2 connections of a gateway, or from a saved charon log",
		Long: `diagnose prints, for every recent failed attempt, when it failed, in which
phase, why, the peer, and what to change.

With GATEWAY, vpnuser/NAME or tunnel/NAME it reads what the gateway's agents
found in the cluster: the gateway's status.agents[].recentFailures and the
agents' Warning Events on the gateway and its members.

With --log it reads a charon log (strongSwan's own file log or syslog, "-"
for stdin) instead. That works offline on any strongSwan log, with or
without ikegate; charon's default log levels suffice.`,
		Example: `  kubectl ikegate diagnose -n vpn corp
  kubectl ikegate diagnose -n vpn vpnuser/jimp
  kubectl ikegate diagnose --log /var/log/charon.log
  journalctl -u strongswan | kubectl ikegate diagnose --log -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.log != "" && len(args) > 0:
				return errors.New("give either --log or an object, not both")
			case o.log != "":
				return o.run(cmd.InOrStdin(), cmd.OutOrStdout())
			case len(args) == 1:
				return o.runCluster(cmd.Context(), cmd.OutOrStdout(), args[0])
			}
			return errors.New("name a gateway (GATEWAY, vpnuser/NAME or tunnel/NAME) or a charon log (--log FILE)")
		},
	}
	o.kube.add(cmd)
	cmd.Flags().StringVar(&o.log, "log", "", "charon log file to read (- for stdin)")
	cmd.Flags().StringSliceVar(&o.gatewayIDs, "gateway-id", nil, "the gateway's identity, if the log shows no successful login (repeatable)")
	return cmd
}

func (o *diagnoseOptions) run(stdin io.Reader, out io.Writer) error {
	in := stdin
	if o.log != "-" {
		f, err := os.Open(o.log)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	failures, err := readFailures(in, diagnose.Options{LocalIDs: o.gatewayIDs})
	if err != nil {
		return fmt.Errorf("reading %s: %w", o.log, err)
	}
	printFailures(out, failures)
	return nil
}

// maxLine bounds one log line; charon's own lines are far shorter.
const maxLine = 1 << 20

func readFailures(in io.Reader, opts diagnose.Options) ([]diagnose.Failure, error) {
	c := diagnose.NewCorrelator(opts)
	var failures []diagnose.Failure
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	for sc.Scan() {
		ev, ok := diagnose.ParseLine(sc.Text())
		if !ok {
			continue
		}
		if f, ok := c.Observe(ev); ok {
			failures = append(failures, f)
		}
	}
	return failures, sc.Err()
}

// finding is one row of diagnose's table: a Failure read from a log, or
// what an agent reported in the cluster.
type finding struct {
	when                                    time.Time
	phase, reason, remote, identity, advice string
	detail                                  string
	transforms, offered, configured         []string
	// object, count and pod come from the cluster only.
	object string
	count  int32
	pod    string
}

func fromFailure(f diagnose.Failure) finding {
	return finding{when: f.Time, phase: string(f.Phase), reason: f.Reason, remote: f.Remote, identity: f.RemoteID,
		advice: f.Advice(), detail: f.Detail, transforms: f.Transforms, offered: f.Offered, configured: f.Configured}
}

func printFailures(out io.Writer, failures []diagnose.Failure) {
	fs := make([]finding, len(failures))
	for i, f := range failures {
		fs[i] = fromFailure(f)
	}
	printFindings(out, fs)
}

func printFindings(out io.Writer, fs []finding) {
	if len(fs) == 0 {
		fmt.Fprintln(out, "No failed connection attempts found.")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tWHEN\tPHASE\tREASON\tREMOTE\tIDENTITY\tWHAT TO CHANGE")
	for i, f := range fs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, when(f.when), dash(f.phase), f.reason, dash(f.remote), dash(f.identity), dash(f.advice))
	}
	tw.Flush()
	fmt.Fprintln(out)
	for i, f := range fs {
		fmt.Fprintf(out, "%d. %s\n", i+1, f.detail)
		if len(f.transforms) > 0 {
			fmt.Fprintf(out, "   no match for:   %s\n", strings.Join(f.transforms, ", "))
		}
		if len(f.offered) > 0 {
			fmt.Fprintf(out, "   peer offered:   %s\n", strings.Join(f.offered, ", "))
		}
		if len(f.configured) > 0 {
			fmt.Fprintf(out, "   this side has:  %s\n", strings.Join(f.configured, ", "))
		}
		if f.object != "" {
			fmt.Fprintf(out, "   reported on:    %s, %d time(s), by %s\n", f.object, f.count, dash(f.pod))
		}
	}
}

// when prints the log's own stamp: the date only if the log had one.
func when(t time.Time) string {
	switch {
	case t.IsZero():
		return "-"
	case t.Year() == 0 && t.YearDay() == 1:
		return t.Format("15:04:05")
	case t.Year() == 0:
		return t.Format("Jan _2 15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
