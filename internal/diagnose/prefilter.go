package diagnose

import (
	"regexp"
	"regexp/syntax"
	"strings"
)

// literals are text every match of a signal's pattern holds: a line
// without them is passed over without running the pattern. Go's regexp
// runs its backtracker on each of the signals for each line otherwise,
// and a gateway's agent reads every line charon logs at level 1.
type literals struct {
	// prefix starts every match of an anchored pattern.
	prefix string
	// contains is the longest literal of the pattern's top-level sequence.
	contains string
}

// literalsOf reads the literals of re's top-level sequence; a pattern
// without any (an alternation, say) admits every line.
func literalsOf(re *regexp.Regexp) literals {
	parsed, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return literals{}
	}
	parsed = parsed.Simplify()
	if parsed.Op != syntax.OpConcat {
		return literals{}
	}
	var l literals
	for i, sub := range parsed.Sub {
		if sub.Op != syntax.OpLiteral || sub.Flags&syntax.FoldCase != 0 {
			continue
		}
		lit := string(sub.Rune)
		if i == 1 && parsed.Sub[0].Op == syntax.OpBeginText {
			l.prefix = lit
		}
		if len(lit) > len(l.contains) {
			l.contains = lit
		}
	}
	return l
}

// admits reports whether s may match.
func (l literals) admits(s string) bool {
	return strings.HasPrefix(s, l.prefix) && strings.Contains(s, l.contains)
}

// signalLiterals are the literals of each of the signals, by index.
var signalLiterals = func() []literals {
	out := make([]literals, len(signals))
	for i, s := range signals {
		out[i] = literalsOf(s.re)
	}
	return out
}()
