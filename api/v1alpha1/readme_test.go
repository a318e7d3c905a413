package v1alpha1

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// declared collects the string constants of this package whose names start
// with prefix (ConditionX = "X"), by value.
func declared(t *testing.T, prefix string, except ...string) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				spec, ok := n.(*ast.ValueSpec)
				if !ok {
					return true
				}
				for i, name := range spec.Names {
					if !strings.HasPrefix(name.Name, prefix) || slices.ContainsFunc(except, func(e string) bool { return strings.HasPrefix(name.Name, e) }) || i >= len(spec.Values) {
						continue
					}
					if lit, ok := spec.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						values = append(values, v)
					}
				}
				return true
			})
		}
	}
	slices.Sort(values)
	return slices.Compact(values)
}

var backticked = regexp.MustCompile("`([A-Z][A-Za-z]+)`")

func names(s string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// readmeStatus is the README's "Reading status" table: the conditions of
// its first column, the reasons of its third, and the event reasons of the
// line after it.
func readmeStatus(t *testing.T) (conditions, reasons, events []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Reading status\n")
	if !ok {
		t.Fatal(`README.md has no "## Reading status" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for line := range strings.Lines(section) {
		cols := strings.Split(line, "|")
		switch {
		case len(cols) == 5 && strings.HasPrefix(strings.TrimSpace(cols[1]), "`"):
			conditions = append(conditions, names(cols[1])...)
			reasons = append(reasons, names(cols[3])...)
		case strings.HasPrefix(line, "Events of their own"):
			events = append(events, names(line)...)
		}
	}
	for _, l := range []*[]string{&conditions, &reasons, &events} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	return conditions, reasons, events
}

func TestReadmeListsTheAPIsConditionsAndReasons(t *testing.T) {
	conditions, reasons, events := readmeStatus(t)
	for _, c := range []struct {
		what           string
		readme, inCode []string
	}{
		{"condition types", conditions, declared(t, "Condition")},
		{"condition reasons", reasons, declared(t, "Reason")},
		{"event reasons", events, declared(t, "EventReason")},
	} {
		if len(c.inCode) == 0 {
			t.Fatalf("no %s declared in api/v1alpha1", c.what)
		}
		for _, v := range c.inCode {
			if !slices.Contains(c.readme, v) {
				t.Errorf("README's Reading status lacks the %s %q that api/v1alpha1 declares", c.what, v)
			}
		}
		for _, v := range c.readme {
			if !slices.Contains(c.inCode, v) {
				t.Errorf("README's Reading status names %s %q, which api/v1alpha1 does not declare", c.what, v)
			}
		}
	}
}
