package swan

import (
	"strings"

	"github.com/ikegate/ikegate/internal/names"
)

// MaxNameLen bounds every model name built from an object name. Object names
// run to 253 characters, but VICI carries a section name (a connection, pool
// or authority) behind a one-byte length (strongSwan
// src/libcharon/plugins/vici/vici_message.c reads it into char[257]), and
// charon's error-notify messages, which tell which connection failed, hold
// a connection name in char[64]
// (src/libcharon/plugins/error_notify/error_notify_msg.h). Certificate names
// become file names of swanctl's credential directories (Files), which the
// bound keeps under NAME_MAX too (a CA bundle numbers its further
// certificates -2, -3, ... beyond it).
const MaxNameLen = 63

// nameHashSep ends the kept part of a shortened name. Object names are
// [a-z0-9.-] and sanitize turns dots into underscores, so a name kept whole
// never holds it; charon and swanctl.conf section names accept it.
const nameHashSep = '~'

// modelName is the model name of an object named name: the prefix and
// suffix around it, shortened to MaxNameLen (see names.Fit) when longer.
func modelName(prefix, name, suffix string) string {
	return names.Fit(prefix+sanitize(name)+suffix, MaxNameLen, nameHashSep)
}

// sanitize maps a Kubernetes object name into the model's name space: dots
// split swanctl settings paths, and Kubernetes names never hold underscores.
func sanitize(name string) string { return strings.ReplaceAll(name, ".", "_") }
