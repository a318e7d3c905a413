package radiusd

import (
	"fmt"
	"testing"

	"layeh.com/radius"
)

// BenchmarkLogin is the server's own work for one whole login (three
// Access-Requests answered, MS-CHAPv2 verified, keys derived), in process,
// with 10 and 100,000 users in the map: the part of a connect the user
// count could change.
func BenchmarkLogin(b *testing.B) {
	for _, n := range []int{10, 100000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			m := &Map{}
			for i := range n {
				m.Set(fmt.Sprintf("user%06d", i), User{NTHash: ntHashOf(fmt.Sprintf("pass-%06d", i))})
			}
			s, err := New(Options{Addr: "127.0.0.1:0", Secret: []byte("s3cret"), Users: m, MaxPending: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer s.conn.Close()
			nas := newNAS(b, s)
			i := 0
			for b.Loop() {
				user := fmt.Sprintf("user%06d", i%n)
				nas.state = nil
				l, eapID := nas.loginUntilSuccess(user, fmt.Sprintf("pass-%06d", i%n))
				if resp := nas.ack(l, eapID); resp == nil || resp.Code != radius.CodeAccessAccept {
					b.Fatalf("Login %d not accepted", i)
				}
				i++
			}
		})
	}
}
