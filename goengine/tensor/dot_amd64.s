//go:build !purego

#include "textflag.h"

// func dotAVX2(a, b *float32, n int) float32
// Four 8-wide accumulators, 32 floats per iteration: enough independent FMAs to
// keep both FMA ports busy while the loads stream.
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

loop:
	VMOVUPS 0(SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS 0(DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JNZ  loop

	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+24(FP)
	RET

// func dotAVX512(a, b *float32, n int) float32
// The AVX2 loop at twice the width: four 16-wide accumulators, 64 floats per
// iteration.
TEXT ·dotAVX512(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3

loop:
	VMOVUPS 0(SI), Z4
	VMOVUPS 64(SI), Z5
	VMOVUPS 128(SI), Z6
	VMOVUPS 192(SI), Z7
	VFMADD231PS 0(DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z1
	VFMADD231PS 128(DI), Z6, Z2
	VFMADD231PS 192(DI), Z7, Z3
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $64, CX
	JNZ  loop

	VADDPS         Z1, Z0, Z0
	VADDPS         Z3, Z2, Z2
	VADDPS         Z2, Z0, Z0
	VEXTRACTF64X4  $1, Z0, Y1
	VADDPS         Y1, Y0, Y0
	VEXTRACTF128   $1, Y0, X1
	VADDPS         X1, X0, X0
	VHADDPS        X0, X0, X0
	VHADDPS        X0, X0, X0
	VZEROUPPER
	MOVSS          X0, ret+24(FP)
	RET

// func dot4AVX512(x, w *float32, stride, n int, out *[4]float32)
// Four rows at once: out[r] = Σ_{i<n} x[i]·w[r*stride+i], n a positive multiple
// of 32. Each x vector is loaded once for four rows, and four weight streams
// are in flight at a time, which keeps more memory requests outstanding than
// one row's stream does.
TEXT ·dot4AVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ w+8(FP), DI
	MOVQ stride+16(FP), BX
	SHLQ $2, BX
	MOVQ n+24(FP), CX
	MOVQ out+32(FP), DX
	LEAQ (DI)(BX*1), R8
	LEAQ (DI)(BX*2), R9
	LEAQ (R8)(BX*2), R10
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7

loop4:
	VMOVUPS     0(SI), Z8
	VMOVUPS     64(SI), Z9
	VFMADD231PS 0(DI), Z8, Z0
	VFMADD231PS 64(DI), Z9, Z1
	VFMADD231PS 0(R8), Z8, Z2
	VFMADD231PS 64(R8), Z9, Z3
	VFMADD231PS 0(R9), Z8, Z4
	VFMADD231PS 64(R9), Z9, Z5
	VFMADD231PS 0(R10), Z8, Z6
	VFMADD231PS 64(R10), Z9, Z7
	ADDQ        $128, SI
	ADDQ        $128, DI
	ADDQ        $128, R8
	ADDQ        $128, R9
	ADDQ        $128, R10
	SUBQ        $32, CX
	JNZ         loop4

	// Fold each row's two accumulators to one, then each 16-wide vector to 4
	// lanes, then three horizontal adds leave [row0, row1, row2, row3].
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z5, Z4, Z4
	VADDPS        Z7, Z6, Z6
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF64X4 $1, Z2, Y3
	VADDPS        Y3, Y2, Y2
	VEXTRACTF64X4 $1, Z4, Y5
	VADDPS        Y5, Y4, Y4
	VEXTRACTF64X4 $1, Z6, Y7
	VADDPS        Y7, Y6, Y6
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VEXTRACTF128  $1, Y2, X3
	VADDPS        X3, X2, X2
	VEXTRACTF128  $1, Y4, X5
	VADDPS        X5, X4, X4
	VEXTRACTF128  $1, Y6, X7
	VADDPS        X7, X6, X6
	VHADDPS       X2, X0, X0
	VHADDPS       X6, X4, X4
	VHADDPS       X4, X0, X0
	VMOVUPS       X0, (DX)
	VZEROUPPER
	RET
