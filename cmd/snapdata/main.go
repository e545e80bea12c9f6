// Command snapdata backs up databases, proves the backups restore, and
// gives teams safe copies of production.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/snapdata/snapdata/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
