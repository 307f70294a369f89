//go:build !amd64 || purego

package tensor

// Without amd64 assembly only the generic kernels exist.
const useAVX2, useAVX512, useVNNI = false, false, false

// Kernels names the fastest kernels in use: here always "generic".
func Kernels() string { return "generic" }
