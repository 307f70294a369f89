//go:build !purego

package tensor

// The row kernels of each level this CPU runs, each with the one-row function
// DotQ8 or DotF16 uses at that level.
func init() {
	if cpuAVX2 {
		rowsQ8Impls = append(rowsQ8Impls, rowsQ8Impl{"avx2", matVecRowsQ8AVX2, dotQ8AVX2Slices})
		rowsF16Impls = append(rowsF16Impls, rowsF16Impl{"avx2", matVecRowsF16AVX2, dotF16AtAVX2})
	}
	if cpuVNNI {
		rowsQ8Impls = append(rowsQ8Impls, rowsQ8Impl{"avx512vnni", matVecRowsQ8VNNI, dotQ8VNNISlices})
	}
	if cpuAVX512 {
		rowsF16Impls = append(rowsF16Impls, rowsF16Impl{"avx512", matVecRowsF16AVX512, dotF16AtAVX512})
	}
}

// dotF16AtAVX2 and dotF16AtAVX512 are DotF16 with the CPU level fixed.
func dotF16AtAVX2(w []uint16, x []float32) float32 {
	if len(w) >= 8 {
		return dotF16AVX2Slices(w, x)
	}
	return dotF16Generic(w, x)
}

func dotF16AtAVX512(w []uint16, x []float32) float32 {
	if len(w) >= 16 {
		return dotF16AVX512Slices(w, x)
	}
	return dotF16AtAVX2(w, x)
}
