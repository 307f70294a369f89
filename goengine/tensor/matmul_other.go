//go:build !amd64 || purego

package tensor

// MatMulNT computes out[t*ldo + n] = Σ_{k<K} x[t*ldx + k] · w[n*ldw + k]
// for t < T and n < N: out = X Wᵀ for X (T, K) and W (N, K), row-major with
// row strides ldx, ldw ≥ K and ldo ≥ N (so a caller can write a column range
// of a wider output). It overwrites out. Its arguments come in the order of
// MatMulNN's: the output, then X, then W, then the sizes.
func MatMulNT(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	matMulGeneric(out, ldo, x, ldx, w, ldw, T, K, N)
}
