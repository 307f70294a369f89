//go:build !purego

package tensor

// The matrix-vector rows of Q8_0 and float16 weights, chosen at run time as
// DotQ8 and DotF16 choose theirs: four rows per call at the avx512 level (Q8_0
// needs VNNI too), two rows of Q8_0 at the avx2 level, row by row otherwise.
// Each multi-row kernel repeats, lane for lane, the operations of its one-row
// kernel on each of its rows: the same exact int32 block sums, the
// same float32 scale products, the same accumulators fed in the same order, the
// same final reduction. Floating-point operations being deterministic, every
// row's result is bit for bit the one-row result; rows_amd64_test.go checks it.

// matVecRowsQ8 sets out[r] = DotQ8(row r, xq, xs) for rows [start, end) of a
// Q8_0 matrix whose rows are rowBytes bytes (whole 34-byte blocks).
func matVecRowsQ8(out []float32, w []byte, rowBytes int, xq []int8, xs []float32, start, end int) {
	switch {
	case useVNNI:
		matVecRowsQ8VNNI(out, w, rowBytes, xq, xs, start, end)
	case useAVX2:
		matVecRowsQ8AVX2(out, w, rowBytes, xq, xs, start, end)
	default:
		matVecRowsQ8Generic(out, w, rowBytes, xq, xs, start, end)
	}
}

// matVecRowsQ8VNNI runs dotQ8x4VNNI over groups of four rows and dotQ8VNNISlices,
// what DotQ8 runs at this level, over the rest.
func matVecRowsQ8VNNI(out []float32, w []byte, rowBytes int, xq []int8, xs []float32, start, end int) {
	if start >= end {
		return
	}
	nb := q8Blocks(w[:rowBytes])
	r := start
	if nb > 0 {
		xq, xs = xq[:nb*Q8BlockSize], xs[:nb]
		w = w[:end*rowBytes]
		for ; r+4 <= end; r += 4 {
			dotQ8x4VNNI(&w[r*rowBytes], rowBytes, &xq[0], &xs[0], nb, (*[4]float32)(out[r:r+4]))
		}
	}
	for ; r < end; r++ {
		out[r] = dotQ8VNNISlices(w[r*rowBytes:(r+1)*rowBytes], xq, xs)
	}
}

// matVecRowsQ8AVX2 is matVecRowsQ8 at the AVX2 level: dotQ8x2AVX2 over pairs of
// rows, which load each activation block once for both, and dotQ8AVX2Slices over
// the last odd row. Two rows is what AVX2's sixteen registers hold: eight
// accumulators, the shared block, the temporaries and the int16 ones.
func matVecRowsQ8AVX2(out []float32, w []byte, rowBytes int, xq []int8, xs []float32, start, end int) {
	if start >= end {
		return
	}
	nb := q8Blocks(w[:rowBytes])
	r := start
	if nb > 0 {
		xq, xs = xq[:nb*Q8BlockSize], xs[:nb]
		w = w[:end*rowBytes]
		for ; r+2 <= end; r += 2 {
			dotQ8x2AVX2(&w[r*rowBytes], rowBytes, &xq[0], &xs[0], nb, (*[2]float32)(out[r:r+2]))
		}
	}
	for ; r < end; r++ {
		out[r] = dotQ8AVX2Slices(w[r*rowBytes:(r+1)*rowBytes], xq, xs)
	}
}

// matVecRowsF16 sets out[r] = DotF16(row r, x) for rows [start, end) of a
// float16 matrix with cols columns (len(x) >= cols).
func matVecRowsF16(out []float32, w []uint16, cols int, x []float32, start, end int) {
	switch {
	case useAVX512:
		matVecRowsF16AVX512(out, w, cols, x, start, end)
	case useAVX2:
		matVecRowsF16AVX2(out, w, cols, x, start, end)
	default:
		matVecRowsF16Generic(out, w, cols, x, start, end)
	}
}

// matVecRowsF16AVX512 runs dotF16x4AVX512 over the first cols&^15 columns of
// groups of four rows and adds each row's generic tail, as dotF16AVX512Slices
// does; the other rows, and rows shorter than 16, go where DotF16 sends them.
func matVecRowsF16AVX512(out []float32, w []uint16, cols int, x []float32, start, end int) {
	if cols < 16 {
		matVecRowsF16AVX2(out, w, cols, x, start, end)
		return
	}
	if start >= end {
		return
	}
	x = x[:cols]
	n := cols &^ 15
	w = w[:end*cols]
	r := start
	var four [4]float32
	for ; r+4 <= end; r += 4 {
		dotF16x4AVX512(&w[r*cols], cols, &x[0], n, &four)
		o := out[r : r+4 : r+4]
		for i := range o {
			row := w[(r+i)*cols : (r+i+1)*cols]
			o[i] = four[i] + dotF16Generic(row[n:], x[n:])
		}
	}
	for ; r < end; r++ {
		out[r] = dotF16AVX512Slices(w[r*cols:(r+1)*cols], x)
	}
}

// matVecRowsF16AVX2 is matVecRowsF16 at the AVX2 level: DotF16's choice, row
// by row.
func matVecRowsF16AVX2(out []float32, w []uint16, cols int, x []float32, start, end int) {
	if cols < 8 {
		matVecRowsF16Generic(out, w, cols, x, start, end)
		return
	}
	for r := start; r < end; r++ {
		out[r] = dotF16AVX2Slices(w[r*cols:(r+1)*cols], x)
	}
}

// dotQ8x2AVX2 sets out[i] = dotQ8AVX2(w + i*stride, xq, xs, nb) for i < 2, nb >= 1.
//
//go:noescape
func dotQ8x2AVX2(w *byte, stride int, xq *int8, xs *float32, nb int, out *[2]float32)

// dotQ8x4VNNI sets out[i] = dotQ8VNNI(w + i*stride, xq, xs, nb) for i < 4, nb >= 1.
//
//go:noescape
func dotQ8x4VNNI(w *byte, stride int, xq *int8, xs *float32, nb int, out *[4]float32)

// dotF16x4AVX512 sets out[i] = dotF16AVX512(w + i*stride, x, n) for i < 4
// (stride in elements); n must be a positive multiple of 16.
//
//go:noescape
func dotF16x4AVX512(w *uint16, stride int, x *float32, n int, out *[4]float32)
