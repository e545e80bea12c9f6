//go:build !unix

package progress

import "os"

// notifyResize: no resize signal here; the line follows the width at the
// next redraw.
func notifyResize() (<-chan os.Signal, func()) { return nil, func() {} }
