//go:build !purego

package tensor

import "gollm/goengine/gguf"

// blockRowsAsm is the assembly rows kernel for type t at the kernel level in
// use, or nil where the level has none (the generic kernels then run). With
// VNNI the 32-value types have their own kernels; the K-quants and BF16 run
// the AVX2 ones at every level (blocks_amd64.s says why).
func blockRowsAsm(t gguf.TensorType) blockRows {
	if !useAVX2 {
		return nil
	}
	if useVNNI {
		switch t {
		case gguf.Q4_0:
			return rowsQ4_0VNNISlices
		case gguf.Q4_1:
			return rowsQ4_1VNNISlices
		case gguf.Q5_0:
			return rowsQ5_0VNNISlices
		case gguf.Q5_1:
			return rowsQ5_1VNNISlices
		}
	}
	switch t {
	case gguf.Q4_0:
		return rowsQ4_0AVX2Slices
	case gguf.Q4_1:
		return rowsQ4_1AVX2Slices
	case gguf.Q5_0:
		return rowsQ5_0AVX2Slices
	case gguf.Q5_1:
		return rowsQ5_1AVX2Slices
	case gguf.Q2_K:
		return rowsQ2_KAVX2Slices
	case gguf.Q3_K:
		return rowsQ3_KAVX2Slices
	case gguf.Q4_K:
		return rowsQ4_KAVX2Slices
	case gguf.Q5_K:
		return rowsQ5_KAVX2Slices
	case gguf.Q6_K:
		return rowsQ6_KAVX2Slices
	case gguf.BF16:
		return rowsBF16AVX2Slices
	}
	return nil
}

// rowsBlocks checks that w is len(out) rows of rowBytes, whole blocks of size
// bytes, and returns the blocks per row; the activation's slices are checked
// by slicing them to that many blocks (act32, actK), so the assembly reads
// nothing out of bounds.
func rowsBlocks(out []float32, w []byte, rowBytes, size int) int {
	if len(out) == 0 || rowBytes%size != 0 || len(w) != len(out)*rowBytes {
		panic("tensor: rows kernel given a partial block or row")
	}
	return rowBytes / size
}

// act32 is the activation of nb blocks of 32 as the kernels' pointers.
func act32(a *blockAct, nb int) (xq *int8, xd *float32) {
	return &a.q8[:nb*32][0], &a.d8[:nb][0]
}

// The rows*AVX2Slices run the assembly kernels on slices: blockRows for one
// type each.

func rowsQ4_0AVX2Slices(out []float32, w []byte, rowBytes int, a *blockAct) {
	nb := rowsBlocks(out, w, rowBytes, 18)
	xq, xd := act32(a, nb)
	rowsQ4_0AVX2(&out[0], &w[0], rowBytes, len(out), nb, xq, xd, nil)
}

func rowsQ4_1AVX2Slices(out []float32, w []byte, rowBytes int, a *blockAct) {
	nb := rowsBlocks(out, w, rowBytes, 20)
	xq, xd := act32(a, nb)
	rowsQ4_1AVX2(&out[0], &w[0], rowBytes, len(out), nb, xq, xd, &a.s8[:nb][0])
}

func rowsQ5_0AVX2Slices(out []float32, w []byte, rowBytes int, a *blockAct) {
	nb := rowsBlocks(out, w, rowBytes, 22)
	xq, xd := act32(a, nb)
	rowsQ5_0AVX2(&out[0], &w[0], rowBytes, len(out), nb, xq, xd, nil)
}

func rowsQ5_1AVX2Slices(out []float32, w []byte, rowBytes int, a *blockAct) {
	nb := rowsBlocks(out, w, rowBytes, 24)
	xq, xd := act32(a, nb)
	rowsQ5_1AVX2(&out[0], &w[0], rowBytes, len(out), nb, xq, xd, &a.s8[:nb][0])
}

// actK is the Q8_K activation of nb super-blocks as the kernels' pointers.
func actK(a *blockAct, nb int) (xq *int8, xd *float32, sums *int16) {
	return &a.qk[:nb*q8KBlock][0], &a.dk[:nb][0], &a.bk[:nb*16][0]
}

func rowsQ2_KAVX2Slices(out []float32, w []byte, rowBytes int, a *blockAct) {
	nb := rowsBlocks(out, w, rowBytes, 84)
	xq, xd, sums := actK(a, nb)
	rowsQ2_KAVX2(&out[0], &w[0], rowBytes, len(out), nb, xq, xd, sums)
}

func rowsQ3_KAVX2Slices(out []float32, w []byte, rowBytes int, a *blockAct) {
	nb := rowsBlocks(out, w, rowBytes, 110)
	xq, xd, sums := actK(a, nb)
	rowsQ3_KAVX2(&out[0], &w[0], rowBytes, len(out), nb, xq, xd, sums)
}

func rowsQ4_KAVX2Slices(out []float32, w []byte, rowBytes int, a *blockAct) {
	nb := rowsBlocks(out, w, rowBytes, 144)
	xq, xd, sums := actK(a, nb)
	rowsQ4_KAVX2(&out[0], &w[0], rowBytes, len(out), nb, xq, xd, sums)
}

func rowsQ5_KAVX2Slices(out []float32, w []byte, rowBytes int, a *blockAct) {
	nb := rowsBlocks(out, w, rowBytes, 176)
	xq, xd, sums := actK(a, nb)
	rowsQ5_KAVX2(&out[0], &w[0], rowBytes, len(out), nb, xq, xd, sums)
}

func rowsQ6_KAVX2Slices(out []float32, w []byte, rowBytes int, a *blockAct) {
	nb := rowsBlocks(out, w, rowBytes, 210)
	xq, xd, sums := actK(a, nb)
	rowsQ6_KAVX2(&out[0], &w[0], rowBytes, len(out), nb, xq, xd, sums)
}

func rowsQ4_0VNNISlices(out []float32, w []byte, rowBytes int, a *blockAct) {
	nb := rowsBlocks(out, w, rowBytes, 18)
	xq, xd := act32(a, nb)
	rowsQ4_0VNNI(&out[0], &w[0], rowBytes, len(out), nb, xq, xd, nil)
}

func rowsQ4_1VNNISlices(out []float32, w []byte, rowBytes int, a *blockAct) {
	nb := rowsBlocks(out, w, rowBytes, 20)
	xq, xd := act32(a, nb)
	rowsQ4_1VNNI(&out[0], &w[0], rowBytes, len(out), nb, xq, xd, &a.s8[:nb][0])
}

func rowsQ5_0VNNISlices(out []float32, w []byte, rowBytes int, a *blockAct) {
	nb := rowsBlocks(out, w, rowBytes, 22)
	xq, xd := act32(a, nb)
	rowsQ5_0VNNI(&out[0], &w[0], rowBytes, len(out), nb, xq, xd, nil)
}

func rowsQ5_1VNNISlices(out []float32, w []byte, rowBytes int, a *blockAct) {
	nb := rowsBlocks(out, w, rowBytes, 24)
	xq, xd := act32(a, nb)
	rowsQ5_1VNNI(&out[0], &w[0], rowBytes, len(out), nb, xq, xd, &a.s8[:nb][0])
}

// rowsBF16AVX2Slices runs the assembly on rows of a multiple of 8 values (the
// widths of every model), the generic loop on others.
func rowsBF16AVX2Slices(out []float32, w []byte, rowBytes int, a *blockAct) {
	if n := rowsBlocks(out, w, rowBytes, 2); n%8 != 0 {
		for r := range out {
			out[r] = dotBF16Generic(w[r*rowBytes:(r+1)*rowBytes], a)
		}
		return
	}
	rowsBF16AVX2(&out[0], &w[0], rowBytes, len(out), rowBytes/2, &a.x[:rowBytes/2][0])
}

// The AVX2 rows kernels (blocks_amd64.s): out[i] = row i · the activation for
// i < rows, row i at w + i·stride, nb >= 1 blocks each; sums is Q8_1's s for
// the types with a min.
//
//go:noescape
func rowsQ4_0AVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)

//go:noescape
func rowsQ4_1AVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)

//go:noescape
func rowsQ5_0AVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)

//go:noescape
func rowsQ5_1AVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)

//go:noescape
func rowsQ2_KAVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *int16)

//go:noescape
func rowsQ3_KAVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *int16)

//go:noescape
func rowsQ4_KAVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *int16)

//go:noescape
func rowsQ5_KAVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *int16)

//go:noescape
func rowsQ6_KAVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *int16)

// rowsBF16AVX2 is the BF16 rows kernel: n values per row, a positive multiple
// of 8, times x.
//
//go:noescape
func rowsBF16AVX2(out *float32, w *byte, stride, rows, n int, x *float32)

// The VNNI rows kernels of the 32-value types (blocks_amd64.s): the AVX2 ones'
// results, bit for bit, with VPDPBUSD.
//
//go:noescape
func rowsQ4_0VNNI(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)

//go:noescape
func rowsQ4_1VNNI(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)

//go:noescape
func rowsQ5_0VNNI(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)

//go:noescape
func rowsQ5_1VNNI(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)
