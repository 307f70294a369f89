//go:build !amd64 || purego

package tensor

// MatMulF32 computes out[t*ldo + r] = Σ_k x[t*cols + k] · w[r*cols + k]
// for t < T and r < rows: out = X Wᵀ for X (T, cols) and W (rows, cols), both
// row-major. ldo is out's row stride (≥ rows), so a caller can write a column
// range of a wider output. It overwrites out (does not accumulate).
func MatMulF32(out []float32, ldo int, w []float32, rows int, x []float32, T int, cols int) {
	matMulStrided(out, ldo, w, cols, rows, x, cols, T, cols)
}

// matMulStrided is MatMulF32 with row strides for W and X too (ldw, ldx ≥
// cols): out[t*ldo + r] = Σ_{k<cols} x[t*ldx + k] · w[r*ldw + k].
func matMulStrided(out []float32, ldo int, w []float32, ldw, rows int, x []float32, ldx, T, cols int) {
	matMulGeneric(out, ldo, w, ldw, rows, x, ldx, T, cols)
}
