package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

// Verify's scratch databases are named scratchPrefix + snapshot + number
// and labeled with a scratchMarker (the database's comment). A later verify
// drops a leftover only when its marker proves it is a verify's scratch
// database and that verify is over: made on this host in this PID
// namespace by a process that no longer exists, or older than
// scratchMaxAge; and no session is connected to it. A database whose name
// merely starts with the prefix is never dropped.
const (
	scratchPrefix = "snapdata_verify_"
	markerMagic   = "snapdata verify scratch "
	scratchMaxAge = 24 * time.Hour
)

// scratchMarker is what a scratch database's comment holds.
type scratchMarker struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	PIDNS   string    `json:"pidns,omitempty"` // /proc/self/ns/pid's link, where there is one
	Started time.Time `json:"started"`
	Token   string    `json:"token"`
}

func (m scratchMarker) String() string {
	b, _ := json.Marshal(m) //nolint:errchkjson // plain fields
	return markerMagic + string(b)
}

// parseMarker reads a database comment; ok only for a verify's marker.
func parseMarker(s string) (scratchMarker, bool) {
	var m scratchMarker
	rest, ok := strings.CutPrefix(s, markerMagic)
	if !ok || json.Unmarshal([]byte(rest), &m) != nil || m.PID <= 0 || m.Host == "" || m.Started.IsZero() || m.Token == "" {
		return scratchMarker{}, false
	}
	return m, true
}

// pidNamespace names this process's PID namespace ("" when unknown).
func pidNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return ns
}

// newScratchMarker labels a scratch database made by this process.
func newScratchMarker(now time.Time) scratchMarker {
	host, _ := os.Hostname()
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	return scratchMarker{Host: host, PID: os.Getpid(), PIDNS: pidNamespace(), Started: now.UTC(), Token: hex.EncodeToString(tok)}
}

// processAlive reports whether pid exists in this PID namespace.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// leftoverReason says why a scratch database is a dead verify's leftover,
// or "" when it is not (no marker, a live owner, or in use).
func leftoverReason(s engine.ScratchDB, now time.Time, host, pidns string, alive func(int) bool) string {
	if !strings.HasPrefix(s.Name, scratchPrefix) || s.Sessions > 0 {
		return ""
	}
	m, ok := parseMarker(s.Marker)
	if !ok {
		return ""
	}
	if m.Host == host && m.PIDNS == pidns && pidns != "" && m.PID != os.Getpid() && !alive(m.PID) {
		return fmt.Sprintf("the verify that made it (pid %d on %s, started %s) is gone", m.PID, m.Host, m.Started.Format(time.RFC3339))
	}
	if age := now.Sub(m.Started); age > scratchMaxAge {
		return fmt.Sprintf("made by a verify on %s %s ago, more than %s", m.Host, age.Round(time.Minute), scratchMaxAge)
	}
	return ""
}

// dropLeftoverScratch drops the scratch databases of verifies that were
// killed, and returns their names.
func (a *App) dropLeftoverScratch(ctx context.Context, sc engine.Scratcher, lab engine.ScratchLabeler, server *dsn.DSN) ([]string, error) {
	list, err := lab.ListScratch(ctx, server, scratchPrefix)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	pidns := pidNamespace()
	var dropped []string
	for _, s := range list {
		why := leftoverReason(s, time.Now(), host, pidns, processAlive)
		if why == "" {
			continue
		}
		if err := sc.DropScratch(ctx, server.WithDatabase(s.Name)); err != nil {
			return dropped, fmt.Errorf("drop leftover scratch database %s: %w", s.Name, err)
		}
		a.Logger.Warn("dropped the scratch database of an earlier verify that did not finish", "database", s.Name, "reason", why)
		dropped = append(dropped, s.Name)
	}
	return dropped, nil
}
