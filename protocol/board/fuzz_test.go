package board_test

import (
	"bytes"
	"testing"

	"github.com/larder-lockers/larder/protocol/board"
)

var fuzzCodecs = []board.Codec{kerong, bcc, bccInvert}

func seedFrames(f *testing.F) {
	for _, tc := range framesOf(f, "command") {
		f.Add(uint8(0), tc.frame)
		f.Add(uint8(1), tc.frame)
	}
	for _, tc := range framesOf(f, "reply") {
		f.Add(uint8(0), tc.frame)
		f.Add(uint8(1), tc.frame)
		f.Add(uint8(2), tc.frame)
	}
}

// FuzzDecodeCommand: never panics; whatever decodes re-encodes to the same bytes.
func FuzzDecodeCommand(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		c := fuzzCodecs[int(which)%len(fuzzCodecs)]
		cmd, err := c.DecodeCommand(data)
		if err != nil {
			return
		}
		back, err := c.EncodeCommand(cmd)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode: %v", cmd, err)
		}
		if !bytes.Equal(back, data) {
			t.Fatalf("% X decoded to %+v re-encodes to % X", data, cmd, back)
		}
	})
}

// FuzzDecodeReply: never panics; whatever decodes re-encodes to the same bytes.
func FuzzDecodeReply(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		c := fuzzCodecs[int(which)%len(fuzzCodecs)]
		r, err := c.DecodeReply(data)
		if err != nil {
			return
		}
		back, err := c.EncodeReply(r)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode: %v", r, err)
		}
		if !bytes.Equal(back, data) {
			t.Fatalf("% X decoded to %+v re-encodes to % X", data, r, back)
		}
	})
}

func isStart(c board.Codec, b byte) bool {
	if c.Profile == board.KerongCU16 {
		return b == 0x02
	}
	return b == 0x80 || b == 0x82 || b == 0x8A
}

// FuzzStreamDecoders: arbitrary bytes never panic and every byte is
// accounted for; garbage without start bytes followed by a valid frame
// yields exactly that frame.
func FuzzStreamDecoders(f *testing.F) {
	f.Add(uint8(0), []byte{0xff, 0x02, 0x00}, uint8(0), uint8(3))
	f.Add(uint8(1), []byte{0x80, 0x01, 0x00, 0x01}, uint8(4), uint8(1))
	f.Add(uint8(2), hx(f, "02 10 35 01 81 02 02 03 D0"), uint8(9), uint8(2))
	commandFrames, replyFrames := framesOf(f, "command"), framesOf(f, "reply")
	f.Fuzz(func(t *testing.T, which uint8, garbage []byte, pick uint8, chunk uint8) {
		c := fuzzCodecs[int(which)%len(fuzzCodecs)]
		step := int(chunk)%7 + 1

		// Accounting on arbitrary input, both directions.
		rd := board.NewReplyDecoder(c)
		cd := board.NewCommandDecoder(c)
		var rlen, clen int
		for i := 0; i < len(garbage); i += step {
			part := garbage[i:min(i+step, len(garbage))]
			rd.Feed(part)
			cd.Feed(part)
			for {
				_, fr, ok := rd.Next()
				if !ok {
					break
				}
				if _, err := c.DecodeReply(fr); err != nil {
					t.Fatalf("stream yielded invalid reply % X: %v", fr, err)
				}
				rlen += len(fr)
			}
			for {
				_, fr, ok := cd.Next()
				if !ok {
					break
				}
				clen += len(fr)
			}
		}
		if got := uint64(rlen) + rd.Discarded() + uint64(rd.Buffered()); got != uint64(len(garbage)) {
			t.Fatalf("reply decoder accounts %d of %d bytes", got, len(garbage))
		}
		if got := uint64(clen) + cd.Discarded() + uint64(cd.Buffered()); got != uint64(len(garbage)) {
			t.Fatalf("command decoder accounts %d of %d bytes", got, len(garbage))
		}

		// Resynchronisation: garbage with its start bytes scrubbed, then a
		// valid frame.
		clean := make([]byte, 0, len(garbage))
		for _, b := range garbage {
			if !isStart(c, b) {
				clean = append(clean, b)
			}
		}
		var frame []byte
		reply := pick%2 == 1
		if reply {
			var cands [][]byte
			for _, tc := range replyFrames {
				if tc.codec.Profile == c.Profile {
					cands = append(cands, tc.frame)
				}
			}
			frame = cands[int(pick/2)%len(cands)]
		} else {
			var cands [][]byte
			for _, tc := range commandFrames {
				if tc.codec.Profile == c.Profile {
					cands = append(cands, tc.frame)
				}
			}
			frame = cands[int(pick/2)%len(cands)]
		}
		stream := append(clean, frame...)
		var got [][]byte
		if reply {
			d := board.NewReplyDecoder(c)
			d.Feed(stream)
			for {
				_, fr, ok := d.Next()
				if !ok {
					break
				}
				got = append(got, fr)
			}
		} else {
			d := board.NewCommandDecoder(c)
			d.Feed(stream)
			for {
				_, fr, ok := d.Next()
				if !ok {
					break
				}
				got = append(got, fr)
			}
		}
		if len(got) != 1 || !bytes.Equal(got[0], frame) {
			t.Fatalf("garbage % X + frame % X yielded % X", clean, frame, got)
		}
	})
}
