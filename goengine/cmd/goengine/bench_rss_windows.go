package main

import (
	"syscall"
	"unsafe"
)

// K32GetProcessMemoryInfo is GetProcessMemoryInfo as kernel32 exports it
// (Windows 7 and later), which spares loading psapi.dll by name.
var getProcessMemoryInfo = syscall.NewLazyDLL("kernel32.dll").NewProc("K32GetProcessMemoryInfo")

// processMemoryCounters is PROCESS_MEMORY_COUNTERS (SIZE_T is uintptr).
type processMemoryCounters struct {
	cb                         uint32
	PageFaultCount             uint32
	PeakWorkingSetSize         uintptr
	WorkingSetSize             uintptr
	QuotaPeakPagedPoolUsage    uintptr
	QuotaPagedPoolUsage        uintptr
	QuotaPeakNonPagedPoolUsage uintptr
	QuotaNonPagedPoolUsage     uintptr
	PagefileUsage              uintptr
	PeakPagefileUsage          uintptr
}

// resetPeakRSS cannot restart the peak working set: it reports false, and the
// peak includes what came before (a random-weight file's generation).
func resetPeakRSS() bool { return false }

// peakRSS is the process's peak working set in bytes, 0 (unknown) if Windows
// does not answer.
func peakRSS() int64 {
	process, err := syscall.GetCurrentProcess()
	if err != nil || getProcessMemoryInfo.Find() != nil {
		return 0
	}
	var counters processMemoryCounters
	counters.cb = uint32(unsafe.Sizeof(counters))
	if ok, _, _ := getProcessMemoryInfo.Call(uintptr(process), uintptr(unsafe.Pointer(&counters)), uintptr(counters.cb)); ok == 0 {
		return 0
	}
	return int64(counters.PeakWorkingSetSize)
}
