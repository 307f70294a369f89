//go:build !amd64 || purego

package tensor

// Without amd64 assembly only the generic kernels exist.
const useAVX2, useAVX512, useVNNI = false, false, false

// kernelsLimit is what limits the kernel levels, for SetKernels's error.
const kernelsLimit = "this build (purego or not amd64)"

func cpuKernels() string { return "generic" }

// useKernels has nothing to switch: every level is the generic one here.
func useKernels(level string) {}
