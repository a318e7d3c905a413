package vici

import (
	"fmt"

	govici "github.com/strongswan/govici/vici"
)

// The limits of VICI's wire format in strongSwan 5.9.8. A message over them
// cannot be sent at all: govici refuses to encode a name or value that does
// not fit its length field (and its error cannot be told from a broken
// socket), and charon closes the connection on a message over its size
// limit. Either way every later command of the Apply would fail with it, so
// messages are measured before they are sent.
const (
	// maxWireName is a section, key or list name: one length byte
	// (src/libcharon/plugins/vici/vici_message.c reads it with read_data8).
	maxWireName = 255
	// maxWireValue is a value or list item: two length bytes (read_data16).
	maxWireValue = 65535
	// maxWireMessage is VICI_MESSAGE_SIZE_MAX (vici_socket.h), counted
	// after the four-byte length that frames a message.
	maxWireMessage = 512 * 1024
)

// WireError says why a command's message cannot be sent, or is nil. It is
// exported so that vicitest.Fake refuses what a real connection could not
// carry.
func WireError(cmd string, m *govici.Message) error {
	// Packet type, command name behind its length byte.
	size := 1 + 1 + len(cmd)
	if len(cmd) > maxWireName {
		return fmt.Errorf("command name of %d bytes is over VICI's %d", len(cmd), maxWireName)
	}
	n, err := wireSize(m)
	if err != nil {
		return err
	}
	if size += n; size > maxWireMessage {
		return fmt.Errorf("message of %d bytes is over charon's limit of %d", size, maxWireMessage)
	}
	return nil
}

// wireSize is the encoded size of m's elements.
func wireSize(m *govici.Message) (int, error) {
	if m == nil {
		return 0, nil
	}
	size := 0
	for _, k := range m.Keys() {
		if len(k) > maxWireName {
			return 0, fmt.Errorf("name %.40q... of %d bytes is over VICI's %d", k, len(k), maxWireName)
		}
		// Element type and the name behind its length byte.
		size += 1 + 1 + len(k)
		switch v := m.Get(k).(type) {
		case string:
			if len(v) > maxWireValue {
				return 0, fmt.Errorf("value of %s of %d bytes is over VICI's %d", k, len(v), maxWireValue)
			}
			size += 2 + len(v)
		case []string:
			for _, item := range v {
				if len(item) > maxWireValue {
					return 0, fmt.Errorf("item of %s of %d bytes is over VICI's %d", k, len(item), maxWireValue)
				}
				size += 1 + 2 + len(item)
			}
			size++ // list end
		case *govici.Message:
			n, err := wireSize(v)
			if err != nil {
				return 0, fmt.Errorf("%.40s: %w", k, err)
			}
			size += n + 1 // section end
		}
	}
	return size, nil
}
