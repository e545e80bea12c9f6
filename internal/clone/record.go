package clone

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Names and labels. Every database and file a clone makes carries its
// name prefix and a Record (a database's comment; for files, the name
// holds the PID and a sidecar file holds the record), which proves it is a
// clone's: a later clone drops a leftover only when its record says a
// clone made it and that clone is over (its process is gone from this
// host and PID namespace, or it started more than maxAge ago) and no
// session uses it. A database whose name merely starts with the prefix is
// never dropped.
const (
	BuildPrefix    = "snapdata_clone_" // a copy being built
	PreviousPrefix = "snapdata_prev_"  // the target's old content after a swap
	recordMagic    = "snapdata clone "
	maxAge         = 24 * time.Hour
)

// Record is what snapdata keeps with a copy: who is building it, and what
// it holds. After the swap the target carries its build's record, which
// `clone status` reads.
type Record struct {
	Role         string    `json:"role"` // "build" or "previous"
	Clone        string    `json:"clone"`
	Target       string    `json:"target"` // the target's database name or file
	Host         string    `json:"host"`
	PID          int       `json:"pid"`
	PIDNS        string    `json:"pidns,omitempty"`
	Started      time.Time `json:"started"`
	Token        string    `json:"token"`
	Snapshot     string    `json:"snapshot,omitempty"`
	Source       string    `json:"source,omitempty"`
	SnapshotTime time.Time `json:"snapshot_time,omitzero"`
	KeepPrevious bool      `json:"keep_previous,omitempty"`
}

func (r Record) String() string {
	b, _ := json.Marshal(r) //nolint:errchkjson // plain fields
	return recordMagic + string(b)
}

// ParseRecord reads a label; ok only for a clone's record.
func ParseRecord(s string) (Record, bool) {
	var r Record
	rest, ok := strings.CutPrefix(s, recordMagic)
	if !ok || json.Unmarshal([]byte(rest), &r) != nil || r.PID <= 0 || r.Host == "" || r.Started.IsZero() || r.Token == "" || r.Role == "" {
		return Record{}, false
	}
	return r, true
}

func newRecord(role, clone, target string, now time.Time) Record {
	host, _ := os.Hostname()
	tok := make([]byte, 8)
	_, _ = rand.Read(tok)
	return Record{Role: role, Clone: clone, Target: target, Host: host, PID: os.Getpid(), PIDNS: pidNamespace(), Started: now.UTC(), Token: hex.EncodeToString(tok)}
}

func pidNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return ns
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// over says why the clone that wrote r is over ("" when it may still run).
func (r Record) over(now time.Time) string {
	host, _ := os.Hostname()
	ns := pidNamespace()
	if r.Host == host && r.PIDNS == ns && ns != "" && r.PID != os.Getpid() && !processAlive(r.PID) {
		return fmt.Sprintf("the clone that made it (pid %d on %s, started %s) is gone", r.PID, r.Host, r.Started.Format(time.RFC3339))
	}
	if age := now.Sub(r.Started); age > maxAge {
		return fmt.Sprintf("made by a clone on %s %s ago, more than %s", r.Host, age.Round(time.Minute), maxAge)
	}
	return ""
}

// shortName is the part of a target's name that goes into a build's
// name, so that an operator sees whose copy it is.
func shortName(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' {
			b.WriteRune(c)
		}
		if b.Len() >= 24 {
			break
		}
	}
	return b.String()
}
