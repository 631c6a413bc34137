package smtp

import (
	"net"
	"syscall"
)

// quickAck asks Linux to acknowledge what arrives on c at once rather than
// after its delayed-ACK timer (up to 40 ms). Pipelined replies come as
// several small writes; a server with Nagle's algorithm holds each one
// until the previous is acknowledged, and the client, which has nothing to
// send while it reads them, would otherwise delay that acknowledgement.
// The mode lapses by itself, so it is asked again before each read.
func quickAck(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
