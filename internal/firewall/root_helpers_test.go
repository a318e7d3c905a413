package firewall

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/poll"
)

// topology is three namespaces in a row, as a gateway sees them:
//
//	client 10.3.200.5/24 (c0) <-> (tun) 10.3.200.1/24  router  10.3.0.1/24 (lan0) <-> (eth0) 10.3.0.10/24 lan
//
// The router's client-side interface carries the TUN device's name, so the
// Userspace data plane's iifname/oifname matches apply to it. The lan
// namespace also holds 10.3.1.10 (a destination no pool may reach) and
// 10.9.0.1 (a "remote site" network) on lo; the router holds the gateway
// address 198.51.100.10 on lo.
type topology struct {
	client, router, lan *netns.NS
}

const (
	clientAddr  = "10.3.200.5"
	routerPool  = "10.3.200.1"
	routerLAN   = "10.3.0.1"
	lanAddr     = "10.3.0.10"
	otherLAN    = "10.3.1.10"
	remoteSite  = "10.9.0.1"
	gatewayAddr = "198.51.100.10"
)

func newTopology(t *testing.T, tun string, lanRoutesBack bool) *topology {
	t.Helper()
	tp := &topology{
		client: netns.New(t, "fwc"),
		router: netns.New(t, "fwr"),
		lan:    netns.New(t, "fwl"),
	}
	netns.VethNamed(t, tp.client, "c0", tp.router, tun, clientAddr+"/24", routerPool+"/24")
	netns.VethNamed(t, tp.router, "lan0", tp.lan, "eth0", routerLAN+"/24", lanAddr+"/24")
	tp.router.EnableForwarding(t)
	tp.router.AddLoopbackAddr(t, gatewayAddr+"/32")
	tp.router.AddRoute(t, otherLAN+"/32", "via", lanAddr)
	tp.router.AddRoute(t, "10.9.0.0/24", "via", lanAddr)
	tp.client.AddRoute(t, "default", "via", routerPool)
	tp.lan.AddLoopbackAddr(t, otherLAN+"/32")
	tp.lan.AddLoopbackAddr(t, remoteSite+"/32")
	if lanRoutesBack {
		tp.lan.AddRoute(t, "10.3.200.0/24", "via", routerLAN)
	}
	return tp
}

// serve listens on addr inside ns and answers every connection with the
// address it came from, as the server sees it.
func serve(t *testing.T, ns *netns.NS, addr string) {
	t.Helper()
	var ln net.Listener
	ns.MustDo(t, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(c.RemoteAddr().(*net.TCPAddr).IP.String()))
			_ = c.Close()
		}
	}()
}

// dial connects from ns to addr and returns what the server saw as our address.
func dial(ns *netns.NS, addr string, timeout time.Duration) (string, error) {
	var seen []byte
	err := ns.Do(func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		seen, err = io.ReadAll(c)
		return err
	})
	return string(seen), err
}

// capture records the IPv4 packets an interface sends and receives
// (AF_PACKET, cooked), to look at TCP options as they are on the wire.
type capture struct {
	fd   int
	mu   sync.Mutex
	pkts [][]byte
	done chan struct{}
}

func startCapture(t *testing.T, ns *netns.NS, ifname string) *capture {
	t.Helper()
	c := &capture{fd: -1, done: make(chan struct{})}
	ns.MustDo(t, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		// ETH_P_ALL: protocol-specific packet sockets never see outgoing packets.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		c.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			return err
		}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50000})
	})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		buf := make([]byte, 65536)
		for {
			select {
			case <-c.done:
				return
			default:
			}
			n, _, err := unix.Recvfrom(c.fd, buf, 0)
			if err != nil {
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
					continue
				}
				return
			}
			c.mu.Lock()
			c.pkts = append(c.pkts, append([]byte(nil), buf[:n]...))
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(c.done)
		<-stopped
		unix.Close(c.fd)
	})
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// tcpSegment is the part of a captured TCP/IPv4 packet the tests look at.
type tcpSegment struct {
	src, dst         net.IP
	srcPort, dstPort uint16
	syn, ack         bool
	mss              int // -1 without an MSS option
}

func (c *capture) segments() []tcpSegment {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []tcpSegment
	for _, p := range c.pkts {
		if len(p) < 20 || p[0]>>4 != 4 || p[9] != unix.IPPROTO_TCP {
			continue
		}
		ihl := int(p[0]&0x0f) * 4
		tcp := p[ihl:]
		if len(tcp) < 20 {
			continue
		}
		s := tcpSegment{
			src: net.IP(p[12:16]), dst: net.IP(p[16:20]),
			srcPort: binary.BigEndian.Uint16(tcp[0:2]), dstPort: binary.BigEndian.Uint16(tcp[2:4]),
			syn: tcp[13]&0x02 != 0, ack: tcp[13]&0x10 != 0, mss: -1,
		}
		doff := int(tcp[12]>>4) * 4
		opts := tcp[20:min(doff, len(tcp))]
		for len(opts) > 0 {
			kind := opts[0]
			if kind == 0 {
				break
			}
			if kind == 1 {
				opts = opts[1:]
				continue
			}
			if len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts) {
				break
			}
			if kind == 2 && opts[1] == 4 {
				s.mss = int(binary.BigEndian.Uint16(opts[2:4]))
			}
			opts = opts[opts[1]:]
		}
		out = append(out, s)
	}
	return out
}

// synMSS returns the MSS options of SYNs (ack false) or SYN/ACKs (ack true)
// of connections to or from port.
func (c *capture) synMSS(port uint16, ack bool) []int {
	var out []int
	for _, s := range c.segments() {
		if s.syn && s.ack == ack && (s.dstPort == port || s.srcPort == port) {
			out = append(out, s.mss)
		}
	}
	return out
}

// waitFor polls cond for up to 3 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Eventually(t, what, 3*time.Second, poll.Holds(cond), poll.Every(20*time.Millisecond))
}

// openTUN creates a TUN device (no packet information header) inside ns.
func openTUN(t *testing.T, ns *netns.NS, name string) *os.File {
	t.Helper()
	var f *os.File
	ns.MustDo(t, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return err
		}
		f = os.NewFile(uintptr(fd), "/dev/net/tun")
		return nil
	})
	t.Cleanup(func() { f.Close() })
	return f
}

// udp4Packet builds an IPv4/UDP packet (UDP checksum 0, allowed over IPv4).
func udp4Packet(src, dst net.IP, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8] = 64
	p[9] = unix.IPPROTO_UDP
	copy(p[12:16], src.To4())
	copy(p[16:20], dst.To4())
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	return p
}
