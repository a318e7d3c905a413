package main

import (
	"errors"
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
)

// listenUDPIn binds a UDP socket to addr inside the network namespace at
// path (e.g. /run/netns/x); the socket stays in that namespace wherever it
// is used from. In a gateway pod the agent shares charon's namespace and
// needs none of this; it lets an agent outside serve charon's loopback,
// like --firewall-netns for nftables.
func listenUDPIn(path, addr string) (net.PacketConn, error) {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("entering network namespace %s: %w", path, err)
	}
	conn, lerr := net.ListenPacket("udp", addr)
	if err := netns.Set(orig); err != nil {
		// The thread stays locked, so the runtime ends it with the
		// goroutine instead of reusing it in the wrong namespace.
		if conn != nil {
			conn.Close()
		}
		return nil, errors.Join(lerr, fmt.Errorf("returning from network namespace %s: %w", path, err))
	}
	runtime.UnlockOSThread()
	return conn, lerr
}
