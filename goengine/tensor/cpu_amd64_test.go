//go:build !purego

package tensor

import "testing"

// TestKernelFlagsFollowTheLevel: each level turns on exactly its instructions
// and those of the levels below it, never more than the CPU has.
func TestKernelFlagsFollowTheLevel(t *testing.T) {
	want := map[string][3]bool{ // AVX2, AVX-512, VNNI
		"avx512":  {cpuAVX2, cpuAVX512, cpuVNNI},
		"avx2":    {cpuAVX2, false, false},
		"generic": {false, false, false},
	}
	atEachKernelLevel(t, func(t *testing.T) {
		level := Kernels()
		if got := [3]bool{useAVX2, useAVX512, useVNNI}; got != want[level] {
			t.Errorf("level %s: useAVX2, useAVX512, useVNNI = %v, want %v", level, got, want[level])
		}
	})
}
