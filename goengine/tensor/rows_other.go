//go:build !amd64 || purego

package tensor

// matVecRowsQ8 sets out[r] = DotQ8(row r, xq, xs) for rows [start, end) of a
// Q8_0 matrix whose rows are rowBytes bytes (whole 34-byte blocks).
func matVecRowsQ8(out []float32, w []byte, rowBytes int, xq []int8, xs []float32, start, end int) {
	matVecRowsQ8Generic(out, w, rowBytes, xq, xs, start, end)
}

// matVecRowsF16 sets out[r] = DotF16(row r, x) for rows [start, end) of a
// float16 matrix with cols columns (len(x) >= cols).
func matVecRowsF16(out []float32, w []uint16, cols int, x []float32, start, end int) {
	matVecRowsF16Generic(out, w, cols, x, start, end)
}
