//go:build !amd64 || purego

package tensor

// DotQ8 returns the dot product of the Q8_0 row w (whole 34-byte blocks) with an
// activation quantized by QuantizeQ8 into xq and xs. The assembly needs
// |xq| <= 127, which QuantizeQ8 guarantees; w may hold -128.
func DotQ8(w []byte, xq []int8, xs []float32) float32 {
	q8Blocks(w)
	return dotQ8Generic(w, xq, xs)
}

// DotF16 returns the dot product of the float16 row w with x (len(x) >= len(w)).
func DotF16(w []uint16, x []float32) float32 { return dotF16Generic(w, x) }

// DequantizeQ8Row writes the values of the Q8_0 row w into dst.
func DequantizeQ8Row(dst []float32, w []byte) {
	q8Blocks(w)
	dequantizeQ8Generic(dst, w)
}

// DequantizeF16Row writes the values of the float16 row w into dst.
func DequantizeF16Row(dst []float32, w []uint16) { dequantizeF16Generic(dst, w) }
