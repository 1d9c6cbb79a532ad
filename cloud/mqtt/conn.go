package mqtt

import (
	"bufio"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// paho reads every packet straight from the connection: one read for the packet type,
// one per byte of the remaining length, one for the rest. At thousands of events a
// second that is the cloud's largest single cost after the fsyncs (a fifth of its CPU
// in the ingest profile, each read a system call). A read buffer turns a burst of
// packets into one read.

// readBufSize holds some hundred events (about 300 bytes each).
const readBufSize = 64 << 10

// bufferedConn is a net.Conn whose reads go through a buffer. Writes, deadlines and
// Close are the connection's own.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// plainTCP reports whether every broker URL is plain TCP (tcp://, mqtt://), which the
// adapter dials itself to buffer the reads. TLS and websocket URLs keep paho's own
// dialing (its TLS and websocket set-up), unbuffered.
func plainTCP(brokers []string) bool {
	for _, b := range brokers {
		u, err := url.Parse(b)
		if err != nil || u.Scheme != "tcp" && u.Scheme != "mqtt" {
			return false
		}
	}
	return true
}

// dialBuffered is a paho OpenConnectionFunc for plain TCP brokers. It dials directly
// (paho's own dialing would also honour a SOCKS proxy from the environment, which a
// cloud reaching its broker directly does not use).
func dialBuffered(timeout time.Duration) paho.OpenConnectionFunc {
	return func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout}
		c, err := d.Dial("tcp", u.Host)
		if err != nil {
			return nil, err
		}
		return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufSize)}, nil
	}
}
