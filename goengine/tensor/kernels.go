package tensor

import (
	"fmt"
	"os"
	"slices"
)

// The kernel levels, fastest first. Each level uses its own kernels where it
// has them and the next level's elsewhere:
//
//	avx512   AVX-512 F, BW and VL (and VNNI for Q8_0 where the CPU has it)
//	avx2     AVX2, FMA and F16C
//	generic  plain Go, the definition every other kernel is tested against
var kernelLevels = [...]string{"avx512", "avx2", "generic"}

// KernelLevels names every kernel level, fastest first, whether or not this
// CPU runs it.
func KernelLevels() []string { return slices.Clone(kernelLevels[:]) }

// faster reports whether level a is faster than level b.
func faster(a, b string) bool {
	return slices.Index(kernelLevels[:], a) < slices.Index(kernelLevels[:], b)
}

// Kernels names the level of the kernels in use: "avx512", "avx2" or "generic".
func Kernels() string {
	switch {
	case useAVX512:
		return "avx512"
	case useAVX2:
		return "avx2"
	}
	return "generic"
}

// UseKernelsFromEnv caps the kernel level for the whole process by the
// environment variable GOENGINE_KERNELS, so that anyone can compare the
// implementations on one machine; commands call it once before they start. A
// value that names no level is an error (a typo must not silently give the
// fastest kernels), and leaves the fastest in use. The package reads no
// environment when it loads: a test's result would then depend on a variable
// that the go test cache cannot see; tests choose levels with SetKernels.
func UseKernelsFromEnv() error {
	level, err := kernelsFromEnv(os.Getenv("GOENGINE_KERNELS"))
	useKernels(level)
	return err
}

// kernelsFromEnv is the level a GOENGINE_KERNELS value asks for: the fastest
// this CPU runs when empty, else the value, lowered to what the CPU runs (it is
// a cap, not a demand). A value outside KernelLevels is an error, and the
// fastest level.
func kernelsFromEnv(value string) (string, error) {
	best := cpuKernels()
	switch {
	case value == "":
		return best, nil
	case !slices.Contains(kernelLevels[:], value):
		return best, fmt.Errorf("GOENGINE_KERNELS=%q: expected avx512, avx2 or generic", value)
	case faster(value, best):
		return best, nil
	}
	return value, nil
}

// SetKernels switches the kernels to level, one of KernelLevels, and returns
// the function that switches back to the level in use before. It fails, and
// changes nothing, for a level this CPU or this build (purego) cannot run.
//
// It is for tests and comparisons that run every level in one process. The
// level is a plain variable that every kernel call reads: SetKernels and
// restore must not run while another goroutine computes with this package,
// so tests that switch levels must not be parallel.
func SetKernels(level string) (restore func(), err error) {
	if !slices.Contains(kernelLevels[:], level) {
		return nil, fmt.Errorf("tensor: kernel level %q: expected avx512, avx2 or generic", level)
	}
	if best := cpuKernels(); faster(level, best) {
		return nil, fmt.Errorf("tensor: kernel level %s: %s runs at most %s", level, kernelsLimit, best)
	}
	previous := Kernels()
	useKernels(level)
	return func() { useKernels(previous) }, nil
}
