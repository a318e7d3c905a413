// Package names fits names derived from Kubernetes object names (which run
// to 253 characters) into the shorter names of the systems that hold them:
// charon's connections, pools and secrets, nftables' chains and counters.
//
// A name that fits is kept as it is, so short names stay readable and do not
// change. A longer one keeps as much of its beginning as fits, then a
// separator, then a hash of the whole name. Callers pick a separator that
// their names can never contain otherwise: a shortened name then never equals
// a name kept whole, and two shortened names are equal only if their 64-bit
// hashes are.
package names

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// hashLen is the number of hex digits of the hash: 64 bits, so that no
// object created by chance, or on purpose, shares a shortened name.
const hashLen = 16

// MinMax is the smallest max that Fit accepts: the separator and the hash.
const MinMax = hashLen + 1

// Fit returns name if it is at most max bytes long, and otherwise the
// longest prefix of name (cut between characters) that leaves room for sep
// and the hash of name. It panics if max is below MinMax, a limit known when
// the caller is written.
func Fit(name string, max int, sep byte) string {
	if max < MinMax {
		panic(fmt.Sprintf("names.Fit: max %d leaves no room for the hash", max))
	}
	if len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	keep := max - MinMax
	for keep > 0 && !utf8.RuneStart(name[keep]) {
		keep--
	}
	return name[:keep] + string(sep) + hex.EncodeToString(sum[:])[:hashLen]
}
