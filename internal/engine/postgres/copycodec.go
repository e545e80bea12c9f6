package postgres

// The codecs of binarycopy.go: each reads one field of the text PostgreSQL
// prints for its type (with the snapshot's session settings: DateStyle ISO,
// TimeZone UTC, IntervalStyle postgres, bytea_output hex) and appends the
// type's COPY binary form; anything else is refused, never guessed.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
)

// copyEscapes maps the letter after a backslash in COPY text to the control
// character it stands for.
var copyEscapes = [256]byte{'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}

// appendUnescaped appends f with COPY text's backslash escapes undone.
func appendUnescaped(dst, f []byte) []byte {
	for {
		i := bytes.IndexByte(f, '\\')
		if i < 0 || i+1 >= len(f) {
			return append(dst, f...)
		}
		dst = append(dst, f[:i]...)
		c := f[i+1]
		f = f[i+2:]
		if e := copyEscapes[c]; e != 0 {
			dst = append(dst, e)
			continue
		}
		switch c {
		case 'x':
			v, n := 0, 0
			for n < 2 && n < len(f) && isHex(f[n]) {
				v = v*16 + hexVal(f[n])
				n++
			}
			if n == 0 {
				dst = append(dst, 'x')
			} else {
				dst = append(dst, byte(v))
			}
			f = f[n:]
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v, n := int(c-'0'), 0
			for n < 2 && n < len(f) && f[n] >= '0' && f[n] <= '7' {
				v = v*8 + int(f[n]-'0')
				n++
			}
			dst = append(dst, byte(v))
			f = f[n:]
		default:
			dst = append(dst, c)
		}
	}
}

func appendText(dst, f []byte) ([]byte, error) { return append(dst, f...), nil }

// appendJSONB: jsonb's binary form is a version byte (1) and the text.
func appendJSONB(dst, f []byte) ([]byte, error) {
	return append(append(dst, 1), f...), nil
}

func appendBool(dst, f []byte) ([]byte, error) {
	switch string(f) {
	case "t":
		return append(dst, 1), nil
	case "f":
		return append(dst, 0), nil
	}
	return nil, fmt.Errorf("boolean %q is not t or f", f)
}

// parseInt reads an optionally signed decimal integer of at most 19 digits.
func parseInt(f []byte) (int64, bool) {
	neg := false
	if len(f) > 0 && (f[0] == '-' || f[0] == '+') {
		neg = f[0] == '-'
		f = f[1:]
	}
	if len(f) == 0 || len(f) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range f {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		u = u*10 + uint64(d)
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// appendInt returns the codec of a signed integer of the given bits.
func appendInt(bits int) fieldCodec {
	lo, hi := int64(-1)<<(bits-1), int64(1)<<(bits-1)-1
	return func(dst, f []byte) ([]byte, error) {
		v, ok := parseInt(f)
		if !ok || v < lo || v > hi {
			return nil, fmt.Errorf("%q is not a %d-bit integer", f, bits)
		}
		switch bits {
		case 16:
			return binary.BigEndian.AppendUint16(dst, uint16(v)), nil
		case 32:
			return binary.BigEndian.AppendUint32(dst, uint32(v)), nil
		}
		return binary.BigEndian.AppendUint64(dst, uint64(v)), nil
	}
}

func appendOID(dst, f []byte) ([]byte, error) {
	v, ok := parseInt(f)
	if !ok || v < 0 || v > math.MaxUint32 {
		return nil, fmt.Errorf("%q is not an oid", f)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(v)), nil
}

// appendFloat8 and appendFloat4 write float8's and float4's binary forms
// (IEEE 754, big-endian). The text is what the server prints with
// extra_float_digits 1: the shortest decimal that reads back exactly, and
// strconv rounds it to the same value as the server's own input function
// (strtod, strtof).
func appendFloat8(dst, f []byte) ([]byte, error) {
	v, err := parseFloat(f, 64)
	if err != nil {
		return nil, err
	}
	if v != v {
		return binary.BigEndian.AppendUint64(dst, 0x7ff8000000000000), nil // the server's NaN
	}
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(v)), nil
}

func appendFloat4(dst, f []byte) ([]byte, error) {
	v, err := parseFloat(f, 32)
	if err != nil {
		return nil, err
	}
	if v != v {
		return binary.BigEndian.AppendUint32(dst, 0x7fc00000), nil // the server's NaN
	}
	return binary.BigEndian.AppendUint32(dst, math.Float32bits(float32(v))), nil
}

func parseFloat(f []byte, bits int) (float64, error) {
	switch string(f) {
	case "NaN":
		return math.NaN(), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	for _, c := range f { // digits, sign, point and exponent only
		if (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			return 0, fmt.Errorf("%q is not a float%d", f, bits/8)
		}
	}
	v, err := strconv.ParseFloat(string(f), bits)
	if err != nil {
		return 0, fmt.Errorf("%q is not a float%d", f, bits/8)
	}
	if v == 0 {
		// strconv rounds a value too small for the type to zero; the
		// server refuses it.
		for _, c := range f {
			if c == 'e' || c == 'E' {
				break
			}
			if c >= '1' && c <= '9' {
				return 0, fmt.Errorf("%q is out of float%d's range", f, bits/8)
			}
		}
	}
	return v, nil
}

// Address families of inet's binary form (PGSQL_AF_INET, PGSQL_AF_INET6).
const (
	inetFamily4 = 2
	inetFamily6 = 3
)

// appendInet writes inet's or cidr's binary form: family, mask bits, a
// cidr flag, the address length and the address. The text is what the
// server prints: an address, "/bits" after it unless an inet's mask is
// full (a cidr always has it). A cidr with bits set past its mask, which
// the server would refuse, is refused here.
func appendInet(cidr bool) fieldCodec {
	return func(dst, f []byte) ([]byte, error) {
		bad := func() ([]byte, error) {
			if cidr {
				return nil, fmt.Errorf("%q is not a cidr", f)
			}
			return nil, fmt.Errorf("%q is not an inet", f)
		}
		var addr netip.Addr
		var bits int
		if slash := bytes.IndexByte(f, '/'); slash >= 0 {
			p, err := netip.ParsePrefix(string(f))
			if err != nil {
				return bad()
			}
			addr, bits = p.Addr(), p.Bits()
			if cidr && p.Masked().Addr() != addr {
				return bad()
			}
		} else {
			if cidr {
				return bad()
			}
			a, err := netip.ParseAddr(string(f))
			if err != nil {
				return bad()
			}
			addr, bits = a, a.BitLen()
		}
		if addr.Zone() != "" {
			return bad()
		}
		flag := byte(0)
		if cidr {
			flag = 1
		}
		if addr.Is4() {
			a := addr.As4()
			return append(append(dst, inetFamily4, byte(bits), flag, 4), a[:]...), nil
		}
		a := addr.As16()
		return append(append(dst, inetFamily6, byte(bits), flag, 16), a[:]...), nil
	}
}

// Signs of numeric's binary form.
const (
	numericPos  = 0x0000
	numericNeg  = 0x4000
	numericNaN  = 0xC000
	numericPInf = 0xD000
	numericNInf = 0xF000
)

// appendNumeric writes numeric's binary form: the count of base-10000
// digits, the weight of the first, the sign, the display scale, the digits.
func appendNumeric(dst, f []byte) ([]byte, error) {
	special := func(sign uint16) []byte {
		dst = binary.BigEndian.AppendUint16(dst, 0) // ndigits
		dst = binary.BigEndian.AppendUint16(dst, 0) // weight
		dst = binary.BigEndian.AppendUint16(dst, sign)
		return binary.BigEndian.AppendUint16(dst, 0) // dscale
	}
	switch string(f) {
	case "NaN":
		return special(numericNaN), nil
	case "Infinity":
		return special(numericPInf), nil
	case "-Infinity":
		return special(numericNInf), nil
	}
	bad := func() ([]byte, error) { return nil, fmt.Errorf("%q is not a numeric", f) }
	sign := uint16(numericPos)
	s := f
	if len(s) > 0 && s[0] == '-' {
		sign, s = numericNeg, s[1:]
	}
	intPart, frac := s, []byte(nil)
	for i, c := range s {
		if c == '.' {
			intPart, frac = s[:i], s[i+1:]
			if len(frac) == 0 {
				return bad()
			}
			break
		}
	}
	if len(intPart) == 0 || len(frac) > 0x3fff {
		return bad()
	}
	// Base-10000 digits, aligned on the decimal point: the integer part
	// padded with zeros on the left, the fraction on the right.
	var buf [16]uint16
	digits := buf[:0]
	var v uint16
	k := (4 - len(intPart)%4) % 4
	push := func(part []byte) bool { // appends part's digits, four to a group
		for _, c := range part {
			d := c - '0'
			if d > 9 {
				return false
			}
			v = v*10 + uint16(d)
			if k++; k == 4 {
				digits, v, k = append(digits, v), 0, 0
			}
		}
		return true
	}
	if !push(intPart) {
		return bad()
	}
	weight := len(digits) - 1
	if !push(frac) {
		return bad()
	}
	if k > 0 {
		for ; k < 4; k++ {
			v *= 10
		}
		digits = append(digits, v)
	}
	first := 0
	for first < len(digits) && digits[first] == 0 {
		first++
		weight--
	}
	digits = digits[first:]
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		weight, sign = 0, numericPos
	}
	if weight > math.MaxInt16 || weight < math.MinInt16 || len(digits) > math.MaxInt16 {
		return bad()
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(digits)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(weight)))
	dst = binary.BigEndian.AppendUint16(dst, sign)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(frac)))
	for _, d := range digits {
		dst = binary.BigEndian.AppendUint16(dst, d)
	}
	return dst, nil
}

// appendUUID writes a uuid's 16 bytes from its five groups of hex digits
// ("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").
func appendUUID(dst, f []byte) ([]byte, error) {
	if len(f) != 36 || f[8] != '-' || f[13] != '-' || f[18] != '-' || f[23] != '-' {
		return nil, fmt.Errorf("%q is not a uuid", f)
	}
	for _, g := range [...][2]int{{0, 8}, {9, 13}, {14, 18}, {19, 23}, {24, 36}} {
		var ok bool
		if dst, ok = appendHex(dst, f[g[0]:g[1]]); !ok {
			return nil, fmt.Errorf("%q is not a uuid", f)
		}
	}
	return dst, nil
}

// appendBytea decodes bytea's hex output (\x…).
func appendBytea(dst, f []byte) ([]byte, error) {
	if len(f) < 2 || f[0] != '\\' || f[1] != 'x' {
		return nil, errors.New("bytea is not in hex format")
	}
	dst, ok := appendHex(dst, f[2:])
	if !ok {
		return nil, errors.New("bytea is not in hex format")
	}
	return dst, nil
}

// appendHex appends the bytes of an even number of hex digits.
func appendHex(dst, digits []byte) ([]byte, bool) {
	n := len(dst)
	dst = slices.Grow(dst, len(digits)/2)[:n+len(digits)/2]
	if _, err := hex.Decode(dst[n:], digits); err != nil {
		return nil, false
	}
	return dst, true
}

// Limits of PostgreSQL's dates and timestamps, in days and microseconds
// since 2000-01-01 (its epoch): from 4714-11-24 BC; dates to 5874897 AD,
// timestamps to 294276 AD.
const (
	postgresEpochJDate = 2451545 // the Julian day of 2000-01-01

	minDate      = -postgresEpochJDate
	endDate      = 2147483494 - postgresEpochJDate
	minTimestamp = -211813488000000000
	endTimestamp = 9223371331200000000
	usPerDay     = 86400 * 1000000
)

// daysSince2000 counts the days from 2000-01-01 to y-m-d in the proleptic
// Gregorian calendar (y astronomical: 1 BC is 0), by the days-from-civil
// algorithm (Howard Hinnant, public domain).
func daysSince2000(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468 - 10957
}

// daysIn returns the days of month m of astronomical year y.
func daysIn(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// number reads exactly n digits at the start of f.
func number(f []byte, n int) (int64, bool) {
	if len(f) < n || n == 0 {
		return 0, false
	}
	var v int64
	for _, c := range f[:n] {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		v = v*10 + int64(d)
	}
	return v, true
}

// parseISODate reads DateStyle ISO's date (a year of four or more digits,
// month, day) and returns its days since 2000-01-01 without the era, and
// what follows it.
func parseISODate(f []byte) (y, m, d int64, rest []byte, ok bool) {
	dash := bytes.IndexByte(f, '-')
	if dash < 4 || dash > 7 {
		return 0, 0, 0, nil, false
	}
	y, ok1 := number(f, dash)
	f = f[dash+1:]
	m, ok2 := number(f, 2)
	if !ok1 || !ok2 || len(f) < 5 || f[2] != '-' {
		return 0, 0, 0, nil, false
	}
	d, ok3 := number(f[3:], 2)
	if !ok3 || m < 1 || m > 12 || d < 1 {
		return 0, 0, 0, nil, false
	}
	return y, m, d, f[5:], true
}

// era applies a trailing " BC" to year y (1 BC is astronomical year 0).
func era(y int64, rest []byte) (int64, []byte, bool) {
	if len(rest) >= 3 && string(rest[len(rest)-3:]) == " BC" {
		if y < 1 {
			return 0, nil, false
		}
		return 1 - y, rest[:len(rest)-3], true
	}
	return y, rest, y >= 1
}

func appendDate(dst, f []byte) ([]byte, error) {
	switch string(f) {
	case "infinity":
		return binary.BigEndian.AppendUint32(dst, math.MaxInt32), nil
	case "-infinity":
		return binary.BigEndian.AppendUint32(dst, 1<<31), nil
	}
	bad := func() ([]byte, error) { return nil, fmt.Errorf("%q is not an ISO date", f) }
	y, m, d, rest, ok := parseISODate(f)
	if !ok {
		return bad()
	}
	y, rest, ok = era(y, rest)
	if !ok || len(rest) != 0 || d > daysIn(y, m) {
		return bad()
	}
	days := daysSince2000(y, m, d)
	if days < minDate || days >= endDate {
		return bad()
	}
	return binary.BigEndian.AppendUint32(dst, uint32(int32(days))), nil
}

// appendTimestamp returns the codec of timestamp (withZone false) or
// timestamptz: microseconds since 2000-01-01 00:00 (UTC for timestamptz).
// The text is DateStyle ISO: "2024-03-01 12:34:56.5+00", the offset only
// with a zone, " BC" last.
func appendTimestamp(withZone bool) fieldCodec {
	return func(dst, f []byte) ([]byte, error) {
		switch string(f) {
		case "infinity":
			return binary.BigEndian.AppendUint64(dst, math.MaxInt64), nil
		case "-infinity":
			return binary.BigEndian.AppendUint64(dst, 1<<63), nil
		}
		if v, ok := commonTimestamp(f, withZone); ok {
			return binary.BigEndian.AppendUint64(dst, uint64(v)), nil
		}
		bad := func() ([]byte, error) { return nil, fmt.Errorf("%q is not an ISO timestamp", f) }
		y, m, d, rest, ok := parseISODate(f)
		if !ok {
			return bad()
		}
		y, rest, ok = era(y, rest)
		if !ok || d > daysIn(y, m) || len(rest) < 4 || rest[0] != ' ' || rest[3] != ':' {
			return bad()
		}
		h, us, rest, ok := clock(rest[1:])
		if !ok || h > 23 {
			return bad()
		}
		var offset int64 // seconds east of UTC
		if withZone {
			if offset, rest, ok = parseOffset(rest); !ok {
				return bad()
			}
		}
		if len(rest) != 0 {
			return bad()
		}
		v := daysSince2000(y, m, d)*usPerDay + (h*3600-offset)*1000000 + us
		if v < minTimestamp || v >= endTimestamp {
			return bad()
		}
		return binary.BigEndian.AppendUint64(dst, uint64(v)), nil
	}
}

// parseOffset reads a UTC offset as the server prints it, "+HH", then
// ":MM" and ":SS" when they are not zero, and returns it in seconds east
// of UTC with the text after it.
func parseOffset(f []byte) (int64, []byte, bool) {
	if len(f) < 3 || (f[0] != '+' && f[0] != '-') {
		return 0, nil, false
	}
	west := f[0] == '-'
	oh, ok := number(f[1:], 2)
	if !ok {
		return 0, nil, false
	}
	offset := oh * 3600
	rest := f[3:]
	for unit := int64(60); len(rest) > 0 && rest[0] == ':' && unit >= 1; unit /= 60 {
		if len(rest) < 3 {
			return 0, nil, false
		}
		v, ok := number(rest[1:], 2)
		if !ok || v > 59 {
			return 0, nil, false
		}
		offset += v * unit
		rest = rest[3:]
	}
	if west {
		offset = -offset
	}
	return offset, rest, true
}

// tzDispLimit is the server's TZDISP_LIMIT: a time zone offset is less
// than 16 hours either way.
const tzDispLimit = 16 * 3600

// appendTimeTZ writes timetz's binary form: microseconds since midnight and
// the zone in seconds west of UTC. The text is "HH:MM:SS[.ffffff]" and an
// offset ("+05:30").
func appendTimeTZ(dst, f []byte) ([]byte, error) {
	us, rest, ok := timeOfDay(f)
	if !ok {
		return nil, fmt.Errorf("%q is not a time with time zone", f)
	}
	offset, rest, ok := parseOffset(rest)
	if !ok || len(rest) != 0 || offset <= -tzDispLimit || offset >= tzDispLimit {
		return nil, fmt.Errorf("%q is not a time with time zone", f)
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(us))
	return binary.BigEndian.AppendUint32(dst, uint32(int32(-offset))), nil
}

// commonTimestamp reads the usual timestamp quickly: a four-digit year of
// our era, "YYYY-MM-DD HH:MM:SS", up to six digits of fraction and, with a
// zone, "+00". Anything else is left to the general parser.
func commonTimestamp(f []byte, withZone bool) (int64, bool) {
	n := len(f)
	if withZone {
		if n < 22 || f[n-3] != '+' || f[n-2] != '0' || f[n-1] != '0' {
			return 0, false
		}
		n -= 3
	}
	if n < 19 || f[4] != '-' || f[7] != '-' || f[10] != ' ' || f[13] != ':' || f[16] != ':' {
		return 0, false
	}
	d2 := func(i int) (int64, bool) {
		a, b := f[i]-'0', f[i+1]-'0'
		return int64(a)*10 + int64(b), a <= 9 && b <= 9
	}
	yh, ok1 := d2(0)
	yl, ok2 := d2(2)
	mo, ok3 := d2(5)
	d, ok4 := d2(8)
	h, ok5 := d2(11)
	mi, ok6 := d2(14)
	s, ok7 := d2(17)
	y := yh*100 + yl
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) ||
		h > 23 || mi > 59 || s > 59 {
		return 0, false
	}
	var us int64
	if n > 19 {
		if f[19] != '.' || n == 20 || n > 26 {
			return 0, false
		}
		for i := 20; i < 26; i++ {
			us *= 10
			if i < n {
				c := f[i] - '0'
				if c > 9 {
					return 0, false
				}
				us += int64(c)
			}
		}
	}
	return daysSince2000(y, mo, d)*usPerDay + ((h*60+mi)*60+s)*1000000 + us, true
}

// clock reads "H:MM:SS" (one or more digits of hours) and up to six digits
// of fraction at the start of f: the hours, the microseconds after the
// hour, and what follows.
func clock(f []byte) (h, us int64, rest []byte, ok bool) {
	colon := bytes.IndexByte(f, ':')
	if colon < 1 || colon > 18 || len(f) < colon+6 || f[colon+3] != ':' {
		return 0, 0, nil, false
	}
	h, ok1 := number(f, colon)
	m, ok2 := number(f[colon+1:], 2)
	s, ok3 := number(f[colon+4:], 2)
	if !ok1 || !ok2 || !ok3 || m > 59 || s > 59 {
		return 0, 0, nil, false
	}
	us = (m*60 + s) * 1000000
	rest = f[colon+6:]
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		digits := n - 1
		if digits < 1 || digits > 6 {
			return 0, 0, nil, false
		}
		frac, _ := number(rest[1:], digits)
		for i := digits; i < 6; i++ {
			frac *= 10
		}
		us += frac
		rest = rest[n:]
	}
	return h, us, rest, true
}

// timeOfDay reads the time of day that time and timetz print, "HH:MM:SS"
// with up to six digits of fraction (24:00:00 is the end of the day, which
// both allow), in microseconds since midnight, and what follows it.
func timeOfDay(f []byte) (int64, []byte, bool) {
	h, us, rest, ok := clock(f)
	if !ok || len(f) < 3 || f[2] != ':' || h*3600*1000000+us > usPerDay {
		return 0, nil, false
	}
	return h*3600*1000000 + us, rest, true
}

// appendTime writes time's binary form, microseconds since midnight.
func appendTime(dst, f []byte) ([]byte, error) {
	us, rest, ok := timeOfDay(f)
	if !ok || len(rest) != 0 {
		return nil, fmt.Errorf("%q is not a time", f)
	}
	return binary.BigEndian.AppendUint64(dst, uint64(us)), nil
}

// maxArrayDims is PostgreSQL's MAXDIM.
const maxArrayDims = 6

// appendArray returns the codec of an array of elemOID, whose elements
// elem converts, from array_out's text: optional bounds ("[0:2]={…}"),
// nested braces, elements separated by commas, quoted (with backslash
// escapes) or bare, bare NULL for NULL; anything else is refused. The
// binary form is the number of dimensions, whether an element is NULL, the
// element type, each dimension's length and lower bound, then the elements
// (each its length, -1 for NULL, and its binary form). The elements are
// written as they are read, and the header once the shape is known.
func appendArray(elemOID uint32, elem fieldCodec) fieldCodec {
	return func(dst, f []byte) ([]byte, error) {
		s := f
		bad := func(why string) ([]byte, error) {
			return nil, fmt.Errorf("%q is not an array (%s)", f, why)
		}
		var lbs, bounds [maxArrayDims]int32 // explicit bounds: lower bound, length
		nb := 0
		for len(s) > 0 && s[0] == '[' {
			end := bytes.IndexByte(s, ']')
			colon := bytes.IndexByte(s, ':')
			if nb == maxArrayDims || end < 0 || colon < 0 || colon > end {
				return bad("bounds")
			}
			lb, ok1 := parseInt(s[1:colon])
			ub, ok2 := parseInt(s[colon+1 : end])
			if !ok1 || !ok2 || ub < lb || lb < math.MinInt32 || ub > math.MaxInt32 {
				return bad("bounds")
			}
			lbs[nb], bounds[nb] = int32(lb), int32(ub-lb+1)
			nb++
			s = s[end+1:]
			if len(s) > 0 && s[0] == '=' {
				s = s[1:]
				break
			}
			if len(s) == 0 || s[0] != '[' {
				return bad("bounds without '='")
			}
		}
		header := len(dst)
		if string(s) == "{}" {
			if nb > 0 {
				return bad("bounds on an empty array")
			}
			dst = binary.BigEndian.AppendUint32(dst, 0) // no dimensions
			dst = binary.BigEndian.AppendUint32(dst, 0) // no NULL
			return binary.BigEndian.AppendUint32(dst, elemOID), nil
		}
		ndim := 0
		for ndim < len(s) && s[ndim] == '{' {
			ndim++
		}
		if ndim == 0 || ndim > maxArrayDims || (nb > 0 && nb != ndim) {
			return bad("dimensions")
		}
		var header0 [12 + 8*maxArrayDims]byte
		dst = append(dst, header0[:12+8*ndim]...) // the header, written last
		var dims, counts [maxArrayDims]int32
		hasNull := false
		var scratch []byte // a quoted element with escapes, undone
		level, expectItem := 0, true
		for i := 0; i < len(s); {
			switch c := s[i]; {
			case c == '{':
				if !expectItem || level == ndim {
					return bad("nesting")
				}
				level++
				counts[level-1] = 0
				i++
			case c == '}':
				if level == 0 || counts[level-1] == 0 || expectItem {
					return bad("an empty item")
				}
				if dims[level-1] == 0 {
					dims[level-1] = counts[level-1]
				} else if dims[level-1] != counts[level-1] {
					return bad("not rectangular")
				}
				level--
				i++
				if level > 0 {
					counts[level-1]++
					expectItem = false
					continue
				}
				if i != len(s) {
					return bad("text after the array")
				}
				h := dst[header:]
				binary.BigEndian.PutUint32(h, uint32(ndim))
				if hasNull {
					binary.BigEndian.PutUint32(h[4:], 1)
				}
				binary.BigEndian.PutUint32(h[8:], elemOID)
				for d := range ndim {
					lb := int32(1)
					if nb > 0 {
						if bounds[d] != dims[d] {
							return bad("bounds do not match the elements")
						}
						lb = lbs[d]
					}
					binary.BigEndian.PutUint32(h[12+8*d:], uint32(dims[d]))
					binary.BigEndian.PutUint32(h[16+8*d:], uint32(lb))
				}
				return dst, nil
			case c == ',':
				if expectItem || level == 0 {
					return bad("a comma out of place")
				}
				expectItem = true
				i++
			default:
				if !expectItem || level != ndim {
					return bad("an element out of place")
				}
				var e []byte
				var n int
				var ok bool
				e, n, scratch, ok = arrayElement(s[i:], scratch)
				if !ok {
					return bad("an element")
				}
				if e == nil {
					hasNull = true
					dst = binary.BigEndian.AppendUint32(dst, math.MaxUint32)
				} else {
					at := len(dst)
					dst = append(dst, 0, 0, 0, 0)
					var err error
					if dst, err = elem(dst, e); err != nil {
						return nil, fmt.Errorf("array element: %w", err)
					}
					binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
				}
				counts[level-1]++
				expectItem = false
				i += n
			}
		}
		return bad("unterminated")
	}
}

// arrayElement reads one element at the start of s: quoted, with backslash
// escapes, or bare up to the next comma or closing brace. It returns the
// element (nil for a bare NULL; a quoted one with escapes is undone into
// scratch, which it returns for reuse) and the bytes it took.
func arrayElement(s, scratch []byte) (e []byte, n int, _ []byte, ok bool) {
	if s[0] == '"' {
		end := 1
		escaped := false
		for ; end < len(s) && s[end] != '"'; end++ {
			if s[end] == '\\' {
				escaped = true
				end++
			}
		}
		if end >= len(s) {
			return nil, 0, scratch, false
		}
		e = s[1:end:end]
		if escaped {
			scratch = scratch[:0]
			for j := 0; j < len(e); j++ {
				if e[j] == '\\' {
					j++
				}
				scratch = append(scratch, e[j])
			}
			e = scratch
		}
		return e, end + 1, scratch, true
	}
	j := 0
	for j < len(s) && s[j] != ',' && s[j] != '}' {
		switch s[j] {
		case '"', '\\', '{', ' ', '\t', '\n', '\r', '\v', '\f':
			return nil, 0, scratch, false // array_out quotes these
		}
		j++
	}
	if j == 0 {
		return nil, 0, scratch, false
	}
	if string(s[:j]) == "NULL" {
		return nil, j, scratch, true
	}
	return s[:j], j, scratch, true
}

// appendInterval writes interval's binary form (microseconds, days, months)
// from IntervalStyle postgres: "1 year 2 mons -3 days +04:05:06.5", each
// part optional ("00:00:00" for zero), hours unbounded.
func appendInterval(dst, f []byte) ([]byte, error) {
	bad := func() ([]byte, error) { return nil, fmt.Errorf("%q is not an interval in IntervalStyle postgres", f) }
	var months, days, us int64
	rest := f
	seen := 0 // the parts read so far, in order: 1 years, 2 months, 3 days, 4 time
	for len(rest) > 0 {
		word := rest
		if sp := bytes.IndexByte(rest, ' '); sp >= 0 {
			word, rest = rest[:sp], rest[sp+1:]
		} else {
			rest = nil
		}
		if bytes.IndexByte(word, ':') >= 0 { // the time, last
			if seen >= 4 || len(rest) > 0 {
				return bad()
			}
			seen = 4
			neg := false
			if word[0] == '-' || word[0] == '+' {
				neg, word = word[0] == '-', word[1:]
			}
			h, v, tail, ok := clock(word)
			if !ok || len(tail) != 0 || word[0] == '-' || word[0] == '+' || h > (math.MaxInt64-v)/(3600*1000000) {
				return bad()
			}
			v += h * 3600 * 1000000
			if neg {
				v = -v
			}
			us = v
			continue
		}
		n, ok := parseInt(word)
		if !ok || len(rest) == 0 || n > math.MaxInt32 || n < math.MinInt32 {
			return bad()
		}
		unit := rest
		if sp := bytes.IndexByte(rest, ' '); sp >= 0 {
			unit, rest = rest[:sp], rest[sp+1:]
		} else {
			rest = nil
		}
		var part int
		switch string(unit) {
		case "year", "years":
			part = 1
			months += n * 12
		case "mon", "mons":
			part = 2
			months += n
		case "day", "days":
			part = 3
			days = n
		default:
			return bad()
		}
		if part <= seen {
			return bad()
		}
		seen = part
	}
	if seen == 0 || months > math.MaxInt32 || months < math.MinInt32 || days > math.MaxInt32 || days < math.MinInt32 {
		return bad()
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(us))
	dst = binary.BigEndian.AppendUint32(dst, uint32(int32(days)))
	return binary.BigEndian.AppendUint32(dst, uint32(int32(months))), nil
}
