package v1alpha1

import (
	"reflect"
	"strings"
	"testing"
	"unicode"
)

// describeLabel is how kubectl describe titles a custom resource's field
// (smartLabelFor in k8s.io/kubectl/pkg/describe, which splits with
// github.com/fatih/camelcase): a name with a character other than letters
// and '-' as it is, else runs of one character class, an upper-case run
// giving its last letter to a lower-case run after it.
func describeLabel(field string) string {
	if strings.IndexFunc(field, func(r rune) bool { return !unicode.IsLetter(r) && r != '-' }) >= 0 {
		return field
	}
	class := func(r rune) int {
		switch {
		case unicode.IsLower(r):
			return 1
		case unicode.IsUpper(r):
			return 2
		case unicode.IsDigit(r):
			return 3
		}
		return 4
	}
	var runs [][]rune
	for i, r := range field {
		if i > 0 && class(r) == class(runs[len(runs)-1][0]) {
			runs[len(runs)-1] = append(runs[len(runs)-1], r)
			continue
		}
		runs = append(runs, []rune{r})
	}
	for i := 0; i+1 < len(runs); i++ {
		if len(runs[i]) > 0 && unicode.IsUpper(runs[i][0]) && unicode.IsLower(runs[i+1][0]) {
			last := len(runs[i]) - 1
			runs[i+1] = append([]rune{runs[i][last]}, runs[i+1]...)
			runs[i] = runs[i][:last]
		}
	}
	var parts []string
	for _, r := range runs {
		if len(r) > 0 {
			parts = append(parts, strings.ToUpper(string(r[:1]))+string(r[1:]))
		}
	}
	return strings.Join(parts, " ")
}

func TestDescribeLabel(t *testing.T) {
	for field, want := range map[string]string{
		"virtualIPs":       "Virtual I Ps",
		"virtualAddresses": "Virtual Addresses",
		"peerCARef":        "Peer CA Ref",
		"localTS":          "Local TS",
		"ikeProposal":      "Ike Proposal",
		"ipv6":             "ipv6",
	} {
		if got := describeLabel(field); got != want {
			t.Errorf("describeLabel(%q) = %q, want %q", field, got, want)
		}
	}
}

// A plural acronym ("IPs") falls apart in kubectl describe into a letter
// and a fragment ("Virtual I Ps"); every field must read as words.
func TestFieldNamesReadWellInDescribe(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		// Only our own types: metav1's names are Kubernetes' to choose.
		if typ.Kind() != reflect.Struct || typ.PkgPath() != reflect.TypeFor[VPNGateway]().PkgPath() || seen[typ] {
			return
		}
		seen[typ] = true
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				walk(path, f.Type)
				continue
			}
			for part := range strings.FieldsSeq(describeLabel(name)) {
				if len(part) == 1 && len(name) > 1 {
					t.Errorf("%s.%s reads %q in kubectl describe", path, name, describeLabel(name))
					break
				}
			}
			walk(path+"."+name, f.Type)
		}
	}
	for _, obj := range []any{VPNGateway{}, MobilePool{}, VPNUser{}, Tunnel{}} {
		walk(reflect.TypeOf(obj).Name(), reflect.TypeOf(obj))
	}
	if len(seen) < 10 {
		t.Fatalf("walked only %d types", len(seen))
	}
}
