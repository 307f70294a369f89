//go:build !purego

package tensor

// CPU features, read once at start-up with CPUID and XGETBV. A kernel runs only
// when the CPU has its instructions and the OS saves the registers they use
// across context switches; without the second, vector state would be corrupted.
var cpuAVX2, cpuAVX512, cpuVNNI = cpuFeatures()

// The kernels in use, which the dispatching functions read: at most what the
// CPU has, lowered by GOENGINE_KERNELS or SetKernels (kernels.go).
var (
	useAVX2   = cpuAVX2   // AVX2 + FMA + F16C, YMM state saved
	useAVX512 = cpuAVX512 // AVX-512 F, BW, VL, ZMM and opmask state saved
	useVNNI   = cpuVNNI   // AVX-512 VNNI (VPDPBUSD) on top of useAVX512
)

// kernelsLimit is what limits the kernel levels, for SetKernels's error.
const kernelsLimit = "this CPU"

// cpuKernels names the fastest level the CPU runs.
func cpuKernels() string {
	switch {
	case cpuAVX512:
		return "avx512"
	case cpuAVX2:
		return "avx2"
	}
	return "generic"
}

// useKernels switches the kernels to level, or to the fastest the CPU runs
// below it.
func useKernels(level string) {
	useAVX512 = cpuAVX512 && level == "avx512"
	useVNNI = cpuVNNI && level == "avx512"
	useAVX2 = cpuAVX2 && level != "generic"
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
