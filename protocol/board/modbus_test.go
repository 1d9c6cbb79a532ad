package board_test

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/larder-lockers/larder/protocol/board"
)

var modbus = board.Codec{Profile: board.ModbusRTU}

// The modbus-rtu frame examples are testdata/modbus-rtu.json, in the format
// of the other profiles' files (frameExample), checked both ways by
// TestFrameExamples. Their meanings have a grammar of their own:
//
//	command status|relays|halt board=B
//	command unlock|release board=B lock=L
//	reply   status board=B [closed=LIST]
//	reply   relays board=B [on=LIST]
//	reply   unlock|release board=B lock=L
//	reply   halt board=B
//	reply   exception board=B op=OP code=N

// modbusExamples are the frame examples of profile modbus-rtu.
func modbusExamples(tb testing.TB) []frameExample {
	var out []frameExample
	for _, ex := range loadFrames(tb) {
		if ex.codec.Profile == board.ModbusRTU {
			out = append(out, ex)
		}
	}
	return out
}

// parseModbusMeaning turns a meaning of the grammar above into the Command
// or Reply it describes, under codec c.
func parseModbusMeaning(c board.Codec, direction, meaning string) (*board.Command, *board.Reply, error) {
	f := strings.Fields(meaning)
	if len(f) == 0 {
		return nil, nil, errors.New("empty meaning")
	}
	args := map[string]string{}
	for _, a := range f[1:] {
		k, v, _ := strings.Cut(a, "=")
		args[k] = v
	}
	take := func(k string) string { v := args[k]; delete(args, k); return v }
	num := func(k string) (int, error) {
		v := take(k)
		if v == "" {
			return 0, nil
		}
		return strconv.Atoi(v)
	}
	bd, err := num("board")
	if err != nil {
		return nil, nil, err
	}
	lock, err := num("lock")
	if err != nil {
		return nil, nil, err
	}
	ops := map[string]board.Op{"status": board.OpStatus, "unlock": board.OpUnlock, "release": board.OpRelease,
		"relays": board.OpRelays, "halt": board.OpHalt}
	var cmd *board.Command
	var reply *board.Reply
	switch direction {
	case "command":
		op, ok := ops[f[0]]
		if !ok {
			return nil, nil, fmt.Errorf("unknown command %q", f[0])
		}
		cmd = &board.Command{Op: op, Board: bd, Lock: lock}
	case "reply":
		r := board.Reply{Board: bd, Lock: lock}
		n := c.Locks()
		switch f[0] {
		case "status":
			closed, err := lockList(take("closed"), n)
			if err != nil {
				return nil, nil, err
			}
			r.Kind, r.Status = board.ReplyStatus, board.Status{Board: bd, Closed: closed}
		case "relays":
			if r.Relays, err = lockList(take("on"), n); err != nil {
				return nil, nil, err
			}
			r.Kind = board.ReplyRelays
		case "unlock", "release", "halt":
			r.Kind = map[string]board.ReplyKind{"unlock": board.ReplyUnlock, "release": board.ReplyRelease, "halt": board.ReplyHalt}[f[0]]
		case "exception":
			op, ok := ops[take("op")]
			code, err := strconv.Atoi(take("code"))
			if !ok || err != nil {
				return nil, nil, errors.New("exception wants op=OP code=N")
			}
			r.Kind, r.Function, r.Exception = board.ReplyException, c.Function(op), board.Exception(code)
		default:
			return nil, nil, fmt.Errorf("unknown reply %q", f[0])
		}
		reply = &r
	default:
		return nil, nil, fmt.Errorf("direction %q: want command or reply", direction)
	}
	if len(args) > 0 {
		return nil, nil, fmt.Errorf("unknown arguments %v", args)
	}
	return cmd, reply, nil
}

// TestModbusFramesArePlainModbus: every modbus-rtu frame example is a
// well-formed Modbus request or response with its CRC, and the examples
// cover every command and reply kind.
func TestModbusFramesArePlainModbus(t *testing.T) {
	exs := modbusExamples(t)
	kinds := map[string]bool{}
	for _, ex := range exs {
		var err error
		if ex.cmd != nil {
			_, err = board.DecodeModbusRequest(ex.frame)
			kinds["command "+ex.cmd.Op.String()] = true
		} else {
			_, err = board.DecodeModbusResponse(ex.frame)
			kinds["reply "+ex.reply.Kind.String()] = true
		}
		if err != nil {
			t.Errorf("%s: % X is not plain Modbus: %v", ex.text, ex.frame, err)
		}
	}
	for _, k := range []string{"command status", "command unlock", "command release", "command relays", "command halt",
		"reply status", "reply unlock", "reply release", "reply relays", "reply halt", "reply exception"} {
		if !kinds[k] {
			t.Errorf("no %s example", k)
		}
	}
}

// TestModbusCRCKnownAnswers checks CRC-16/MODBUS against published frames:
// the specification's worked example (MODBUS over Serial Line V1.02,
// 6.2.2: the CRC of 02 07 is 0x1241, sent 41 12), the much-quoted read of
// ten holding registers, and the PDU examples of the Application Protocol
// specification (V1.1b3, 6.1, 6.2, 6.5, 6.11) as RTU frames to slave 17.
func TestModbusCRCKnownAnswers(t *testing.T) {
	for _, tc := range []struct{ frame, why string }{
		{"02 07 41 12", "serial line spec 6.2.2"},
		{"01 03 00 00 00 0A C5 CD", "read 10 holding registers of slave 1"},
		{"11 01 00 13 00 25 0E 84", "read coils 20-56"},
		{"11 05 00 AC FF 00 4E 8B", "write coil 173 ON"},
		{"11 02 00 C4 00 16 BA A9", "read discrete inputs 197-218"},
		{"11 0F 00 13 00 0A 02 CD 01 BF 0B", "write coils 20-29"},
		{"11 0F 00 13 00 0A 26 99", "write coils 20-29, response"},
	} {
		f := hx(t, tc.frame)
		n := len(f) - 2
		if got := board.ModbusCRC(f[:n]); byte(got) != f[n] || byte(got>>8) != f[n+1] {
			t.Errorf("%s (%s): CRC %04X, want low %02X high %02X", tc.frame, tc.why, got, f[n], f[n+1])
		}
	}
}

// TestModbusSpecFrames decodes the Application Protocol specification's
// examples (as RTU frames to slave 17) field by field, both ways.
func TestModbusSpecFrames(t *testing.T) {
	for _, tc := range []struct {
		frame    string
		response bool
		want     board.ModbusFrame
	}{
		{"11 01 00 13 00 25 0E 84", false, board.ModbusFrame{Slave: 17, Function: 0x01, Addr: 0x13, Quantity: 0x25}},
		{"11 05 00 AC FF 00 4E 8B", false, board.ModbusFrame{Slave: 17, Function: 0x05, Addr: 0xAC, On: true}},
		{"11 02 00 C4 00 16 BA A9", false, board.ModbusFrame{Slave: 17, Function: 0x02, Addr: 0xC4, Quantity: 0x16}},
		{"11 0F 00 13 00 0A 02 CD 01 BF 0B", false, board.ModbusFrame{Slave: 17, Function: 0x0F, Addr: 0x13, Quantity: 10,
			Bits: []bool{true, false, true, true, false, false, true, true, true, false}}},
		{"11 0F 00 13 00 0A 26 99", true, board.ModbusFrame{Slave: 17, Function: 0x0F, Addr: 0x13, Quantity: 10}},
		{"11 05 00 AC FF 00 4E 8B", true, board.ModbusFrame{Slave: 17, Function: 0x05, Addr: 0xAC, On: true}},
		// Read discrete inputs 197-218: AC DB 35 (spec 6.2), CRC computed.
		{"11 02 03 AC DB 35 " + crcHex(0x11, 0x02, 0x03, 0xAC, 0xDB, 0x35), true, board.ModbusFrame{Slave: 17, Function: 0x02,
			Bits: bitsOf(0xAC, 0xDB, 0x35)}},
		{"11 81 02 " + crcHex(0x11, 0x81, 0x02), true, board.ModbusFrame{Slave: 17, Function: 0x01, Exception: board.ExceptionIllegalAddress}},
	} {
		f := hx(t, tc.frame)
		var got board.ModbusFrame
		var err error
		if tc.response {
			got, err = board.DecodeModbusResponse(f)
		} else {
			got, err = board.DecodeModbusRequest(f)
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.frame, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.frame, diff)
		}
		var back []byte
		if tc.response {
			back, err = board.EncodeModbusResponse(got)
		} else {
			back, err = board.EncodeModbusRequest(got)
		}
		if err != nil || !bytes.Equal(back, f) {
			t.Errorf("%s re-encodes to % X, %v", tc.frame, back, err)
		}
	}
}

func crcHex(b ...byte) string {
	c := board.ModbusCRC(b)
	return fmt.Sprintf("%02X %02X", byte(c), byte(c>>8))
}

func bitsOf(bs ...byte) []bool {
	var out []bool
	for _, b := range bs {
		for i := range 8 {
			out = append(out, b&(1<<i) != 0)
		}
	}
	return out
}

// TestModbusExceptionIsAnError: an exception response decodes into a reply
// whose Exception is an error naming the code.
func TestModbusExceptionIsAnError(t *testing.T) {
	r, err := modbus.DecodeReply(hx(t, "01 82 02 C1 61"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != board.ReplyException || r.Function != modbus.Function(board.OpStatus) {
		t.Fatalf("reply %+v", r)
	}
	var err2 error = fmt.Errorf("status: %w", r.Exception)
	var ex board.Exception
	if !errors.As(err2, &ex) || ex != board.ExceptionIllegalAddress {
		t.Errorf("errors.As(%v) = %v", err2, ex)
	}
	if got := ex.Error(); got != "modbus exception 2 (illegal data address)" {
		t.Errorf("Error() = %q", got)
	}
	// An exception to a function Larder never sends is not a reply of the profile.
	if _, err := modbus.DecodeReply(hx(t, "01 83 02 "+crcHex(1, 0x83, 2))); !errors.Is(err, board.ErrFrame) {
		t.Errorf("exception of 0x03 = %v, want ErrFrame", err)
	}
}

func TestModbusErrors(t *testing.T) {
	crc := func(s string) string { b := hx(t, s); return s + " " + crcHex(b...) }
	for _, tc := range []struct {
		name  string
		reply bool
		frame string
		want  error
	}{
		{"bad crc", false, "01 02 00 00 00 10 79 C7", board.ErrChecksum},
		{"crc bytes swapped", false, "01 02 00 00 00 10 C6 79", board.ErrChecksum},
		{"short", false, "01 02 00 00 00 10 79", board.ErrLength},
		{"slave 0 (broadcast)", false, crc("00 02 00 00 00 10"), board.ErrAddress},
		{"slave 248", false, crc("F8 02 00 00 00 10"), board.ErrAddress},
		{"coil value 1234", false, crc("01 05 00 00 12 34"), board.ErrFrame},
		{"unknown function", false, crc("01 03 00 00 00 0A"), board.ErrFrame},
		{"inputs outside the map", false, crc("01 02 00 10 00 10"), board.ErrUnsupported},
		{"coil outside the map", false, crc("01 05 00 10 FF 00"), board.ErrUnsupported},
		{"halt that switches a coil on", false, crc("01 0F 00 00 00 10 02 01 00"), board.ErrUnsupported},
		{"halt byte count wrong", false, crc("01 0F 00 00 00 10 01 00"), board.ErrLength},
		{"reply wrong byte count", true, crc("01 02 01 FF"), board.ErrFrame},
		{"reply bad crc", true, "01 02 02 FF FF B8 09", board.ErrChecksum},
		{"reply coil echo outside map", true, crc("01 05 00 20 FF 00"), board.ErrAddress},
		{"reply halt of other coils", true, crc("01 0F 00 00 00 08"), board.ErrFrame},
		{"reply exception code 0", true, crc("01 82 00"), board.ErrFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.reply {
				_, err = modbus.DecodeReply(hx(t, tc.frame))
			} else {
				_, err = modbus.DecodeCommand(hx(t, tc.frame))
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// With an 8-lock map the same 16-bit reply is the wrong length, and a
	// 1-byte reply with bits past lock 6 of a 6-lock map is refused.
	eight := board.Codec{Profile: board.ModbusRTU, Modbus: board.ModbusMap{Locks: 8}}
	if _, err := eight.DecodeReply(hx(t, "01 02 02 FF FF B8 08")); !errors.Is(err, board.ErrFrame) {
		t.Errorf("8-lock map took a 2-byte status: %v", err)
	}
	six := board.Codec{Profile: board.ModbusRTU, Modbus: board.ModbusMap{Locks: 6}}
	if _, err := six.DecodeReply(hx(t, crc("01 02 01 C0"))); !errors.Is(err, board.ErrFrame) {
		t.Errorf("6-lock map took bits 7 and 8: %v", err)
	}
	for _, tc := range []struct {
		name string
		c    board.Codec
		cmd  board.Command
		want error
	}{
		{"slave 0", modbus, board.Command{Op: board.OpStatus, Board: 0}, board.ErrAddress},
		{"slave 248", modbus, board.Command{Op: board.OpStatus, Board: 248}, board.ErrAddress},
		{"lock 17", modbus, board.Command{Op: board.OpUnlock, Board: 1, Lock: 17}, board.ErrAddress},
		{"lock 9 of 8", eight, board.Command{Op: board.OpUnlock, Board: 1, Lock: 9}, board.ErrAddress},
		{"status with lock", modbus, board.Command{Op: board.OpStatus, Board: 1, Lock: 1}, board.ErrAddress},
		{"query", modbus, board.Command{Op: board.OpQuery, Board: 1, Lock: 1}, board.ErrUnsupported},
		{"unlock all", modbus, board.Command{Op: board.OpUnlockAll, Board: 1}, board.ErrUnsupported},
		{"kerong release", kerong, board.Command{Op: board.OpRelease, Board: 0, Lock: 1}, board.ErrUnsupported},
		{"bcc halt", bcc, board.Command{Op: board.OpHalt, Board: 1}, board.ErrUnsupported},
	} {
		if _, err := tc.c.EncodeCommand(tc.cmd); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := (board.ModbusMap{Locks: 17}).Validate(); err == nil {
		t.Error("17 locks accepted")
	}
	if err := (board.ModbusMap{CoilBase: 65530}).Validate(); err == nil {
		t.Error("coils past 65535 accepted")
	}
}

// TestModbusMap: a board whose relays start at coil 16 and inputs at 100,
// 8 locks each.
func TestModbusMap(t *testing.T) {
	c := board.Codec{Profile: board.ModbusRTU, Modbus: board.ModbusMap{Locks: 8, CoilBase: 16, InputBase: 100}}
	for _, tc := range []struct {
		cmd  board.Command
		want board.ModbusFrame
	}{
		{board.Command{Op: board.OpStatus, Board: 3}, board.ModbusFrame{Slave: 3, Function: 0x02, Addr: 100, Quantity: 8}},
		{board.Command{Op: board.OpUnlock, Board: 3, Lock: 8}, board.ModbusFrame{Slave: 3, Function: 0x05, Addr: 23, On: true}},
		{board.Command{Op: board.OpRelease, Board: 3, Lock: 1}, board.ModbusFrame{Slave: 3, Function: 0x05, Addr: 16}},
		{board.Command{Op: board.OpRelays, Board: 3}, board.ModbusFrame{Slave: 3, Function: 0x01, Addr: 16, Quantity: 8}},
		{board.Command{Op: board.OpHalt, Board: 3}, board.ModbusFrame{Slave: 3, Function: 0x0F, Addr: 16, Quantity: 8, Bits: make([]bool, 8)}},
	} {
		b, err := c.EncodeCommand(tc.cmd)
		if err != nil {
			t.Fatal(err)
		}
		got, err := board.DecodeModbusRequest(b)
		if diff := cmp.Diff(tc.want, got); err != nil || diff != "" {
			t.Errorf("%+v: %v (-want +got):\n%s", tc.cmd, err, diff)
		}
		if back, err := c.DecodeCommand(b); err != nil || back != tc.cmd {
			t.Errorf("%+v: decodes to %+v, %v", tc.cmd, back, err)
		}
	}
	closed := []bool{false, true, false, false, false, false, false, true} // doors 2 and 8
	b, err := c.EncodeReply(board.Reply{Kind: board.ReplyStatus, Board: 3, Status: board.Status{Closed: closed}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "03 02 01 82 " + crcHex(3, 2, 1, 0x82); fmtHex(b) != want {
		t.Errorf("status of 8 = % X, want %s", b, want)
	}
	if c.Locks() != 8 || modbus.Locks() != 16 || kerong.Locks() != 16 {
		t.Errorf("Locks() = %d %d %d", c.Locks(), modbus.Locks(), kerong.Locks())
	}
}

func TestModbusSilence(t *testing.T) {
	for _, tc := range []struct {
		baud int
		want time.Duration
	}{
		{9600, 3645833 * time.Nanosecond},
		{19200, 1822916 * time.Nanosecond},
		{38400, 1750 * time.Microsecond},
		{115200, 1750 * time.Microsecond},
	} {
		if got := board.ModbusSilence(tc.baud); got/time.Microsecond != tc.want/time.Microsecond {
			t.Errorf("ModbusSilence(%d) = %v, want %v", tc.baud, got, tc.want)
		}
	}
}

// TestModbusStream: frames in arbitrary chunks, garbage resynchronised
// past, and a silence (Gap) ending a partial frame.
func TestModbusStream(t *testing.T) {
	status := hx(t, "01 02 02 01 81 78 48")
	ack := hx(t, "01 05 00 00 FF 00 8C 3A")
	d := board.NewReplyDecoder(modbus)
	// Garbage with plausible slave addresses, then two frames byte by byte.
	stream := append(append(hx(t, "01 02 07 F8 00 01"), status...), ack...)
	var got []board.ReplyKind
	for _, c := range stream {
		d.Feed([]byte{c})
		for {
			r, _, ok := d.Next()
			if !ok {
				break
			}
			got = append(got, r.Kind)
		}
	}
	if want := []board.ReplyKind{board.ReplyStatus, board.ReplyUnlock}; !cmp.Equal(got, want) {
		t.Errorf("kinds %v, want %v", got, want)
	}
	if d.Discarded() != 6 || d.Buffered() != 0 {
		t.Errorf("discarded %d buffered %d, want 6 and 0", d.Discarded(), d.Buffered())
	}
	// A frame cut short by a lost byte waits for more; the silence after it
	// ends it, and the next frame is read whole.
	d.Feed(status[:4])
	if _, _, ok := d.Next(); ok {
		t.Fatal("a partial frame decoded")
	}
	d.Gap()
	if d.Buffered() != 0 || d.Discarded() != 10 {
		t.Errorf("after gap: buffered %d discarded %d", d.Buffered(), d.Discarded())
	}
	d.Feed(status)
	if r, _, ok := d.Next(); !ok || r.Kind != board.ReplyStatus {
		t.Errorf("after gap: %+v %v", r, ok)
	}
	// Gap is a no-op for profiles not delimited by time.
	k := board.NewReplyDecoder(kerong)
	k.Feed(hx(t, "02 10 35 01"))
	k.Gap()
	k.Feed(hx(t, "81 02 02 03 D0"))
	if _, _, ok := k.Next(); !ok {
		t.Error("kerong frame split by Gap")
	}

	// The slave side: requests of any function Larder uses, a silence
	// dropping a partial one.
	rd := board.NewModbusRequestDecoder()
	rd.Feed(hx(t, "11 0F 00 13 00 0A 02"))
	rd.Gap()
	rd.Feed(hx(t, "FF 11 0F 00 13 00 0A 02 CD 01 BF 0B 01 02 00 00 00 10 79 C6"))
	var fns []byte
	for {
		f, _, ok := rd.Next()
		if !ok {
			break
		}
		fns = append(fns, f.Function)
	}
	if !bytes.Equal(fns, []byte{0x0F, 0x02}) || rd.Discarded() != 8 || rd.Buffered() != 0 {
		t.Errorf("requests %X, discarded %d, buffered %d", fns, rd.Discarded(), rd.Buffered())
	}
}

func modbusSeeds(f *testing.F) {
	for _, ex := range modbusExamples(f) {
		f.Add(uint8(0), ex.frame)
		f.Add(uint8(1), ex.frame)
		f.Add(uint8(2), ex.frame)
	}
	f.Add(uint8(0), hx(f, "11 0F 00 13 00 0A 02 CD 01 BF 0B"))
}

var modbusFuzzCodecs = []board.Codec{
	modbus,
	{Profile: board.ModbusRTU, Polarity: board.PolarityInverted},
	{Profile: board.ModbusRTU, Modbus: board.ModbusMap{Locks: 6, CoilBase: 16, InputBase: 0xFFF0}},
}

// FuzzModbusFrames: plain Modbus and the profile's codec never panic, and
// whatever decodes re-encodes to the same bytes, in both directions.
func FuzzModbusFrames(f *testing.F) {
	modbusSeeds(f)
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		if m, err := board.DecodeModbusRequest(data); err == nil {
			back, err := board.EncodeModbusRequest(m)
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("request % X → %+v → % X, %v", data, m, back, err)
			}
		}
		if m, err := board.DecodeModbusResponse(data); err == nil {
			back, err := board.EncodeModbusResponse(m)
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("response % X → %+v → % X, %v", data, m, back, err)
			}
		}
		c := modbusFuzzCodecs[int(which)%len(modbusFuzzCodecs)]
		if cmd, err := c.DecodeCommand(data); err == nil {
			back, err := c.EncodeCommand(cmd)
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("command % X → %+v → % X, %v", data, cmd, back, err)
			}
		}
		if r, err := c.DecodeReply(data); err == nil {
			back, err := c.EncodeReply(r)
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("reply % X → %+v → % X, %v", data, r, back, err)
			}
		}
	})
}

// FuzzModbusStream: arbitrary bytes in arbitrary chunks, with silences,
// never panic and every byte is accounted for; a silence, then a valid
// frame, yields exactly that frame whatever garbage came before.
func FuzzModbusStream(f *testing.F) {
	f.Add([]byte{0x01, 0x02, 0xFF}, uint8(3), uint8(0))
	f.Add(hx(f, "01 0F 00 00 00 10 FF"), uint8(1), uint8(5))
	f.Add(hx(f, "01 02 02 01 81 78"), uint8(2), uint8(9))
	exs := modbusExamples(f)
	f.Fuzz(func(t *testing.T, garbage []byte, chunk, pick uint8) {
		step := int(chunk)%7 + 1
		rd := board.NewReplyDecoder(modbus)
		qd := board.NewModbusRequestDecoder()
		var rlen, qlen int
		for i := 0; i < len(garbage); i += step {
			part := garbage[i:min(i+step, len(garbage))]
			rd.Feed(part)
			qd.Feed(part)
			for {
				r, fr, ok := rd.Next()
				if !ok {
					break
				}
				if _, err := modbus.DecodeReply(fr); err != nil {
					t.Fatalf("stream yielded invalid reply % X (%+v): %v", fr, r, err)
				}
				rlen += len(fr)
			}
			for {
				_, fr, ok := qd.Next()
				if !ok {
					break
				}
				qlen += len(fr)
			}
			if part[0]%5 == 0 { // now and then the line goes quiet
				rd.Gap()
				qd.Gap()
			}
		}
		if got := uint64(rlen) + rd.Discarded() + uint64(rd.Buffered()); got != uint64(len(garbage)) {
			t.Fatalf("reply decoder accounts %d of %d bytes", got, len(garbage))
		}
		if got := uint64(qlen) + qd.Discarded() + uint64(qd.Buffered()); got != uint64(len(garbage)) {
			t.Fatalf("request decoder accounts %d of %d bytes", got, len(garbage))
		}
		ex := exs[int(pick)%len(exs)]
		frame := ex.frame
		var got [][]byte
		if ex.Direction == "reply" {
			rd.Gap()
			rd.Feed(frame)
			for {
				_, fr, ok := rd.Next()
				if !ok {
					break
				}
				got = append(got, fr)
			}
		} else {
			qd.Gap()
			qd.Feed(frame)
			for {
				_, fr, ok := qd.Next()
				if !ok {
					break
				}
				got = append(got, fr)
			}
		}
		if len(got) != 1 || !bytes.Equal(got[0], frame) {
			t.Fatalf("garbage % X, gap, frame % X yielded % X", garbage, frame, got)
		}
	})
}
