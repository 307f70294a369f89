//go:build linux

package tensor

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"unsafe"
)

// The kernels read and write whole vectors and mask or step down at the end
// of a slice. A kernel that touched a byte past its slice would pass every
// value check when the byte happens to be mapped; here every slice ends right
// before a page that is not, so such a kernel crashes the test instead.

// guardedBytes returns n bytes that end where an inaccessible page begins.
func guardedBytes(t *testing.T, n int) []byte {
	t.Helper()
	page := syscall.Getpagesize()
	size := (n+page-1)/page*page + page
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mprotect(mem[size-page:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	return mem[size-page-n : size-page : size-page]
}

func guardedFloats(t *testing.T, values []float32) []float32 {
	b := guardedBytes(t, 4*len(values))
	if len(values) == 0 {
		return []float32{}
	}
	f := unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(values))
	copy(f, values)
	return f
}

func TestKernelsStayInsideTheirSlices(t *testing.T) {
	atEachKernelLevel(t, checkKernelsStayInsideTheirSlices)
}

func checkKernelsStayInsideTheirSlices(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 129, 768} {
		a, b := guardedFloats(t, randomSlice(r, n)), guardedFloats(t, randomSlice(r, n))
		Dot(a, b)
		Softmax(guardedFloats(t, randomSlice(r, n)))
		SwiGLUGate(guardedFloats(t, randomSlice(r, n)), guardedFloats(t, randomSlice(r, n)))
		RMSNorm(guardedFloats(t, make([]float32, n)), a, b, 1e-5)
		DotF16(unsafe.Slice((*uint16)(unsafe.Pointer(&guardedBytes(t, 2*n)[0])), n), b)
		DequantizeF16Row(guardedFloats(t, make([]float32, n)), unsafe.Slice((*uint16)(unsafe.Pointer(&guardedBytes(t, 2*n)[0])), n))
	}
	for _, blocks := range []int{1, 2, 3, 4, 5, 24} {
		n := blocks * Q8BlockSize
		x := guardedFloats(t, randomSlice(r, n))
		xq := unsafe.Slice((*int8)(unsafe.Pointer(&guardedBytes(t, n)[0])), n)
		xs := guardedFloats(t, make([]float32, blocks))
		QuantizeQ8(xq, xs, x)
		w := guardedBytes(t, 5*blocks*Q8BlockBytes) // five rows: a group of four and one more
		for i := range w {
			w[i] = byte(r.IntN(256))
		}
		for i := 0; i < len(w); i += Q8BlockBytes {
			w[i], w[i+1] = 0x00, 0x38 // scales of 0.5, no NaN
		}
		DotQ8(w[4*blocks*Q8BlockBytes:], xq, xs)
		matVecRowsQ8(guardedFloats(t, make([]float32, 5)), w, blocks*Q8BlockBytes, xq, xs, 0, 5)
		DequantizeQ8Row(guardedFloats(t, make([]float32, n)), w[4*blocks*Q8BlockBytes:])
		f16 := unsafe.Slice((*uint16)(unsafe.Pointer(&guardedBytes(t, 2*5*n)[0])), 5*n)
		matVecRowsF16(guardedFloats(t, make([]float32, 5)), f16, n, x, 0, 5)
		matVecRowsF32(guardedFloats(t, make([]float32, 5)), guardedFloats(t, randomSlice(r, 5*n)), x, 0, 5)
	}
	for _, shape := range [][3]int{{1, 1, 1}, {3, 64, 5}, {4, 17, 65}, {5, 100, 33}, {13, 48, 7}} {
		T, k, m := shape[0], shape[1], shape[2] // tokens, shared dimension, outputs
		x, w := guardedFloats(t, randomSlice(r, T*k)), guardedFloats(t, randomSlice(r, m*k))
		MatMulNT(guardedFloats(t, make([]float32, T*m)), m, x, k, w, k, T, k, m)
		MatMulNN(guardedFloats(t, make([]float32, T*m)), m, x, k, guardedFloats(t, randomSlice(r, k*m)), m, T, k, m)
	}
}
