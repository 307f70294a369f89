package tensor

import "gollm/goengine/gguf"

// Matrix-vector rows for quantized weights: out[r] = row r · x for rows
// [start, end). At the avx512 level (rows_amd64.go) the Q8_0 (with VNNI) and
// F16 kernels take four rows per call, load each piece of the activation once
// for the four, and keep four weight streams in flight; at the avx2 and
// generic levels they go row by row. Either way every row's result is bit for
// bit what the one-row DotQ8 or DotF16 returns for it at the same level, so a
// row never depends on how rows are grouped.

// matVecRowsQ8Generic sets out[r] = dotQ8Generic(row r, xq, xs) for rows
// [start, end) of a Q8_0 matrix whose rows are rowBytes bytes (whole blocks).
func matVecRowsQ8Generic(out []float32, w []byte, rowBytes int, xq []int8, xs []float32, start, end int) {
	if start >= end {
		return
	}
	q8Blocks(w[:rowBytes])
	for r := start; r < end; r++ {
		out[r] = dotQ8Generic(w[r*rowBytes:(r+1)*rowBytes], xq, xs)
	}
}

// matVecRowsF16Generic sets out[r] = dotF16Generic(row r, x) for rows
// [start, end) of a float16 matrix with cols columns.
func matVecRowsF16Generic(out []float32, w []uint16, cols int, x []float32, start, end int) {
	for r := start; r < end; r++ {
		out[r] = dotF16Generic(w[r*cols:(r+1)*cols], x)
	}
}

// maxBlockValues is the most values a ggml block holds (the K-quants' 256).
const maxBlockValues = 256

// matVecRowsBlocks sets out[r] = row r · x for rows [start, end) of a Blocks
// matrix: each block of weights is decoded into a buffer on the stack, exactly
// as ggml dequantizes it, and multiplied with its stretch of x by Dot. The
// activations stay float32, so the product is the file's weights times x to
// float32 rounding (llama.cpp instead rounds x to 8 bits per block first).
func matVecRowsBlocks(out []float32, w *Matrix, x []float32, start, end int) {
	per, size := w.Quant.BlockValues(), w.Quant.BlockBytes()
	var buf [maxBlockValues]float32
	values := buf[:per]
	for r := start; r < end; r++ {
		row := w.blocksRow(r)
		var sum float32
		for b := 0; b < len(row)/size; b++ {
			gguf.DequantizeBlocks(w.Quant, values, row[b*size:(b+1)*size])
			sum += Dot(values, x[b*per:(b+1)*per])
		}
		out[r] = sum
	}
}
