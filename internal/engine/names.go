package engine

import "strings"

// SplitQualified splits a qualified name as PostgreSQL writes one
// (schema.table): parts separated by dots, each bare or double-quoted with
// "" for a quote inside. ok is false when the text is not such a name.
func SplitQualified(s string) (parts []string, ok bool) {
	for len(s) > 0 {
		var part string
		if s[0] == '"' {
			var b strings.Builder
			i := 1
			for {
				if i >= len(s) {
					return nil, false
				}
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			part, s = b.String(), s[i:]
		} else {
			j := strings.IndexByte(s, '.')
			if j < 0 {
				j = len(s)
			}
			part, s = s[:j], s[j:]
		}
		parts = append(parts, part)
		if len(s) > 0 {
			if s[0] != '.' {
				return nil, false
			}
			s = s[1:]
		}
	}
	return parts, true
}
