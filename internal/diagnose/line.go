package diagnose

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// LogEvent is one message charon logged, from any of its loggers. The VICI
// `log` event carries the same fields (vici_logger.c: group, level, thread,
// ikesa-name, ikesa-uniqueid, msg); a line of a file log or syslog carries
// them only as far as its logger was told to print them.
type LogEvent struct {
	// Time is when the line was logged; zero if unknown.
	Time time.Time
	// Group is charon's subsystem ("IKE", "CFG", "ENC", ...); "" if unknown.
	Group string
	// Level is the message's log level; -1 if the logger did not print it.
	Level int
	// Thread is charon's thread number; -1 if unknown. Kept for display:
	// threads do not identify IKE_SAs.
	Thread int
	// IKESA is the IKE_SA's unique id; 0 if the line was not about one or the
	// logger ran without ike_name.
	IKESA uint32
	// IKEName is the connection name ("" while none is selected).
	IKEName string
	Msg     string
}

// File log lines (file_logger.c): "%s %.2d[%s]%s " with the strftime
// prefix, the thread, the group (with the level if log_level is set) and,
// with ike_name, " <%s|%d>" or " <%d>"; then the message.
var fileLine = regexp.MustCompile(`^(?:(.*?) )?(\d{2})\[([A-Z]{3})(\d)?\] (?:<(?:([^|<>]*)\|)?(\d{1,10})> )?(.*)$`)

// Syslog lines as rsyslog or journalctl print them: a BSD or RFC 3339
// stamp, the host, and the tag charon (sys_logger.c opens "charon") or
// charon-systemd (the journal logger, whose message carries no thread or
// group prefix).
var syslogLine = regexp.MustCompile(`^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\S*) \S+ (?:charon|charon-systemd|ipsec)(?:\[\d+\])?: (.*)$`)

// The prefix of charon's syslog logger within a syslog line ("%.2d[%s]%s ").
var syslogPrefix = regexp.MustCompile(`^(\d{2})\[([A-Z]{3})(\d)?\] (?:<(?:([^|<>]*)\|)?(\d{1,10})> )?(.*)$`)

// swanctl's own log output, as swanctl --initiate prints charon's messages.
var swanctlLine = regexp.MustCompile(`^\[([A-Z]{3})\] (.*)$`)

// Stamps charon's default time_format (%b %e %T), the harness's (%T) and
// ISO forms produce; years absent from the stamp stay 0.
var stampLayouts = []string{
	"Jan _2 15:04:05.000", "Jan _2 15:04:05", "15:04:05.000", "15:04:05",
	"2006-01-02 15:04:05.000", "2006-01-02 15:04:05", time.RFC3339Nano, "2006-01-02T15:04:05.000000",
}

// ParseLine reads one line of charon's file log, of syslog, or of swanctl's
// output. It reports false for lines none of them produce.
func ParseLine(line string) (LogEvent, bool) {
	line = strings.TrimRight(line, "\r\n")
	if m := syslogLine.FindStringSubmatch(line); m != nil {
		ev := LogEvent{Time: parseStamp(m[1]), Level: -1, Thread: -1, Msg: m[2]}
		if p := syslogPrefix.FindStringSubmatch(m[2]); p != nil {
			fillPrefix(&ev, p[1], p[2], p[3], p[4], p[5])
			ev.Msg = p[6]
		}
		return ev, true
	}
	if m := fileLine.FindStringSubmatch(line); m != nil {
		ev := LogEvent{Time: parseStamp(m[1]), Level: -1, Msg: m[7]}
		fillPrefix(&ev, m[2], m[3], m[4], m[5], m[6])
		return ev, true
	}
	if m := swanctlLine.FindStringSubmatch(line); m != nil {
		return LogEvent{Group: m[1], Level: -1, Thread: -1, Msg: m[2]}, true
	}
	return LogEvent{}, false
}

func fillPrefix(ev *LogEvent, thread, group, level, name, id string) {
	ev.Thread, _ = strconv.Atoi(thread)
	ev.Group = group
	ev.Level = -1
	if level != "" {
		ev.Level, _ = strconv.Atoi(level)
	}
	ev.IKEName = name
	if n, err := strconv.ParseUint(id, 10, 32); err == nil {
		ev.IKESA = uint32(n)
	}
}

func parseStamp(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range stampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
