//go:build !purego

package tensor

// The amd64 matrix product: an AVX-512 or AVX2+FMA microkernel chosen at run
// time from the CPU flags, the generic code otherwise. The kernels compute whole
// dot products (all of K) for a tile of 4 weight rows x 4 (AVX-512) or 3
// (AVX2) tokens and sum each accumulator horizontally at the end; the Go driver
// below does the cache blocking and the edge tiles.

// MatMulNT computes out[t*ldo + n] = Σ_{k<K} x[t*ldx + k] · w[n*ldw + k]
// for t < T and n < N: out = X Wᵀ for X (T, K) and W (N, K), row-major with
// row strides ldx, ldw ≥ K and ldo ≥ N (so a caller can write a column range
// of a wider output). It overwrites out. Its arguments come in the order of
// MatMulNN's: the output, then X, then W, then the sizes. The kernels take a
// pointer per row, so strides cost nothing.
func MatMulNT(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	switch {
	case useAVX512:
		matMulAVX512(out, ldo, x, ldx, w, ldw, T, K, N)
	case useAVX2:
		matMulAVX2(out, ldo, x, ldx, w, ldw, T, K, N)
	default:
		matMulGeneric(out, ldo, x, ldx, w, ldw, T, K, N)
	}
}

func matMulAVX512(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	matMulTiled(true, out, ldo, x, ldx, w, ldw, T, K, N)
}

func matMulAVX2(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	matMulTiled(false, out, ldo, x, ldx, w, ldw, T, K, N)
}

// matMulKernel writes out[t*ldo + r] = w_r · x_t (K floats each) for r < 4 and
// t < the kernel's token count, or adds it to out with accumulate (the later k
// passes); the AVX2 kernel reads 3 tokens and ignores x3. Separate row and token
// pointers let an edge tile repeat the last row or token.
//
// matMulKernel calls one or the other directly: through a func value, escape
// analysis would move the driver's scratch tile to the heap on every call.
func matMulKernel(avx512 bool, out *float32, ldo int, w0, w1, w2, w3, x0, x1, x2, x3 *float32, K int, accumulate bool) {
	if avx512 {
		matMulKernelAVX512(out, ldo, w0, w1, w2, w3, x0, x1, x2, x3, K, accumulate)
	} else {
		matMulKernelAVX2(out, ldo, w0, w1, w2, w3, x0, x1, x2, x3, K, accumulate)
	}
}

//go:noescape
func matMulKernelAVX512(out *float32, ldo int, w0, w1, w2, w3, x0, x1, x2, x3 *float32, cols int, accumulate bool)

//go:noescape
func matMulKernelAVX2(out *float32, ldo int, w0, w1, w2, w3, x0, x1, x2, x3 *float32, cols int, accumulate bool)

// matMulTiled runs kernel over 4-row x nt-token tiles. Tokens are blocked so a
// block of X stays in L2 while each 4-row tile of W, loaded once per block, stays
// in L1 across the block's token tiles; long rows are cut into k passes so that
// tile fits. Edge tiles (fewer rows or tokens) repeat
// the last valid row or token and go through a scratch tile.
func matMulTiled(avx512 bool, out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	checkMatMul(out, ldo, x, ldx, w, ldw, T, K, N)
	nt := 3 // tokens per tile
	if avx512 {
		nt = 4
	}
	if T == 0 || N == 0 {
		return
	}
	if K == 0 {
		for t := range T {
			clear(out[t*ldo : t*ldo+N])
		}
		return
	}
	kb := matMulKBlock(K)
	tb := matMulTokenBlock(kb, nt)
	var scratch [16]float32
	for t0 := 0; t0 < T; t0 += tb {
		t1 := min(t0+tb, T)
		for k0 := 0; k0 < K; k0 += kb {
			kn, acc := min(kb, K-k0), k0 > 0
			for r := 0; r < N; r += 4 {
				nr := min(N-r, 4)
				w0, w1 := &w[r*ldw+k0], &w[(r+min(1, nr-1))*ldw+k0]
				w2, w3 := &w[(r+min(2, nr-1))*ldw+k0], &w[(r+min(3, nr-1))*ldw+k0]
				for t := t0; t < t1; t += nt {
					n := min(t1-t, nt)
					x0, x1 := &x[t*ldx+k0], &x[(t+min(1, n-1))*ldx+k0]
					x2, x3 := &x[(t+min(2, n-1))*ldx+k0], &x[(t+min(3, n-1))*ldx+k0]
					if nr == 4 && n == nt {
						matMulKernel(avx512, &out[t*ldo+r], ldo, w0, w1, w2, w3, x0, x1, x2, x3, kn, acc)
						continue
					}
					matMulKernel(avx512, &scratch[0], 4, w0, w1, w2, w3, x0, x1, x2, x3, kn, false)
					for i := range n {
						o := out[(t+i)*ldo+r : (t+i)*ldo+r+nr]
						for j := range o {
							if acc {
								o[j] += scratch[4*i+j]
							} else {
								o[j] = scratch[4*i+j]
							}
						}
					}
				}
			}
		}
	}
}
