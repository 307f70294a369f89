package tensor

import "fmt"

// The attention products with W contiguous along the output dimension, out = X W
// (keys stored transposed for the scores, values for the output). Each output
// row is a sum of W rows scaled by x[t][k], so the kernels broadcast x[t][k] and
// accumulate whole vectors of W: no horizontal sums.

// checkMatMulNN panics when the slices cannot hold the shapes: a programming
// error in the caller, which the kernels must not turn into out-of-bounds accesses.
func checkMatMulNN(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	if T < 0 || K < 0 || N < 0 || ldx < K || ldw < N || ldo < N {
		panic(fmt.Sprintf("tensor: MatMulNN bad shape T=%d K=%d N=%d ldx=%d ldw=%d ldo=%d", T, K, N, ldx, ldw, ldo))
	}
	if T > 0 && K > 0 && len(x) < (T-1)*ldx+K {
		panic(fmt.Sprintf("tensor: MatMulNN x has %d floats, need (T-1)*ldx+K = %d", len(x), (T-1)*ldx+K))
	}
	if K > 0 && N > 0 && T > 0 && len(w) < (K-1)*ldw+N {
		panic(fmt.Sprintf("tensor: MatMulNN w has %d floats, need (K-1)*ldw+N = %d", len(w), (K-1)*ldw+N))
	}
	if T > 0 && N > 0 && len(out) < (T-1)*ldo+N {
		panic(fmt.Sprintf("tensor: MatMulNN out has %d floats, need (T-1)*ldo+N = %d", len(out), (T-1)*ldo+N))
	}
}

// matMulNNGeneric is the portable product and the reference for the assembly.
// A 2 tokens x 4 columns tile: 8 accumulators, each loaded weight used twice and
// each activation four times. Go's scheduler hoists all 8 products above the
// adds and spills 2 of them, yet it beats 1 token x 4 columns (which does not
// spill) wherever W's row stride is a multiple of 4 KiB, as it halves the
// strided W reads; those strides are the transposed key cache's.
func matMulNNGeneric(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	checkMatMulNN(out, ldo, x, ldx, w, ldw, T, K, N)
	if T == 0 || N == 0 {
		return
	}
	if K == 0 { // empty sums; x and w may be empty
		for t := range T {
			clear(out[t*ldo : t*ldo+N])
		}
		return
	}
	t := 0
	for ; t+2 <= T; t += 2 {
		x0, x1 := x[t*ldx:t*ldx+K], x[(t+1)*ldx:(t+1)*ldx+K]
		o0, o1 := out[t*ldo:t*ldo+N], out[(t+1)*ldo:(t+1)*ldo+N]
		j := 0
		for ; j+4 <= N; j += 4 {
			matMulNNTile2x4(o0[j:j+4], o1[j:j+4], x0, x1, w[j:], ldw)
		}
		for ; j < N; j++ {
			o0[j], o1[j] = matMulNNColumn(x0, w[j:], ldw), matMulNNColumn(x1, w[j:], ldw)
		}
	}
	if t < T {
		x0, o0 := x[t*ldx:t*ldx+K], out[t*ldo:t*ldo+N]
		j := 0
		for ; j+4 <= N; j += 4 {
			matMulNNTile1x4(o0[j:j+4], x0, w[j:], ldw)
		}
		for ; j < N; j++ {
			o0[j] = matMulNNColumn(x0, w[j:], ldw)
		}
	}
}

// matMulNNTile2x4 writes o_t[i] = Σ_k x_t[k]·w[k*ldw+i] for i < 4.
func matMulNNTile2x4(o0, o1, x0, x1, w []float32, ldw int) {
	x1 = x1[:len(x0)]
	var s00, s01, s02, s03, s10, s11, s12, s13 float32
	p := 0
	for k := range x0 {
		wk := w[p : p+4 : p+4] // one bounds check per 8 products
		a, b := x0[k], x1[k]
		s00 += a * wk[0]
		s10 += b * wk[0]
		s01 += a * wk[1]
		s11 += b * wk[1]
		s02 += a * wk[2]
		s12 += b * wk[2]
		s03 += a * wk[3]
		s13 += b * wk[3]
		p += ldw
	}
	o0, o1 = o0[:4], o1[:4]
	o0[0], o0[1], o0[2], o0[3] = s00, s01, s02, s03
	o1[0], o1[1], o1[2], o1[3] = s10, s11, s12, s13
}

// matMulNNTile1x4 is matMulNNTile2x4 for the odd token.
func matMulNNTile1x4(o0, x0, w []float32, ldw int) {
	var s0, s1, s2, s3 float32
	p := 0
	for k := range x0 {
		wk := w[p : p+4 : p+4]
		a := x0[k]
		s0 += a * wk[0]
		s1 += a * wk[1]
		s2 += a * wk[2]
		s3 += a * wk[3]
		p += ldw
	}
	o0 = o0[:4]
	o0[0], o0[1], o0[2], o0[3] = s0, s1, s2, s3
}

// matMulNNColumn is the edge columns' Σ_k x0[k]·w[k*ldw].
func matMulNNColumn(x0, w []float32, ldw int) float32 {
	var s float32
	p := 0
	for k := range x0 {
		s += x0[k] * w[p]
		p += ldw
	}
	return s
}
