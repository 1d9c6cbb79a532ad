package board_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/larder-lockers/larder/protocol/board"
)

func TestReplyDecoderResync(t *testing.T) {
	tests := []struct {
		name      string
		codec     board.Codec
		stream    string
		want      []string
		discarded uint64
	}{
		{"kerong clean", kerong, "02 00 31 03 36 02 10 35 01 81 02 02 03 D0", []string{"02 00 31 03 36", "02 10 35 01 81 02 02 03 D0"}, 0},
		{"kerong garbage before", kerong, "FF 00 13 02 00 31 03 36", []string{"02 00 31 03 36"}, 3},
		{"kerong truncated then valid", kerong, "02 10 35 01 02 00 31 03 36", []string{"02 00 31 03 36"}, 4},
		{"kerong bad sum then valid", kerong, "02 00 31 03 37 02 00 31 03 36", []string{"02 00 31 03 36"}, 5},
		{"bcc event among replies", bcc, "82 03 18 11 88 00 80 01 01 11 91", []string{"82 03 18 11 88", "80 01 01 11 91"}, 1},
		{"bcc all then garbled", bcc, "80 01 00 01 01 80 33 32 80 01 00 01 8A 01 01 00 8A", []string{"80 01 00 01 01 80 33 32", "8A 01 01 00 8A"}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := board.NewReplyDecoder(tc.codec)
			// Feed one byte at a time: frames split across reads.
			var got []string
			for _, b := range hx(t, tc.stream) {
				d.Feed([]byte{b})
				for {
					_, f, ok := d.Next()
					if !ok {
						break
					}
					got = append(got, fmtHex(f))
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != fmtHex(hx(t, tc.want[i])) {
					t.Errorf("frame %d = %s, want %s", i, got[i], tc.want[i])
				}
			}
			if d.Discarded() != tc.discarded {
				t.Errorf("discarded = %d, want %d", d.Discarded(), tc.discarded)
			}
		})
	}
}

func fmtHex(b []byte) string { return string(bytes.ToUpper([]byte(hexString(b)))) }

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 3*len(b))
	for i, c := range b {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestCommandDecoderRead(t *testing.T) {
	stream := hx(t, "00 02 00 30 03 35 8A 02 00 31 03 36")
	d := board.NewCommandDecoder(kerong)
	r := iotest.OneByteReader(bytes.NewReader(stream))
	cmd, err := d.Read(r)
	if err != nil || cmd != (board.Command{Op: board.OpStatus, Board: 0}) {
		t.Fatalf("first = %+v, %v", cmd, err)
	}
	cmd, err = d.Read(r)
	if err != nil || cmd != (board.Command{Op: board.OpUnlock, Board: 0, Lock: 1}) {
		t.Fatalf("second = %+v, %v", cmd, err)
	}
	if _, err := d.Read(r); !errors.Is(err, io.EOF) {
		t.Fatalf("third err = %v, want EOF", err)
	}
	if d.Discarded() != 2 || d.Frames() != 2 {
		t.Errorf("discarded %d frames %d, want 2 2", d.Discarded(), d.Frames())
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestReadTimeout(t *testing.T) {
	d := board.NewReplyDecoder(bcc)
	if _, err := d.Read(emptyReader{}); !errors.Is(err, board.ErrNoData) {
		t.Fatalf("err = %v, want ErrNoData", err)
	}
	d.Feed([]byte{0x80, 0x01})
	d.Reset()
	if d.Buffered() != 0 || d.Discarded() != 2 {
		t.Errorf("after reset buffered %d discarded %d", d.Buffered(), d.Discarded())
	}
}
