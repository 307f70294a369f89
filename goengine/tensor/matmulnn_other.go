//go:build !amd64 || purego

package tensor

// MatMulNN computes out[t*ldo + j] = Σ_{k<K} x[t*ldx + k] · w[k*ldw + j]
// for t < T and j < N: out = X W for X (T, K) and W (K, N), row-major with row
// strides ldx ≥ K, ldw ≥ N, ldo ≥ N. It overwrites out.
func MatMulNN(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	matMulNNGeneric(out, ldo, x, ldx, w, ldw, T, K, N)
}
