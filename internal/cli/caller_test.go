package cli

import "runtime"

func callerFile() (uintptr, string, int, bool) { return runtime.Caller(0) }
