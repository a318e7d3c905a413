package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ikegate/ikegate/internal/diagnose"
)

type diagnoseOptions struct {
	log        string
	gatewayIDs []string
}

func newDiagnoseCommand() *cobra.Command {
	o := &diagnoseOptions{}
	cmd := &cobra.Command{
		Use:   "diagnose --log FILE",
		Short: "Explain failed IKEv2 connections from a saved charon log",
		Long: `diagnose reads a charon log (strongSwan's own file log or syslog, "-" for
stdin) and prints, for every failed attempt, when it failed, in which phase,
why, the peer, and what to change. It works offline on any strongSwan log,
with or without ikegate; charon's default log levels suffice.`,
		Example: `  kubectl ikegate diagnose --log /var/log/charon.log
  journalctl -u strongswan | kubectl ikegate diagnose --log -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.log == "" {
				return errors.New("--log is required: diagnosing a gateway in a cluster is not available yet")
			}
			return o.run(cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
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

func printFailures(out io.Writer, failures []diagnose.Failure) {
	if len(failures) == 0 {
		fmt.Fprintln(out, "No failed connection attempts found.")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tWHEN\tPHASE\tREASON\tREMOTE\tIDENTITY\tWHAT TO CHANGE")
	for i, f := range failures {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, when(f), f.Phase, f.Reason, dash(f.Remote), dash(f.RemoteID), f.Advice())
	}
	tw.Flush()
	fmt.Fprintln(out)
	for i, f := range failures {
		fmt.Fprintf(out, "%d. %s\n", i+1, f.Detail)
		if len(f.Transforms) > 0 {
			fmt.Fprintf(out, "   no match for:   %s\n", strings.Join(f.Transforms, ", "))
		}
		if len(f.Offered) > 0 {
			fmt.Fprintf(out, "   peer offered:   %s\n", strings.Join(f.Offered, ", "))
		}
		if len(f.Configured) > 0 {
			fmt.Fprintf(out, "   this side has:  %s\n", strings.Join(f.Configured, ", "))
		}
	}
}

// when prints the log's own stamp: the date only if the log had one.
func when(f diagnose.Failure) string {
	switch {
	case f.Time.IsZero():
		return "-"
	case f.Time.Year() == 0 && f.Time.YearDay() == 1:
		return f.Time.Format("15:04:05")
	case f.Time.Year() == 0:
		return f.Time.Format("Jan _2 15:04:05")
	}
	return f.Time.Format("2006-01-02 15:04:05")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
