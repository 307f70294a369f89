//go:build !purego

package tensor

import "os"

// CPU features, read once at start-up with CPUID and XGETBV. A kernel runs only
// when the CPU has its instructions and the OS saves the registers they use
// across context switches; without the second, vector state would be corrupted.
var (
	useAVX2   bool // AVX2 + FMA + F16C, YMM state saved
	useAVX512 bool // AVX-512 F, BW, VL, ZMM and opmask state saved
	useVNNI   bool // AVX-512 VNNI (VPDPBUSD) on top of useAVX512
)

func init() {
	useAVX2, useAVX512, useVNNI = cpuFeatures()
	// GOENGINE_KERNELS caps the kernels at a lower level, so that the model's
	// tests (and anyone comparing) can run every implementation on one machine.
	switch os.Getenv("GOENGINE_KERNELS") {
	case "avx2":
		useAVX512, useVNNI = false, false
	case "generic":
		useAVX2, useAVX512, useVNNI = false, false, false
	}
}

// Kernels names the fastest kernels in use: "avx512", "avx2" or "generic".
func Kernels() string {
	switch {
	case useAVX512:
		return "avx512"
	case useAVX2:
		return "avx2"
	}
	return "generic"
}

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
func xgetbv() (eax, edx uint32)

func cpuFeatures() (avx2, avx512, vnni bool) {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false, false, false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const fma, osxsave, avx, f16c = 1 << 12, 1 << 27, 1 << 28, 1 << 29
	if ecx1&(fma|osxsave|avx|f16c) != fma|osxsave|avx|f16c {
		return false, false, false
	}
	xcr0, _ := xgetbv()
	if xcr0&0x6 != 0x6 { // XMM and YMM state
		return false, false, false
	}
	_, ebx7, ecx7, _ := cpuid(7, 0)
	avx2 = ebx7&(1<<5) != 0
	const avx512f, avx512bw, avx512vl = 1 << 16, 1 << 30, 1 << 31
	avx512 = avx2 && ebx7&(avx512f|avx512bw|avx512vl) == avx512f|avx512bw|avx512vl &&
		xcr0&0xe0 == 0xe0 // opmask, upper halves of ZMM0-15, ZMM16-31
	vnni = avx512 && ecx7&(1<<11) != 0
	return avx2, avx512, vnni
}
