package board

import (
	"errors"
	"io"
)

// ErrNoData is returned by the Read methods of the stream decoders when the
// reader returned no bytes and no error (a serial read timeout), so that the
// caller gets control back instead of spinning.
var ErrNoData = errors.New("board: no data before read timeout")

// scanner is the resynchronising frame finder shared by both directions.
// Invariant: every byte fed is eventually either returned in a frame,
// counted in discarded, or still in buf.
type scanner struct {
	buf       []byte
	discarded uint64
	frames    uint64
	isStart   func(byte) bool
	frameLen  func(prefix []byte) int // >0 length, 0 need more, <0 impossible
	check     func(frame []byte) error
}

func (s *scanner) feed(p []byte) { s.buf = append(s.buf, p...) }

// next returns the next valid frame in the buffer; the slice is valid until
// the next feed.
func (s *scanner) next() ([]byte, bool) {
	for {
		// Skip to a possible start byte.
		i := 0
		for i < len(s.buf) && !s.isStart(s.buf[i]) {
			i++
		}
		s.drop(i)
		if len(s.buf) == 0 {
			return nil, false
		}
		n := s.frameLen(s.buf)
		if n == 0 || (n > 0 && len(s.buf) < n) {
			return nil, false
		}
		if n < 0 || s.check(s.buf[:n]) != nil {
			// Not a frame here: the start byte was garbage (or the frame
			// was garbled). Resynchronise at the next start byte.
			s.drop(1)
			continue
		}
		f := s.buf[:n:n]
		s.buf = s.buf[n:]
		s.frames++
		return f, true
	}
}

func (s *scanner) drop(n int) {
	s.discarded += uint64(n)
	s.buf = s.buf[n:]
	if len(s.buf) == 0 {
		s.buf = s.buf[:0:0] // let a long-lived decoder release old arrays
	}
}

func (s *scanner) reset() {
	s.discarded += uint64(len(s.buf))
	s.buf = nil
}

// read feeds from r until a frame is found.
func (s *scanner) read(r io.Reader) ([]byte, error) {
	if f, ok := s.next(); ok {
		return f, nil
	}
	var tmp [64]byte
	for {
		n, err := r.Read(tmp[:])
		s.feed(tmp[:n])
		if f, ok := s.next(); ok {
			return f, nil
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, ErrNoData
		}
	}
}

// CommandDecoder finds command frames in a byte stream (the board side).
// The zero value is not usable: call NewCommandDecoder.
type CommandDecoder struct {
	c Codec
	s scanner
}

// NewCommandDecoder returns a decoder of c's command frames.
func NewCommandDecoder(c Codec) *CommandDecoder {
	d := &CommandDecoder{c: c}
	d.s = scanner{
		isStart: func(b byte) bool {
			switch c.Profile {
			case KerongCU16:
				return b == kSTX
			case ModbusRTU:
				return isModbusSlave(b)
			}
			return b == bHeadOpen || b == bHeadQuery
		},
		frameLen: func(prefix []byte) int {
			if c.Profile == ModbusRTU {
				return modbusRequestLen(prefix)
			}
			return c.Profile.CommandLen()
		},
		check: func(f []byte) error { _, err := c.DecodeCommand(f); return err },
	}
	return d
}

// Feed appends bytes received from the line.
func (d *CommandDecoder) Feed(p []byte) { d.s.feed(p) }

// Next returns the next whole valid command, or false if more bytes are needed.
func (d *CommandDecoder) Next() (Command, []byte, bool) {
	f, ok := d.s.next()
	if !ok {
		return Command{}, nil, false
	}
	cmd, _ := d.c.DecodeCommand(f) // checked by the scanner
	return cmd, f, true
}

// Read reads from r until a command is found. It returns r's error, or
// ErrNoData when r returns nothing (a read timeout).
func (d *CommandDecoder) Read(r io.Reader) (Command, error) {
	f, err := d.s.read(r)
	if err != nil {
		return Command{}, err
	}
	cmd, _ := d.c.DecodeCommand(f)
	return cmd, nil
}

// Reset discards buffered bytes (counted as discarded).
func (d *CommandDecoder) Reset() { d.s.reset() }

// Gap tells the decoder that the line has been silent for at least t3.5
// (ModbusSilence). For modbus-rtu that ends any frame: buffered bytes are
// discarded. Other profiles' frames are not delimited by time; it does
// nothing for them.
func (d *CommandDecoder) Gap() {
	if d.c.Profile == ModbusRTU {
		d.s.reset()
	}
}

// Discarded is the number of bytes skipped while resynchronising.
func (d *CommandDecoder) Discarded() uint64 { return d.s.discarded }

// Frames is the number of valid frames returned.
func (d *CommandDecoder) Frames() uint64 { return d.s.frames }

// Buffered is the number of bytes fed but not yet consumed.
func (d *CommandDecoder) Buffered() int { return len(d.s.buf) }

// ReplyDecoder finds reply frames in a byte stream (the master side).
// The zero value is not usable: call NewReplyDecoder.
type ReplyDecoder struct {
	c Codec
	s scanner
}

// NewReplyDecoder returns a decoder of c's reply frames, including bcc8a
// unsolicited 0x82 frames.
func NewReplyDecoder(c Codec) *ReplyDecoder {
	d := &ReplyDecoder{c: c}
	d.s = scanner{
		isStart: func(b byte) bool {
			switch c.Profile {
			case KerongCU16:
				return b == kSTX
			case ModbusRTU:
				return isModbusSlave(b)
			}
			return b == bHeadOpen || b == bHeadQuery || b == bHeadEvent
		},
		frameLen: c.replyLen,
		check:    func(f []byte) error { _, err := c.DecodeReply(f); return err },
	}
	return d
}

// Feed appends bytes received from the line.
func (d *ReplyDecoder) Feed(p []byte) { d.s.feed(p) }

// Next returns the next whole valid reply and its raw bytes, or false if
// more bytes are needed.
func (d *ReplyDecoder) Next() (Reply, []byte, bool) {
	f, ok := d.s.next()
	if !ok {
		return Reply{}, nil, false
	}
	r, _ := d.c.DecodeReply(f)
	return r, f, true
}

// Read reads from r until a reply is found. It returns r's error, or
// ErrNoData when r returns nothing (a read timeout).
func (d *ReplyDecoder) Read(r io.Reader) (Reply, error) {
	f, err := d.s.read(r)
	if err != nil {
		return Reply{}, err
	}
	rep, _ := d.c.DecodeReply(f)
	return rep, nil
}

// Reset discards buffered bytes (counted as discarded); call it when
// flushing the input before a command.
func (d *ReplyDecoder) Reset() { d.s.reset() }

// Gap tells the decoder that the line has been silent for at least t3.5
// (ModbusSilence). For modbus-rtu that ends any frame: buffered bytes are
// discarded. It does nothing for the other profiles.
func (d *ReplyDecoder) Gap() {
	if d.c.Profile == ModbusRTU {
		d.s.reset()
	}
}

// Discarded is the number of bytes skipped while resynchronising.
func (d *ReplyDecoder) Discarded() uint64 { return d.s.discarded }

// Frames is the number of valid frames returned.
func (d *ReplyDecoder) Frames() uint64 { return d.s.frames }

// Buffered is the number of bytes fed but not yet consumed.
func (d *ReplyDecoder) Buffered() int { return len(d.s.buf) }
