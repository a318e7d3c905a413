package credentials_test

import (
	"crypto/md5"
	"encoding/json"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// shardBudget is what a credentials shard may take in any of its encodings
// at 100,000 users: the API refuses a Secret whose data exceeds 1 MiB, and
// etcd a request over 1.5 MiB; a tenth of the limit is left for the
// gateway's own values (CA bundles, PSKs) and for the shards that FNV-1a
// fills more than the mean.
const shardBudget = 900 << 10

// At 100,000 users with a Secret each, every credentials shard stays under
// shardBudget however it travels: as the API validates it (data keys and
// values), as etcd stores it (protobuf) and as watches deliver it to the
// gateway pods (JSON, the hashes base64). A user costs its data key
// ("nthash_<secret>_<key>") and a 16-byte hash: in JSON its Secret's
// name and about 46 bytes, so Secret names of up to about 90 characters on
// average fit.
func TestSizeAt100000Users(t *testing.T) {
	first := []string{"anna", "bernd", "chiara", "dmitri", "elena", "farid", "grace", "hiroshi", "ines", "jakob", "kwame", "lucia", "mohammed", "nadia", "oskar", "priya"}
	last := []string{"okonkwo", "schmidt", "rossi", "ivanova", "garcia", "haddad", "oconnor", "tanaka", "ferreira", "lindqvist", "mensah", "moreau", "alrashid", "kowalczyk", "nielsen", "raghunathan"}
	for _, tc := range []struct {
		what string
		name func(i int) string
	}{
		{"short names", func(i int) string { return fmt.Sprintf("u-%06d", i) }},
		{"people's names", func(i int) string {
			return fmt.Sprintf("%s.%s-%d-vpn-password", first[i%len(first)], last[i/len(first)%len(last)], i)
		}},
		{"long names", func(i int) string { return fmt.Sprintf("user-%06d-of-the-sales-and-marketing-department-password", i) }},
	} {
		t.Run(tc.what, func(t *testing.T) {
			const users = 100000
			// What Data derives from a user's password Secret: its data key
			// and the 16-byte NT hash (any 16 bytes encode alike).
			data := make(map[string][]byte, users)
			for i := range users {
				h := md5.Sum([]byte(tc.name(i)))
				data[credentials.NTHashKey(tc.name(i), gen.PasswordKey)] = h[:]
			}
			entries := 0
			for i, shard := range credentials.Split(data) {
				entries += len(shard)
				// Evenly would be 6,250 each.
				if len(shard) < 5800 || len(shard) > 6700 {
					t.Errorf("Shard %d holds %d users, want about 6,250", i, len(shard))
				}
				s := corev1.Secret{
					TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
					ObjectMeta: metav1.ObjectMeta{Namespace: gen.Namespace, Name: credentials.ShardName(gen.GatewayName, i)},
					Type:       corev1.SecretTypeOpaque,
					Data:       shard,
				}
				js, err := json.Marshal(&s)
				if err != nil {
					t.Fatal(err)
				}
				validated := 0
				for k, v := range shard {
					validated += len(k) + len(v)
				}
				for encoding, size := range map[string]int{"data": validated, "protobuf": s.Size(), "JSON": len(js)} {
					if size >= shardBudget {
						t.Errorf("Shard %d takes %d KiB as %s, want under %d KiB", i, size>>10, encoding, shardBudget>>10)
					}
				}
				if i == 0 {
					t.Logf("%q: shard 0 holds %d users in %d KiB of JSON (%d bytes a user)", tc.name(0), len(shard), len(js)>>10, len(js)/len(shard))
				}
			}
			if entries != users {
				t.Fatalf("The shards hold %d users, want %d", entries, users)
			}
		})
	}
}
