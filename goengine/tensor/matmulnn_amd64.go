//go:build !purego

package tensor

// The amd64 out = X W: an AVX-512 or AVX2+FMA broadcast microkernel chosen at
// run time from the CPU flags, the generic code otherwise. A kernel call covers
// up to 4 (AVX-512) or 3 (AVX2) tokens by 64 or 32 columns over all of K: per k
// it loads one row of W's tile and broadcasts x[t][k] for each token. The token
// count is a kernel parameter with its own loop per count, so decode's T = 3
// (and T = 1) runs no wasted lanes.
//
// A W row stride that is a multiple of 4 KiB (keys stored transposed with
// context_length 2048) puts all rows of a column tile in the same L1 sets, and
// runs markedly slower than a padded stride. Software prefetch (2-12 rows
// ahead) made every stride slower, and a 3 x 128 tile helped that stride but
// lost elsewhere, so neither was kept; padding the cache's row stride
// (KVCache.KStride) is the fix.

// MatMulNN computes out[t*ldo + j] = Σ_{k<K} x[t*ldx + k] · w[k*ldw + j]
// for t < T and j < N: out = X W for X (T, K) and W (K, N), row-major with row
// strides ldx ≥ K, ldw ≥ N, ldo ≥ N. It overwrites out.
func MatMulNN(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	switch {
	case useAVX512:
		matMulNNAVX512(out, ldo, x, ldx, w, ldw, T, K, N)
	case useAVX2:
		matMulNNAVX2(out, ldo, x, ldx, w, ldw, T, K, N)
	default:
		matMulNNGeneric(out, ldo, x, ldx, w, ldw, T, K, N)
	}
}

func matMulNNAVX512(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	matMulNNTiled(true, out, ldo, x, ldx, w, ldw, T, K, N)
}

func matMulNNAVX2(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	matMulNNTiled(false, out, ldo, x, ldx, w, ldw, T, K, N)
}

// matMulNNKernelAVX512 writes out[t*ldo + j] = Σ_{k<K} x[t*ldx + k]·w[k*ldw + j]
// for t < nt ≤ 4 and j < n ≤ 64; K ≥ 1. Columns past n are neither read from w
// nor written (K masks).
//
//go:noescape
func matMulNNKernelAVX512(out *float32, ldo int, x *float32, ldx int, w *float32, ldw int, K, nt, n int)

// matMulNNKernelAVX2 is the same for t < nt ≤ 3 and j < n ≤ 32, except that it
// stores all 32 columns: the driver gives column tails a scratch tile, as
// VMASKMOVPS stores are microcoded and slow on AMD.
//
//go:noescape
func matMulNNKernelAVX2(out *float32, ldo int, x *float32, ldx int, w *float32, ldw int, K, nt, n int)

// matMulNNPackK is the most rows of W the drivers copy into a contiguous panel
// (a 32 KiB column tile that stays in L1 across token tiles). Keys stored
// transposed have a row stride of context_length floats, a multiple of 4 KiB
// whose rows all fall in the same L1 sets, so a strided tile cannot stay in L1.
// The copy pays off at such strides (most with AVX2) and costs nothing
// measurable at others; decode (one token tile) gains nothing from it, as each
// W float is read once.
const matMulNNPackK = 128

// matMulNNTiled runs the kernel over column tiles (outer) and token tiles
// (inner), so a column tile of W is reused by every token tile while it is
// still in cache.
func matMulNNTiled(avx512 bool, out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int) {
	checkMatMulNN(out, ldo, x, ldx, w, ldw, T, K, N)
	if T == 0 || N == 0 {
		return
	}
	if K == 0 {
		for t := range T {
			clear(out[t*ldo : t*ldo+N])
		}
		return
	}
	nt, width := 3, 32
	if avx512 {
		nt, width = 4, 64
	}
	if T > nt && K <= matMulNNPackK {
		matMulNNPacked(avx512, out, ldo, x, ldx, w, ldw, T, K, N, nt, width)
		return
	}
	for j := 0; j < N; j += width {
		matMulNNColumns(avx512, out[j:], ldo, x, ldx, &w[j], ldw, T, K, min(width, N-j), nt)
	}
}

// matMulNNPacked is matMulNNTiled's loop with each column tile of W first
// copied into a contiguous panel. It is a function of its own so that the
// decode path (one token tile, nothing to reuse) keeps a small stack frame.
//
//go:noinline
func matMulNNPacked(avx512 bool, out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N, nt, width int) {
	var panel [matMulNNPackK * 64]float32
	for j := 0; j < N; j += width {
		n := min(width, N-j)
		for k := range K {
			copy(panel[k*width:k*width+n], w[k*ldw+j:k*ldw+j+n])
		}
		matMulNNColumns(avx512, out[j:], ldo, x, ldx, &panel[0], width, T, K, n, nt)
	}
}

// matMulNNColumns runs the kernel over the token tiles of one column tile of
// n ≤ width columns, W's tile at w with row stride ldw.
func matMulNNColumns(avx512 bool, out []float32, ldo int, x []float32, ldx int, w *float32, ldw, T, K, n, nt int) {
	var scratch [3 * 32]float32
	for t := 0; t < T; t += nt {
		m := min(nt, T-t)
		switch {
		case avx512:
			matMulNNKernelAVX512(&out[t*ldo], ldo, &x[t*ldx], ldx, w, ldw, K, m, n)
		case n == 32:
			matMulNNKernelAVX2(&out[t*ldo], ldo, &x[t*ldx], ldx, w, ldw, K, m, n)
		default:
			matMulNNKernelAVX2(&scratch[0], 32, &x[t*ldx], ldx, w, ldw, K, m, n)
			for i := range m {
				copy(out[(t+i)*ldo:(t+i)*ldo+n], scratch[32*i:32*i+n])
			}
		}
	}
}
