package swan

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Settings are charon's own settings (strongswan.conf). Unlike the Model they
// cannot be loaded over VICI: charon reads them once at start, so a change
// means restarting the daemon.
type Settings struct {
	// Daemon is the section charon reads its settings from: "charon" (the
	// default) also serves charon-systemd, which falls back to it.
	Daemon string
	// VICISocket is the URI of the control socket, e.g. "unix:///run/ikegate/charon.vici".
	// Empty keeps the plugin's default (unix:///var/run/charon.vici).
	VICISocket string
	// ErrorNotifySocket is the URI of the error-notify plugin's socket
	// ("unix:///run/ikegate/charon.enfy"), where charon writes its alerts;
	// empty keeps the plugin's default. Only unix sockets: the alerts carry
	// peers' identities and addresses and must not be reachable over TCP.
	ErrorNotifySocket string
	// PluginIncludes is the glob of per-plugin files (load = yes/no and plugin
	// defaults) that form the plugin list with load_modular. Empty means the
	// distribution's /etc/strongswan.d/charon/*.conf.
	PluginIncludes string
	// UserspaceDataPlane loads kernel-libipsec: ESP is processed in charon and
	// packets reach it through the TUN device ipsec0, for hosts (and pods)
	// whose kernel has no usable XFRM ESP.
	UserspaceDataPlane bool
	// Client turns off what only belongs on a gateway or a host that owns its
	// resolver: resolve (rewrites /etc/resolv.conf) is not loaded.
	Client bool
	// DisablePlugins are plugins kept from loading even if their include
	// says yes, for example those that need facilities a container lacks
	// (ha, tpm, forecast).
	DisablePlugins []string
	Log            Logging
	// IKESATableSize and IKESATableSegments size charon's IKE_SA manager
	// (ikesa_table_size, ikesa_table_segments): thousands of mobile clients
	// need a larger table and more lock segments than the defaults (1, 1).
	// Both must be powers of two; 0 keeps charon's default.
	IKESATableSize     int
	IKESATableSegments int
	Retransmit         Retransmit
	// HalfOpenTimeout is how long charon keeps an IKE_SA whose peer started
	// but never completed it (half_open_timeout, whole seconds); 0 keeps
	// charon's 30 s.
	HalfOpenTimeout time.Duration
	// EAPRADIUS configures the eap-radius plugin of a gateway whose clients
	// a RADIUS server authenticates; nil leaves the plugin's defaults.
	EAPRADIUS *EAPRADIUS
}

// Logging configures charon's file and stderr loggers.
type Logging struct {
	// Levels maps a subsystem (see Subsystems) or "default" to a level from
	// -1 (silent) to 4 (raw, includes sensitive material: never in production).
	Levels map[string]int
	// File, when set, logs to a file with Levels.
	File *FileLog
	// Stderr logs to charon's stderr with Levels (container logs).
	Stderr bool
}

// FileLog is one file logger.
type FileLog struct {
	Path string
	// FlushLine flushes after every line, so readers (tests, tail -f, the
	// agent) see a line as soon as charon logs it.
	FlushLine bool
	// Append keeps the existing content instead of truncating at start.
	Append bool
	// TimeFormat is a strftime(3) prefix; empty logs no timestamp.
	TimeFormat string
}

// Retransmit holds charon's IKE retransmission settings; zero values keep
// charon's defaults (5 tries, 4 s timeout, base 1.8, no jitter, no limit).
type Retransmit struct {
	Tries   int
	Timeout time.Duration
	Base    float64
	// Jitter is a percentage (0-100) subtracted at random from each timeout.
	Jitter int
	// Limit caps a single retransmission timeout.
	Limit time.Duration
}

// Subsystems are charon's logging subsystems in the order charon lists them.
var Subsystems = []string{
	"dmn", "mgr", "ike", "chd", "job", "cfg", "knl", "net", "asn",
	"enc", "lib", "esp", "tls", "tnc", "imc", "imv", "pts",
}

// Log levels as charon names them.
const (
	LogSilent  = -1
	LogAudit   = 0
	LogControl = 1
	LogDiag    = 2
	LogRaw     = 3
	LogPrivate = 4
)

// Validate reports settings charon would reject or silently misread.
func (s Settings) Validate() error {
	var errs []error
	for k, v := range s.Log.Levels {
		if k != "default" && !slices.Contains(Subsystems, k) {
			errs = append(errs, fmt.Errorf("unknown log subsystem %q", k))
		}
		if v < LogSilent || v > LogPrivate {
			errs = append(errs, fmt.Errorf("log level %d of %s outside -1..4", v, k))
		}
	}
	if s.Log.File != nil && !strings.HasPrefix(s.Log.File.Path, "/") {
		errs = append(errs, fmt.Errorf("log file path %q is not absolute", s.Log.File.Path))
	}
	for name, n := range map[string]int{"ikesa_table_size": s.IKESATableSize, "ikesa_table_segments": s.IKESATableSegments} {
		if n < 0 || n&(n-1) != 0 {
			errs = append(errs, fmt.Errorf("%s %d is not a power of two", name, n))
		}
	}
	if s.VICISocket != "" && !strings.HasPrefix(s.VICISocket, "unix://") && !strings.HasPrefix(s.VICISocket, "tcp://") {
		errs = append(errs, fmt.Errorf("VICI socket %q is not a unix:// or tcp:// URI", s.VICISocket))
	}
	if r := s.Retransmit; r.Tries < 0 || r.Timeout < 0 || r.Base < 0 || r.Jitter < 0 || r.Jitter > 100 || r.Limit < 0 {
		errs = append(errs, errors.New("retransmission settings must not be negative and jitter is a percentage"))
	}
	if s.HalfOpenTimeout < 0 || s.HalfOpenTimeout%time.Second != 0 {
		errs = append(errs, fmt.Errorf("half_open_timeout %s is not a whole number of seconds", s.HalfOpenTimeout))
	}
	for _, p := range s.DisablePlugins {
		if p == "" || strings.ContainsAny(p, " \t\n{}=#") {
			errs = append(errs, fmt.Errorf("invalid plugin name %q", p))
		}
	}
	if s.ErrorNotifySocket != "" && !strings.HasPrefix(s.ErrorNotifySocket, "unix://") {
		errs = append(errs, fmt.Errorf("error-notify socket %q is not a unix:// URI", s.ErrorNotifySocket))
	}
	for _, v := range []string{s.Daemon, s.VICISocket, s.ErrorNotifySocket, s.PluginIncludes} {
		if strings.ContainsAny(v, "\n{}#") {
			errs = append(errs, fmt.Errorf("value %q contains strongswan.conf syntax", v))
		}
	}
	if f := s.Log.File; f != nil && strings.ContainsAny(f.Path+f.TimeFormat, "\n{}#") {
		errs = append(errs, errors.New("log file settings contain strongswan.conf syntax"))
	}
	if err := s.EAPRADIUS.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// RenderStrongswanConf prints s as strongswan.conf. The output depends only
// on s (map keys come out in a fixed order), so it can be compared and hashed
// to decide whether charon must restart. Call Validate first: Render does not
// escape values.
func RenderStrongswanConf(s Settings) string {
	w := &confWriter{}
	daemon := s.Daemon
	if daemon == "" {
		daemon = "charon"
	}
	w.line("# strongswan.conf rendered by ikegate; charon reads it only at start.")
	w.open(daemon)
	// The plugin list comes from the includes below, not from a compiled-in list.
	w.kv("load_modular", "yes")
	if s.IKESATableSize > 0 {
		w.kv("ikesa_table_size", strconv.Itoa(s.IKESATableSize))
	}
	if s.IKESATableSegments > 0 {
		w.kv("ikesa_table_segments", strconv.Itoa(s.IKESATableSegments))
	}
	r := s.Retransmit
	if r.Tries > 0 {
		w.kv("retransmit_tries", strconv.Itoa(r.Tries))
	}
	if r.Timeout > 0 {
		w.kv("retransmit_timeout", seconds(r.Timeout))
	}
	if r.Base > 0 {
		w.kv("retransmit_base", strconv.FormatFloat(r.Base, 'f', -1, 64))
	}
	if r.Jitter > 0 {
		w.kv("retransmit_jitter", strconv.Itoa(r.Jitter))
	}
	if r.Limit > 0 {
		w.kv("retransmit_limit", seconds(r.Limit))
	}
	if s.HalfOpenTimeout > 0 {
		w.kv("half_open_timeout", strconv.Itoa(int(s.HalfOpenTimeout/time.Second)))
	}
	if s.Log.File != nil || s.Log.Stderr {
		w.open("filelog")
		if f := s.Log.File; f != nil {
			w.open("ikegate")
			w.kv("path", f.Path)
			if f.TimeFormat != "" {
				w.kv("time_format", f.TimeFormat)
			}
			w.kv("append", yesNo(f.Append))
			w.kv("flush_line", yesNo(f.FlushLine))
			w.kv("ike_name", "yes")
			levels(w, s.Log.Levels)
			w.close()
		}
		if s.Log.Stderr {
			// A filelog named stderr writes to the stream instead of a file.
			w.open("stderr")
			w.kv("ike_name", "yes")
			levels(w, s.Log.Levels)
			w.close()
		}
		w.close()
	}
	w.open("plugins")
	inc := s.PluginIncludes
	if inc == "" {
		inc = "/etc/strongswan.d/charon/*.conf"
	}
	w.line("include " + inc)
	if s.VICISocket != "" {
		w.open("vici")
		w.kv("socket", s.VICISocket)
		w.close()
	}
	if s.ErrorNotifySocket != "" {
		w.open("error-notify")
		w.kv("socket", s.ErrorNotifySocket)
		w.close()
	}
	s.EAPRADIUS.render(w)
	// Later sections merge into the included ones, so these override them.
	load := map[string]bool{"kernel-libipsec": s.UserspaceDataPlane}
	if s.Client {
		load["resolve"] = false
	}
	for _, p := range s.DisablePlugins {
		load[p] = false
	}
	names := make([]string, 0, len(load))
	for p := range load {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, p := range names {
		w.open(p)
		w.kv("load", yesNo(load[p]))
		w.close()
	}
	w.close()
	w.close()
	return w.b.String()
}

func levels(w *confWriter, l map[string]int) {
	if v, ok := l["default"]; ok {
		w.kv("default", strconv.Itoa(v))
	}
	for _, sub := range Subsystems {
		if v, ok := l[sub]; ok {
			w.kv(sub, strconv.Itoa(v))
		}
	}
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

type confWriter struct {
	b     strings.Builder
	depth int
}

func (w *confWriter) line(s string) {
	w.b.WriteString(strings.Repeat("  ", w.depth))
	w.b.WriteString(s)
	w.b.WriteByte('\n')
}

func (w *confWriter) kv(k, v string) { w.line(k + " = " + v) }

func (w *confWriter) open(name string) {
	w.line(name + " {")
	w.depth++
}

func (w *confWriter) close() {
	w.depth--
	w.line("}")
}

// ConfWriter writes the settings syntax charon and swanctl read (sections
// in braces, one key = value per line), for other packages that write
// files in it, such as a client's swanctl.conf. Values go as given: Quote
// them unless they are tokens.
type ConfWriter struct{ w confWriter }

// Open starts a section.
func (c *ConfWriter) Open(name string) { c.w.open(name) }

// Close ends the innermost section.
func (c *ConfWriter) Close() { c.w.close() }

// KV writes one setting.
func (c *ConfWriter) KV(k, v string) { c.w.kv(k, v) }

// Line writes a line as it is, indented.
func (c *ConfWriter) Line(s string) { c.w.line(s) }

// String is what was written.
func (c *ConfWriter) String() string { return c.w.b.String() }

// Quote returns v unchanged when the settings parser reads it back as is,
// and quoted with escapes otherwise.
func Quote(v string) string { return quote(v) }
