//go:build !purego

package tensor

import (
	"os"
	"testing"
)

// TestKernelsFollowsTheEnvironment: GOENGINE_KERNELS caps the kernel level (the
// Makefile runs the model's golden tests at each level this way).
func TestKernelsFollowsTheEnvironment(t *testing.T) {
	got := Kernels()
	switch want := os.Getenv("GOENGINE_KERNELS"); {
	case want == "generic" && (got != "generic" || useAVX2):
		t.Errorf("GOENGINE_KERNELS=generic, Kernels() = %q", got)
	case want == "avx2" && (got == "avx512" || useVNNI):
		t.Errorf("GOENGINE_KERNELS=avx2, Kernels() = %q", got)
	case want == "" && useAVX512 != (got == "avx512"):
		t.Errorf("Kernels() = %q with useAVX512 = %v", got, useAVX512)
	}
}
