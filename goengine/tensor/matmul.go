package tensor

import "fmt"

// The prompt's linear layers as one matrix product, out = X Wᵀ: both operands are
// K-contiguous (a dot product per output), so each weight row is read once per
// block of tokens instead of once per token as with MatVec.

// matMulMaxK is the most columns one kernel pass covers. A pass keeps a 4-row
// tile of W (16 KiB here) in L1 while token tiles of X stream past it. On a
// 48 KiB L1, two 768-column passes (the second accumulating into out) beat one
// 1536-column pass, and passes of 512 to 1024 columns were within noise of
// each other (BenchmarkMatMul measures them).
const matMulMaxK = 1024

// matMulKBlock splits K into equal passes of at most matMulMaxK, rounded up
// to 16 floats so only the last pass has a tail.
func matMulKBlock(K int) int {
	if K <= matMulMaxK {
		return K
	}
	parts := (K + matMulMaxK - 1) / matMulMaxK
	return ((K+parts-1)/parts + 15) &^ 15
}

// matMulTokenBlock returns how many tokens' activations (kb floats each) the
// driver keeps in L2 while row tiles of W pass through L1: about 384 KiB of the
// 1 MiB L2. Fewer tokens fetch each W tile from L3 more often; more, and X no
// longer fits in L2.
func matMulTokenBlock(kb, multiple int) int {
	tb := max(128*768/max(kb, 1), multiple)
	return tb / multiple * multiple
}

// checkMatMul panics when the slices cannot hold the shapes: a programming error
// in the caller, which the kernels must not turn into out-of-bounds accesses.
func checkMatMul(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	if N < 0 || T < 0 || K < 0 || ldo < N || ldw < K || ldx < K {
		panic(fmt.Sprintf("tensor: MatMulNT bad shape T=%d K=%d N=%d ldx=%d ldw=%d ldo=%d", T, K, N, ldx, ldw, ldo))
	}
	if N > 0 && len(w) < (N-1)*ldw+K {
		panic(fmt.Sprintf("tensor: MatMulNT w has %d floats, need (N-1)*ldw+K = %d", len(w), (N-1)*ldw+K))
	}
	if T > 0 && len(x) < (T-1)*ldx+K {
		panic(fmt.Sprintf("tensor: MatMulNT x has %d floats, need (T-1)*ldx+K = %d", len(x), (T-1)*ldx+K))
	}
	if T > 0 && N > 0 && len(out) < (T-1)*ldo+N {
		panic(fmt.Sprintf("tensor: MatMulNT out has %d floats, need (T-1)*ldo+N = %d", len(out), (T-1)*ldo+N))
	}
}

// matMulGeneric is the portable product and the reference for the assembly. A
// 4 rows x 2 tokens tile keeps 8 accumulators and 6 operands in registers (Go
// has 15 usable XMM registers on amd64: a 4x4 tile spills, and ran at half the
// speed), and each loaded weight is used twice, each activation four times.
func matMulGeneric(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	checkMatMul(out, ldo, x, ldx, w, ldw, T, K, N)
	tb := matMulTokenBlock(K, 2)
	for t0 := 0; t0 < T; t0 += tb {
		t1 := min(t0+tb, T)
		r := 0
		for ; r+4 <= N; r += 4 {
			w0, w1 := w[r*ldw:r*ldw+K], w[(r+1)*ldw:(r+1)*ldw+K]
			w2, w3 := w[(r+2)*ldw:(r+2)*ldw+K], w[(r+3)*ldw:(r+3)*ldw+K]
			t := t0
			for ; t+2 <= t1; t += 2 {
				x0, x1 := x[t*ldx:t*ldx+K], x[(t+1)*ldx:(t+1)*ldx+K]
				o0, o1 := out[t*ldo+r:t*ldo+r+4], out[(t+1)*ldo+r:(t+1)*ldo+r+4]
				matMulTileGeneric(o0, o1, w0, w1, w2, w3, x0, x1)
			}
			for ; t < t1; t++ {
				xt := x[t*ldx : t*ldx+K]
				o := out[t*ldo+r : t*ldo+r+4]
				o[0], o[1], o[2], o[3] = matMulDot(w0, xt), matMulDot(w1, xt), matMulDot(w2, xt), matMulDot(w3, xt)
			}
		}
		for ; r < N; r++ {
			wr := w[r*ldw : r*ldw+K]
			for t := t0; t < t1; t++ {
				out[t*ldo+r] = matMulDot(wr, x[t*ldx:t*ldx+K])
			}
		}
	}
}

// matMulTileGeneric writes o0[i] = w_i·x0 and o1[i] = w_i·x1 for i < 4.
func matMulTileGeneric(o0, o1, w0, w1, w2, w3, x0, x1 []float32) {
	n := len(x0)
	w0, w1, w2, w3, x1 = w0[:n], w1[:n], w2[:n], w3[:n], x1[:n] // bounds checks out of the loop
	o0, o1 = o0[:4], o1[:4]
	var s00, s10, s20, s30, s01, s11, s21, s31 float32
	for k := range x0 {
		a, b := x0[k], x1[k]
		v0, v1, v2, v3 := w0[k], w1[k], w2[k], w3[k]
		s00 += v0 * a
		s10 += v1 * a
		s20 += v2 * a
		s30 += v3 * a
		s01 += v0 * b
		s11 += v1 * b
		s21 += v2 * b
		s31 += v3 * b
	}
	o0[0], o0[1], o0[2], o0[3] = s00, s10, s20, s30
	o1[0], o1[1], o1[2], o1[3] = s01, s11, s21, s31
}

// matMulDot is the edge tiles' dot product: two accumulators, as the edges are
// at most three rows or one token.
func matMulDot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1 float32
	k := 0
	for ; k+2 <= len(a); k += 2 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
	}
	if k < len(a) {
		s0 += a[k] * b[k]
	}
	return s0 + s1
}
