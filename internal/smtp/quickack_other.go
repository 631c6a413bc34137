//go:build !linux

package smtp

import "net"

// quickAck is Linux's TCP_QUICKACK; elsewhere the kernel decides.
func quickAck(net.Conn) {}
