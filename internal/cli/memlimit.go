package cli

import (
	"os"
	"runtime/debug"
)

// softMemoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT
// sets one. A backup or restore normally peaks under 200 MiB, far below
// it; a row holding a huge value (the MySQL driver and pgx hold one row
// whole, and the MySQL driver grows its copy as the packets come) leaves
// garbage as large as the row, which the collector's default pacing (the
// heap may double before a collection) let pile up: a 200 MB LONGBLOB's
// backup peaked at 717 MiB. Near the limit the collector runs more often
// instead; the shipped Kubernetes CronJob allows 512 MiB.
const softMemoryLimit = 384 << 20

func setMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(softMemoryLimit)
}
