//go:build !unix && !windows

package main

// resetPeakRSS and peakRSS: this platform (Plan 9, WebAssembly) has no peak
// resident set to read; bench prints it as unknown.
func resetPeakRSS() bool { return false }

func peakRSS() int64 { return 0 }
