package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// resetPeakRSS returns freed memory to the OS and restarts the kernel's
// peak-RSS count, so that peakRSS counts what the engine holds and not what
// came before it (a random-weight file's generation). It reports whether the
// count was restarted.
func resetPeakRSS() bool {
	runtime.GC()
	debug.FreeOSMemory()
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil // 5: reset the peak RSS
}

// peakRSS is the process's peak resident set in bytes: VmHWM, which
// resetPeakRSS restarts, or getrusage's maximum (in KiB on Linux) where /proc
// cannot be read.
func peakRSS() int64 {
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				if n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(kb, "kB")), 10, 64); err == nil {
					return n << 10
				}
			}
		}
	}
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) != nil {
		return 0
	}
	return int64(usage.Maxrss) << 10
}
