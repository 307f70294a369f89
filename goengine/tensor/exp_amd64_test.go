//go:build !purego

package tensor

// The assembly kernels join the tests and benchmarks when this CPU runs them.
func init() {
	if cpuAVX2 {
		expImpls = append(expImpls, namedExp{"avx2", expAVX2Slices})
		softmaxImpls = append(softmaxImpls, namedSoftmax{"avx2", softmaxAVX2Slice})
		swiGLUImpls = append(swiGLUImpls, namedSwiGLU{"avx2", swiGLUGateAVX2Slices})
	}
	if cpuAVX512 {
		expImpls = append(expImpls, namedExp{"avx512", expAVX512Slices})
		softmaxImpls = append(softmaxImpls, namedSoftmax{"avx512", softmaxAVX512Slice})
		swiGLUImpls = append(swiGLUImpls, namedSwiGLU{"avx512", swiGLUGateAVX512Slices})
	}
}
