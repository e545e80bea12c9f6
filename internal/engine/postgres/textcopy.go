package postgres

// A backup can read a table in COPY's binary format and print the rows as
// the COPY text the snapshot stores (textRows), instead of asking the
// server for text. The server then skips its output functions, of which
// the date and time formatter and the text escaping are the costliest:
// reading the bench data in key order took the server 15.7 CPU-seconds as
// text and 13.5 as binary (events, a jsonb and a timestamp: 6.2 against
// 5.1; orders, two timestamptz: 2.6 against 2.2). That is CPU the source
// server, usually production, does not spend; the client prints the same
// text for less.
//
// The text must be byte for byte what the server prints, or unchanged
// tables would stop deduplicating against snapshots read as text (and
// verify, which reads the restored tables as text, would report them). So
// only types whose output this file reproduces exactly have a printer
// (integers, oid, numeric, bool, text and its kin, enums, json, jsonb,
// bytea, uuid, date, time, timestamp, timestamptz and domains over these),
// with the snapshot's session settings (DateStyle ISO, TimeZone UTC,
// bytea_output hex; see connConfig). Not float4 and float8: the server's
// shortest decimal is not always Go's (for the real -89958704 the server
// prints -8.9958704e+07, strconv -8.99587e+07, which reads back the same
// by rounding a tie to even), so their tables stay text;
// a table with any other column type is read as text, as is every table
// without a date or time column (a table of integers and numerics costs
// the server about the same either way, and the client more). The tests
// compare the printed text with the server's own on every edge value.

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// fieldPrinter appends the COPY text (escaped, without the delimiter) of
// one non-NULL field's binary value to dst.
type fieldPrinter func(dst, v []byte) ([]byte, error)

// printerMaker makes a column's printer for one stream: a printer may keep
// state (the timestamps' last date), so streams read at once each have
// their own. piece says how a huge value of the column is printed in
// pieces (textcopybig.go).
type printerMaker struct {
	make  func() fieldPrinter
	piece pieceKind
}

// stateless makes the same printer for every stream.
func stateless(p fieldPrinter) printerMaker {
	return printerMaker{make: func() fieldPrinter { return p }}
}

// inPieces is stateless for a type whose huge values print in pieces.
func inPieces(p fieldPrinter, k pieceKind) printerMaker {
	m := stateless(p)
	m.piece = k
	return m
}

// printerFor returns the printer maker of a column type and whether the
// type is a date or time; a zero maker when the type has none here.
func printerFor(ct colType) (printerMaker, bool) {
	oid, kind := ct.oid, ct.typtype
	if kind == 'd' { // a domain: binary output goes through its base type
		oid, kind = ct.baseOID, ct.baseType
	}
	if kind == 'e' { // an enum's binary form is its label
		return inPieces(printText, pieceText), false
	}
	if kind != 'b' || ct.elemOID != 0 {
		return printerMaker{}, false
	}
	switch oid {
	case oidBool:
		return stateless(printBool), false
	case oidInt2:
		return stateless(printInt(2)), false
	case oidInt4:
		return stateless(printInt(4)), false
	case oidInt8:
		return stateless(printInt(8)), false
	case oidOID:
		return stateless(printOID), false
	case oidText, oidVarchar, oidBpchar, oidName, oidJSON:
		return inPieces(printText, pieceText), false
	case oidJSONB:
		return inPieces(printJSONB, pieceJSONB), false
	case oidBytea:
		return inPieces(printBytea, pieceBytea), false
	case oidUUID:
		return stateless(printUUID), false
	case oidNumeric:
		return stateless(printNumeric), false
	case oidDate:
		return stateless(printDate), true
	case oidTime:
		return stateless(printTime), true
	case oidTimestamp:
		return printerMaker{make: func() fieldPrinter { return printTimestamp(false) }}, true
	case oidTimestamptz:
		return printerMaker{make: func() fieldPrinter { return printTimestamp(true) }}, true
	}
	return printerMaker{}, false
}

// textPrinters returns the printers of a table's copied columns, in order,
// when the table is worth reading in binary: every column has a printer
// and one of them is a date or time. types holds the table's columns by
// name.
func textPrinters(t *tableInfo, types map[string]colType) []printerMaker {
	if len(t.Columns) == 0 {
		return nil
	}
	printers := make([]printerMaker, len(t.Columns))
	worth := false
	for i, c := range t.Columns {
		ct, ok := types[c.Name]
		if !ok {
			return nil
		}
		p, datetime := printerFor(ct)
		if p.make == nil {
			return nil
		}
		printers[i] = p
		worth = worth || datetime
	}
	if !worth {
		return nil
	}
	return printers
}

// textRows is the writer a binary COPY goes to: it prints each row as a
// line of COPY text into w. Rows may arrive split across writes in any
// way. Close reports a stream that ended before its trailer.
type textRows struct {
	w        io.Writer
	bw       *bufio.Writer // w, when it is one: rows are printed into its buffer
	printers []fieldPrinter
	pieces   []pieceKind
	in       []byte // binary received but not printed yet: a partial row
	out      []byte // text not yet written to w
	spill    []byte // printFrom's buffer for out, not w's (textcopybig.go)
	header   bool
	done     bool
	row      int64
}

func newTextRows(w io.Writer, makers []printerMaker) *textRows {
	r := &textRows{w: w, printers: make([]fieldPrinter, len(makers)), pieces: make([]pieceKind, len(makers))}
	for i, m := range makers {
		r.printers[i] = m.make()
		r.pieces[i] = m.piece
	}
	r.bw, _ = w.(*bufio.Writer)
	return r
}

func (r *textRows) Write(p []byte) (int, error) {
	data := p
	if len(r.in) > 0 {
		r.in = append(r.in, p...)
		data = r.in
	}
	if r.bw != nil {
		// Print straight into the buffered writer's free space; Write
		// then only copies what did not fit.
		r.out = r.bw.AvailableBuffer()
	}
	used, err := r.print(data)
	if err != nil {
		return 0, err
	}
	if len(r.out) > 0 {
		if _, err := r.w.Write(r.out); err != nil {
			return 0, err
		}
		r.out = r.out[:0]
	}
	rest := data[used:]
	if len(r.in) > 0 {
		r.in = r.in[:copy(r.in, rest)]
	} else {
		r.in = append(r.in[:0], rest...)
	}
	return len(p), nil
}

// Close checks that the stream ended with its trailer.
func (r *textRows) Close() error {
	if !r.done {
		return fmt.Errorf("the COPY binary stream ended after row %d, without its trailer", r.row)
	}
	return nil
}

// print prints the complete rows at the start of data into out and returns
// how many bytes they took.
func (r *textRows) print(data []byte) (int, error) {
	used := 0
	if !r.header {
		// The signature, 32 bits of flags, the length of the header
		// extension and the extension.
		if len(data) < len(binaryHeader) {
			return 0, nil
		}
		if string(data[:11]) != string(binaryHeader[:11]) {
			return 0, errors.New("the server's COPY binary stream does not start with its signature")
		}
		ext := int(binary.BigEndian.Uint32(data[15:19]))
		if len(data) < 19+ext {
			return 0, nil
		}
		used = 19 + ext
		r.header = true
	}
	ncols := len(r.printers)
	for used < len(data) {
		if r.done {
			return 0, errors.New("the server's COPY binary stream goes on after its trailer")
		}
		if len(data)-used < 2 {
			return used, nil
		}
		n := int16(binary.BigEndian.Uint16(data[used:]))
		if n == -1 {
			r.done = true
			used += 2
			continue
		}
		if int(n) != ncols {
			return 0, fmt.Errorf("row %d has %d fields, want %d", r.row+1, n, ncols)
		}
		// Check that the whole row is here before printing any of it:
		// reading the lengths costs little, and a row whose large values
		// come in many writes is printed once.
		at := used + 2
		for range ncols {
			if len(data)-at < 4 {
				return used, nil
			}
			l := int32(binary.BigEndian.Uint32(data[at:]))
			at += 4
			if l > 0 {
				if len(data)-at < int(l) {
					return used, nil
				}
				at += int(l)
			}
		}
		r.row++
		at = used + 2
		for col, p := range r.printers {
			if col > 0 {
				r.out = append(r.out, '\t')
			}
			l := int32(binary.BigEndian.Uint32(data[at:]))
			at += 4
			if l < 0 {
				r.out = append(r.out, '\\', 'N')
				continue
			}
			var err error
			r.out, err = p(r.out, data[at:at+int(l)])
			if err != nil {
				return 0, fmt.Errorf("row %d, column %d: %w", r.row, col+1, err)
			}
			at += int(l)
		}
		r.out = append(r.out, '\n')
		used = at
	}
	return used, nil
}

func printBool(dst, v []byte) ([]byte, error) {
	if len(v) != 1 {
		return nil, fmt.Errorf("a bool of %d bytes", len(v))
	}
	if v[0] != 0 {
		return append(dst, 't'), nil
	}
	return append(dst, 'f'), nil
}

func printInt(size int) fieldPrinter {
	return func(dst, v []byte) ([]byte, error) {
		if len(v) != size {
			return nil, fmt.Errorf("an integer of %d bytes, want %d", len(v), size)
		}
		switch size {
		case 2:
			return strconv.AppendInt(dst, int64(int16(binary.BigEndian.Uint16(v))), 10), nil
		case 4:
			return strconv.AppendInt(dst, int64(int32(binary.BigEndian.Uint32(v))), 10), nil
		}
		return strconv.AppendInt(dst, int64(binary.BigEndian.Uint64(v)), 10), nil
	}
}

func printOID(dst, v []byte) ([]byte, error) {
	if len(v) != 4 {
		return nil, fmt.Errorf("an oid of %d bytes", len(v))
	}
	return strconv.AppendUint(dst, uint64(binary.BigEndian.Uint32(v)), 10), nil
}

// copyEscapeOut is the letter COPY text writes after a backslash for a
// byte, or 0 for a byte written as it is: the control characters with a
// letter, and the backslash itself. Other control characters go as they
// are, as the server's CopyAttributeOutText writes them.
var copyEscapeOut = [256]byte{'\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't', '\v': 'v', '\\': '\\'}

// appendEscapedCopy appends s with COPY text's escapes. Eight bytes at a
// time are skipped while none of them is below 0x20 or a backslash.
func appendEscapedCopy(dst, s []byte) []byte {
	const lo = 0x0101010101010101
	const hi = 0x8080808080808080
	start := 0
	i := 0
	for i < len(s) {
		if len(s)-i >= 8 {
			x := binary.LittleEndian.Uint64(s[i:])
			below := (x - 0x20*lo) &^ x & hi // a byte below 0x20 (its borrow may mark the bytes above it too)
			bs := x ^ ('\\' * lo)
			back := (bs - lo) &^ bs & hi // a backslash
			if below|back == 0 {
				i += 8
				continue
			}
		}
		c := s[i]
		if e := copyEscapeOut[c]; e != 0 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', e)
			start = i + 1
		}
		i++
	}
	return append(dst, s[start:]...)
}

func printText(dst, v []byte) ([]byte, error) { return appendEscapedCopy(dst, v), nil }

// printJSONB: jsonb's binary form is a version byte (1) and the text.
func printJSONB(dst, v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != 1 {
		return nil, errors.New("a jsonb value of an unknown binary version")
	}
	return appendEscapedCopy(dst, v[1:]), nil
}

// printBytea writes bytea_output hex as COPY text has it: the leading
// backslash doubled.
func printBytea(dst, v []byte) ([]byte, error) {
	return hex.AppendEncode(append(dst, '\\', '\\', 'x'), v), nil
}

// printUUID writes a uuid's 16 bytes as five groups of hex digits
// ("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").
func printUUID(dst, v []byte) ([]byte, error) {
	if len(v) != 16 {
		return nil, fmt.Errorf("a uuid of %d bytes", len(v))
	}
	dst = hex.AppendEncode(dst, v[:4])
	for _, g := range [...][2]int{{4, 6}, {6, 8}, {8, 10}, {10, 16}} {
		dst = hex.AppendEncode(append(dst, '-'), v[g[0]:g[1]])
	}
	return dst, nil
}

// printNumeric follows numeric_out: the digits of the integer part without
// leading zeros (or one zero), then dscale decimals.
func printNumeric(dst, v []byte) ([]byte, error) {
	if len(v) < 8 {
		return nil, fmt.Errorf("a numeric of %d bytes", len(v))
	}
	ndigits := int(int16(binary.BigEndian.Uint16(v)))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	dscale := int(int16(binary.BigEndian.Uint16(v[6:])))
	if ndigits < 0 || len(v) != 8+2*ndigits || dscale < 0 {
		return nil, fmt.Errorf("a numeric of %d bytes with %d digits", len(v), ndigits)
	}
	switch sign {
	case 0x0000, 0x4000:
	case 0xC000:
		return append(dst, "NaN"...), nil
	case 0xD000:
		return append(dst, "Infinity"...), nil
	case 0xF000:
		return append(dst, "-Infinity"...), nil
	default:
		return nil, fmt.Errorf("a numeric with sign %#x", sign)
	}
	digit := func(d int) int {
		if d < 0 || d >= ndigits {
			return 0
		}
		return int(binary.BigEndian.Uint16(v[8+2*d:]))
	}
	for d := range ndigits {
		if digit(d) > 9999 {
			return nil, fmt.Errorf("a numeric digit of %d", digit(d))
		}
	}
	if sign == 0x4000 {
		dst = append(dst, '-')
	}
	d := 0
	if weight < 0 {
		d = weight + 1
		dst = append(dst, '0')
	} else {
		for ; d <= weight; d++ {
			dig := digit(d)
			put := d > 0
			for _, div := range [3]int{1000, 100, 10} {
				q := dig / div
				dig -= q * div
				put = put || q > 0
				if put {
					dst = append(dst, byte('0'+q))
				}
			}
			dst = append(dst, byte('0'+dig))
		}
	}
	if dscale > 0 {
		dst = append(dst, '.')
		end := len(dst) + dscale
		for i := 0; i < dscale; i += 4 {
			dig := digit(d)
			d++
			dst = append(dst, byte('0'+dig/1000), byte('0'+dig/100%10), byte('0'+dig/10%10), byte('0'+dig%10))
		}
		dst = dst[:end]
	}
	return dst, nil
}

// j2date is PostgreSQL's conversion of a Julian day to a proleptic
// Gregorian year (0 and below are 1 BC and before), month and day.
func j2date(jd int64) (year, month, day int) {
	julian := uint64(jd) + 32044
	quad := julian / 146097
	extra := (julian-quad*146097)*4 + 3
	julian += 60 + quad*3 + extra/146097
	quad = julian / 1461
	julian -= quad * 1461
	y := julian * 4 / 1461
	if y != 0 {
		julian = (julian+305)%365 + 123
	} else {
		julian = (julian+306)%366 + 123
	}
	y += quad * 4
	year = int(y) - 4800
	quad = julian * 2141 / 65536
	day = int(julian - 7834*quad/256)
	month = int((quad+10)%12 + 1)
	return year, month, day
}

// digitPairs holds "00" to "99": two digits at a time.
const digitPairs = "0001020304050607080910111213141516171819" +
	"2021222324252627282930313233343536373839" +
	"4041424344454647484950515253545556575859" +
	"6061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// appendPair appends n (0 to 99) as two digits.
func appendPair(dst []byte, n int64) []byte {
	return append(dst, digitPairs[2*n], digitPairs[2*n+1])
}

// appendYMD appends DateStyle ISO's date; BC years as their positive
// number (the caller appends " BC").
func appendYMD(dst []byte, year, month, day int) []byte {
	y := int64(year)
	if y <= 0 {
		y = 1 - y
	}
	if y < 10000 {
		dst = appendPair(dst, y/100)
		dst = appendPair(dst, y%100)
	} else {
		dst = strconv.AppendInt(dst, y, 10)
	}
	dst = append(dst, '-')
	dst = appendPair(dst, int64(month))
	dst = append(dst, '-')
	return appendPair(dst, int64(day))
}

// appendClock appends HH:MM:SS and the microseconds without their trailing
// zeros (PostgreSQL's AppendSeconds at precision 6).
func appendClock(dst []byte, usec int64) []byte {
	hour := usec / 3_600_000_000
	usec -= hour * 3_600_000_000
	minute := usec / 60_000_000
	usec -= minute * 60_000_000
	sec := usec / 1_000_000
	frac := usec - sec*1_000_000
	dst = appendPair(dst, hour) // at most 24
	dst = append(dst, ':')
	dst = appendPair(dst, minute)
	dst = append(dst, ':')
	dst = appendPair(dst, sec)
	if frac != 0 {
		dst = append(dst, '.')
		dst = appendPair(dst, frac/10000)
		dst = appendPair(dst, frac/100%100)
		dst = appendPair(dst, frac%100)
		for dst[len(dst)-1] == '0' {
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}

func printDate(dst, v []byte) ([]byte, error) {
	if len(v) != 4 {
		return nil, fmt.Errorf("a date of %d bytes", len(v))
	}
	days := int32(binary.BigEndian.Uint32(v))
	switch days {
	case math.MinInt32:
		return append(dst, "-infinity"...), nil
	case math.MaxInt32:
		return append(dst, "infinity"...), nil
	}
	y, m, d := j2date(int64(days) + postgresEpochJDate)
	dst = appendYMD(dst, y, m, d)
	if y <= 0 {
		dst = append(dst, " BC"...)
	}
	return dst, nil
}

func printTime(dst, v []byte) ([]byte, error) {
	if len(v) != 8 {
		return nil, fmt.Errorf("a time of %d bytes", len(v))
	}
	usec := int64(binary.BigEndian.Uint64(v))
	if usec < 0 || usec > usPerDay {
		return nil, fmt.Errorf("a time of %d microseconds", usec)
	}
	return appendClock(dst, usec), nil
}

// printTimestamp prints a timestamp, or with tz a timestamptz in the
// sessions' TimeZone UTC (offset "+00"). It keeps the text of the last
// date it printed: a table's rows in key order often share it.
func printTimestamp(tz bool) fieldPrinter {
	lastDate := int64(math.MinInt64)
	var date []byte // lastDate's text
	bc := false
	return func(dst, v []byte) ([]byte, error) {
		if len(v) != 8 {
			return nil, fmt.Errorf("a timestamp of %d bytes", len(v))
		}
		ts := int64(binary.BigEndian.Uint64(v))
		switch ts {
		case math.MinInt64:
			return append(dst, "-infinity"...), nil
		case math.MaxInt64:
			return append(dst, "infinity"...), nil
		}
		days := ts / usPerDay
		usec := ts - days*usPerDay
		if usec < 0 {
			usec += usPerDay
			days--
		}
		if days != lastDate {
			jd := days + postgresEpochJDate
			if jd < 0 || jd > math.MaxInt32 {
				return nil, fmt.Errorf("a timestamp out of range (%d microseconds)", ts)
			}
			y, m, d := j2date(jd)
			date = appendYMD(date[:0], y, m, d)
			date = append(date, ' ')
			bc = y <= 0
			lastDate = days
		}
		dst = append(dst, date...)
		dst = appendClock(dst, usec)
		if tz {
			dst = append(dst, '+', '0', '0')
		}
		if bc {
			dst = append(dst, " BC"...)
		}
		return dst, nil
	}
}
