package serial

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	bugserial "go.bug.st/serial"
)

// Port is the transport of one bus: a serial line or a TCP stream (an
// RS-485-to-Ethernet converter, or the simulator). Ports are used by one
// goroutine at a time (the Bus holds its mutex).
type Port interface {
	io.ReadWriteCloser
	// SetReadTimeout bounds the next Reads: a Read that sees no byte within
	// d returns 0, nil (as go.bug.st/serial does).
	SetReadTimeout(d time.Duration) error
	// ResetInput drops input already received: stale replies and line noise
	// must not be taken for the answer to the next command.
	ResetInput() error
}

// Dial opens addr: "tcp://host:port" for a TCP stream, anything else is a
// serial device path opened at baud, 8N1.
func Dial(addr string, baud int) (Port, error) {
	if hostport, ok := strings.CutPrefix(addr, "tcp://"); ok {
		c, err := net.DialTimeout("tcp", hostport, 2*time.Second)
		if err != nil {
			return nil, fmt.Errorf("serial: dial %s: %w", addr, err)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true) // frames are 5–9 bytes: never wait to coalesce
		}
		return &tcpPort{c: c}, nil
	}
	p, err := bugserial.Open(addr, &bugserial.Mode{
		BaudRate: baud, DataBits: 8, Parity: bugserial.NoParity, StopBits: bugserial.OneStopBit,
	})
	if err != nil {
		return nil, fmt.Errorf("serial: open %s: %w", addr, err)
	}
	return &ttyPort{p}, nil
}

// ttyPort adapts a go.bug.st/serial port.
type ttyPort struct{ bugserial.Port }

func (p *ttyPort) ResetInput() error { return p.Port.ResetInputBuffer() }

// tcpPort adapts a TCP connection to the serial-port semantics the Bus
// expects: a read timeout returns 0, nil; resetting input drains what has
// already arrived.
type tcpPort struct {
	c       net.Conn
	timeout time.Duration
}

func (p *tcpPort) Read(b []byte) (int, error) {
	if p.timeout > 0 {
		p.c.SetReadDeadline(time.Now().Add(p.timeout))
	} else {
		p.c.SetReadDeadline(time.Time{})
	}
	n, err := p.c.Read(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return n, nil
	}
	return n, err
}

func (p *tcpPort) Write(b []byte) (int, error) {
	p.c.SetWriteDeadline(time.Now().Add(time.Second))
	return p.c.Write(b)
}

func (p *tcpPort) SetReadTimeout(d time.Duration) error {
	p.timeout = d
	return nil
}

// ResetInput drains bytes that are already waiting. TCP has no input buffer
// to purge, so it reads with a very short deadline until nothing comes:
// bytes still in flight on the network are not caught, which is why the Bus
// also checks every reply's address and kind.
func (p *tcpPort) ResetInput() error {
	buf := make([]byte, 256)
	for range 64 { // bounded: a chattering peer must not hold the bus
		p.c.SetReadDeadline(time.Now().Add(time.Millisecond))
		n, err := p.c.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			return err
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}

func (p *tcpPort) Close() error { return p.c.Close() }
