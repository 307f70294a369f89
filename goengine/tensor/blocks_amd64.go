//go:build !purego

package tensor

import "gollm/goengine/gguf"

// blockRowsAsm is the assembly rows kernel for type t at the kernel level in
// use, or nil where the level has none (the generic kernels then run).
func blockRowsAsm(t gguf.TensorType) blockRows { return nil }
