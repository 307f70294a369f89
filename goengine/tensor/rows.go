package tensor

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

// matVecRowsBlocks sets out[r] = row r · x for rows [start, end) of a Blocks
// matrix, with x given as a, quantized in the format w's type pairs with
// (blocks.go): the assembly rows kernel of the level in use where there is
// one (blockRowsAsm), else the generic dot product row by row. Either way a
// row's result does not depend on the rows around it.
func matVecRowsBlocks(out []float32, w *Matrix, a *blockAct, start, end int) {
	if start >= end {
		return
	}
	rowBytes := w.Cols / w.Quant.BlockValues() * w.Quant.BlockBytes()
	rows := w.Data[start*rowBytes : end*rowBytes]
	if kernel := blockRowsAsm(w.Quant); kernel != nil && rowBytes > 0 {
		kernel(out[start:end], rows, rowBytes, a)
		return
	}
	dot := blockDotGeneric(w.Quant)
	for r := range end - start {
		out[start+r] = dot(rows[r*rowBytes:(r+1)*rowBytes], a)
	}
}
