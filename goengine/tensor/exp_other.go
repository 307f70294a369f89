//go:build !amd64 || purego

package tensor

// Softmax replaces x with exp(x - max(x)) / sum, in place. Entries may be -Inf
// (they become 0) as long as one is finite.
func Softmax(x []float32) { softmaxGeneric(x) }

// SwiGLUGate sets gate[i] = silu(gate[i]) * up[i], silu(z) = z / (1 + exp(-z))
// (len(up) >= len(gate)).
func SwiGLUGate(gate, up []float32) { swiGLUGateGeneric(gate, up) }
