package radiusd

import (
	"fmt"
	"runtime"
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

// BenchmarkMapHeapPerUser reports what a Map costs per user at 100,000.
func BenchmarkMapHeapPerUser(b *testing.B) {
	const n = 100000
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("user%06d@example.com", i)
	}
	for b.Loop() {
		before := heapInUse()
		m := &Map{}
		for i, name := range names {
			m.Set(name, User{NTHash: [16]byte{byte(i)}})
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/n, "heap-B/user")
		runtime.KeepAlive(m)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
