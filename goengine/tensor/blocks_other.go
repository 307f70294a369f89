//go:build !amd64 || purego

package tensor

import "gollm/goengine/gguf"

// blockRowsAsm is nil: without amd64 assembly every Blocks product runs the
// generic kernels.
func blockRowsAsm(t gguf.TensorType) blockRows { return nil }
