//go:build !amd64 || purego

package tensor

// Dot returns the dot product of a and b (len(b) >= len(a)).
func Dot(a, b []float32) float32 { return dotGeneric(a, b) }

func matVecRowsF32(out, w, x []float32, start, end int) { matVecRowsGeneric(out, w, x, start, end) }
