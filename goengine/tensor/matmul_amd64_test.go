//go:build !purego

package tensor

import "testing"

func init() {
	matMulImpls = append(matMulImpls,
		struct {
			name string
			fn   matMulFunc
			ok   func() bool
		}{"avx2", matMulAVX2, func() bool { return cpuAVX2 }},
		struct {
			name string
			fn   matMulFunc
			ok   func() bool
		}{"avx512", matMulAVX512, func() bool { return cpuAVX512 }},
	)
}

func TestMatMulAVX2(t *testing.T) {
	if !cpuAVX2 {
		t.Skip("this CPU has no AVX2+FMA: the AVX2 kernel cannot run here")
	}
	checkMatMulImpl(t, matMulAVX2)
}

func TestMatMulAVX512(t *testing.T) {
	if !cpuAVX512 {
		t.Skip("this CPU has no AVX-512 F/BW/VL: the AVX-512 kernel cannot run here")
	}
	checkMatMulImpl(t, matMulAVX512)
}
