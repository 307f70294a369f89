//go:build !purego

package tensor

func init() {
	matMulNNImpls = append(matMulNNImpls,
		struct {
			name string
			fn   matMulNNFunc
			ok   func() bool
		}{"avx2", matMulNNAVX2, func() bool { return cpuAVX2 }},
		struct {
			name string
			fn   matMulNNFunc
			ok   func() bool
		}{"avx512", matMulNNAVX512, func() bool { return cpuAVX512 }},
	)
}
