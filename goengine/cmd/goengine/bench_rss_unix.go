//go:build unix && !linux

package main

import (
	"runtime"
	"syscall"
)

// resetPeakRSS cannot restart getrusage's maximum: it reports false, and the
// peak includes what came before (a random-weight file's generation).
func resetPeakRSS() bool { return false }

// peakRSS is getrusage's maximum resident set in bytes: the kernel counts it
// in bytes on macOS and iOS, in KiB on the BSDs; 0 (unknown) where the kernel
// does not keep it (Solaris and illumos leave it 0).
func peakRSS() int64 {
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) != nil {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(usage.Maxrss)
	}
	return int64(usage.Maxrss) << 10
}
