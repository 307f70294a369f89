//go:build !purego

package tensor

// The amd64 dot product: AVX2 with FMA when the CPU and OS support it (checked
// once at start-up), the generic loop otherwise and for the tail. The pattern is
// the standard library's crypto/internal/fips140/sha256: a generic file, this
// file choosing at run time, and a purego tag that keeps only the generic one.

// Dot returns the dot product of a and b (len(b) >= len(a)).
func Dot(a, b []float32) float32 {
	if !useAVX2 || len(a) < 32 {
		return dotGeneric(a, b)
	}
	return dotAVX2Slices(a, b)
}

// dotAVX2Slices runs the assembly over the largest multiple of 32 elements and
// the generic loop over the rest.
func dotAVX2Slices(a, b []float32) float32 {
	b = b[:len(a)]
	n := len(a) &^ 31
	return dotAVX2(&a[0], &b[0], n) + dotGeneric(a[n:], b[n:])
}

// dotAVX2 is the sum of a[i]*b[i] for i < n; n must be a positive multiple of 32.
//
//go:noescape
func dotAVX2(a, b *float32, n int) float32
