//go:build !purego

#include "textflag.h"

// Q8_0 block at w: float16 scale at 0, 32 int8 at 2; 34 bytes, any alignment.

// Q8_AVX2 adds block (w+wo) · (xq+xo), scaled by d·xs[so/4], into acc. VPMADDUBSW
// needs one unsigned operand: |w| as unsigned bytes (exact for w = -128) times
// x carrying w's sign. Pair sums are at most 2·128·127 = 32512, so its int16
// saturation never triggers while |x| <= 127. Y15 holds int16 ones.
#define Q8_AVX2(wo, xo, so, acc) \
	VMOVDQU     (wo+2)(SI), Y4; \
	VMOVDQU     (xo)(DI), Y5; \
	VPABSB      Y4, Y6; \
	VPSIGNB     Y4, Y5, Y5; \
	VPMADDUBSW  Y5, Y6, Y6; \
	VPMADDWD    Y15, Y6, Y6; \
	VCVTDQ2PS   Y6, Y6; \
	VCVTPH2PS   (wo)(SI), X7; \
	VMULSS      (so)(DX), X7, X7; \
	VBROADCASTSS X7, Y7; \
	VFMADD231PS Y6, Y7, acc

// func dotQ8AVX2(w *byte, xq *int8, xs *float32, nb int) float32
// Four blocks per iteration into four accumulators, then one block at a time.
TEXT ·dotQ8AVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ xq+8(FP), DI
	MOVQ xs+16(FP), DX
	MOVQ nb+24(FP), CX
	VPCMPEQW Y15, Y15, Y15
	VPSRLW   $15, Y15, Y15
	VXORPS   Y0, Y0, Y0
	VXORPS   Y1, Y1, Y1
	VXORPS   Y2, Y2, Y2
	VXORPS   Y3, Y3, Y3
	CMPQ     CX, $4
	JLT      q8avx2tail

q8avx2loop4:
	Q8_AVX2(0, 0, 0, Y0)
	Q8_AVX2(34, 32, 4, Y1)
	Q8_AVX2(68, 64, 8, Y2)
	Q8_AVX2(102, 96, 12, Y3)
	ADDQ $136, SI
	ADDQ $128, DI
	ADDQ $16, DX
	SUBQ $4, CX
	CMPQ CX, $4
	JGE  q8avx2loop4

q8avx2tail:
	TESTQ CX, CX
	JZ    q8avx2done

q8avx2loop1:
	Q8_AVX2(0, 0, 0, Y0)
	ADDQ $34, SI
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JNZ  q8avx2loop1

q8avx2done:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+32(FP)
	RET

// Lane i of a 512-bit block-pair product belongs to block i/8: these indexes
// spread scales 0,1 and 2,3 of a four-scale vector over the two halves.
DATA q8ScaleIdx<>+0(SB)/8, $0x0000000000000000
DATA q8ScaleIdx<>+8(SB)/8, $0x0000000000000000
DATA q8ScaleIdx<>+16(SB)/8, $0x0000000000000000
DATA q8ScaleIdx<>+24(SB)/8, $0x0000000000000000
DATA q8ScaleIdx<>+32(SB)/8, $0x0000000100000001
DATA q8ScaleIdx<>+40(SB)/8, $0x0000000100000001
DATA q8ScaleIdx<>+48(SB)/8, $0x0000000100000001
DATA q8ScaleIdx<>+56(SB)/8, $0x0000000100000001
DATA q8ScaleIdx<>+64(SB)/8, $0x0000000200000002
DATA q8ScaleIdx<>+72(SB)/8, $0x0000000200000002
DATA q8ScaleIdx<>+80(SB)/8, $0x0000000200000002
DATA q8ScaleIdx<>+88(SB)/8, $0x0000000200000002
DATA q8ScaleIdx<>+96(SB)/8, $0x0000000300000003
DATA q8ScaleIdx<>+104(SB)/8, $0x0000000300000003
DATA q8ScaleIdx<>+112(SB)/8, $0x0000000300000003
DATA q8ScaleIdx<>+120(SB)/8, $0x0000000300000003
GLOBL q8ScaleIdx<>(SB), RODATA|NOPTR, $128

// Q8_VNNI_PAIR adds blocks (w+wo) and (w+wo+34) times 64 bytes at (xq+xo) into
// acc, lane i scaled by scale[i]. AVX-512 has no VPSIGNB: x is negated under the
// mask of w's sign bits instead (Z31 is zero). VPDPBUSD sums four u8·s8 products
// into int32 without saturation.
#define Q8_VNNI_PAIR(wo, xo, scale, acc) \
	VMOVDQU      (wo+2)(SI), Y4; \
	VINSERTI64X4 $1, (wo+36)(SI), Z4, Z4; \
	VMOVDQU64    (xo)(DI), Z5; \
	VPMOVB2M     Z4, K1; \
	VPABSB       Z4, Z4; \
	VPSUBB       Z5, Z31, K1, Z5; \
	VPXORD       Z6, Z6, Z6; \
	VPDPBUSD     Z5, Z4, Z6; \
	VCVTDQ2PS    Z6, Z6; \
	VFMADD231PS  Z6, scale, acc

// func dotQ8VNNI(w *byte, xq *int8, xs *float32, nb int) float32
// Four blocks per iteration: their scales d·xs converted and multiplied as one
// 4-wide vector, then spread with VPERMPS over two block pairs; blocks left over
// go through the 256-bit AVX2 step into the same accumulator.
TEXT ·dotQ8VNNI(SB), NOSPLIT, $0-36
	MOVQ      w+0(FP), SI
	MOVQ      xq+8(FP), DI
	MOVQ      xs+16(FP), DX
	MOVQ      nb+24(FP), CX
	VPXORD    Z31, Z31, Z31
	VPXORD    Z0, Z0, Z0
	VPXORD    Z1, Z1, Z1
	VMOVDQU64 q8ScaleIdx<>+0(SB), Z28
	VMOVDQU64 q8ScaleIdx<>+64(SB), Z29
	CMPQ      CX, $4
	JLT       q8vnnitail

q8vnniloop4:
	VMOVD     0(SI), X8
	VPINSRW   $1, 34(SI), X8, X8
	VPINSRW   $2, 68(SI), X8, X8
	VPINSRW   $3, 102(SI), X8, X8
	VCVTPH2PS X8, X8
	VMULPS    0(DX), X8, X8
	VPERMPS   Z8, Z28, Z9
	VPERMPS   Z8, Z29, Z10
	Q8_VNNI_PAIR(0, 0, Z9, Z0)
	Q8_VNNI_PAIR(68, 64, Z10, Z1)
	ADDQ      $136, SI
	ADDQ      $128, DI
	ADDQ      $16, DX
	SUBQ      $4, CX
	CMPQ      CX, $4
	JGE       q8vnniloop4

q8vnnitail:
	VADDPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0 // VEX from here: upper halves of Z0 no longer matter
	TESTQ         CX, CX
	JZ            q8vnnidone
	VPCMPEQW      Y15, Y15, Y15
	VPSRLW        $15, Y15, Y15

q8vnniloop1:
	Q8_AVX2(0, 0, 0, Y0)
	ADDQ $34, SI
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JNZ  q8vnniloop1

q8vnnidone:
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+32(FP)
	RET

// func dotF16AVX2(w *uint16, x *float32, n int) float32
// n must be a positive multiple of 8: 32 per iteration into four accumulators,
// then 8 at a time.
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JLT    f16avx2tail

f16avx2loop32:
	VCVTPH2PS   0(SI), Y4
	VCVTPH2PS   16(SI), Y5
	VCVTPH2PS   32(SI), Y6
	VCVTPH2PS   48(SI), Y7
	VFMADD231PS 0(DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $64, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JGE         f16avx2loop32

f16avx2tail:
	TESTQ CX, CX
	JZ    f16avx2done

f16avx2loop8:
	VCVTPH2PS   0(SI), Y4
	VFMADD231PS 0(DI), Y4, Y0
	ADDQ        $16, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JNZ         f16avx2loop8

f16avx2done:
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

// func dotF16AVX512(w *uint16, x *float32, n int) float32
// n must be a positive multiple of 16: 64 per iteration into four accumulators,
// then 16 at a time.
TEXT ·dotF16AVX512(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n+16(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	CMPQ   CX, $64
	JLT    f16avx512tail

f16avx512loop64:
	VCVTPH2PS   0(SI), Z4
	VCVTPH2PS   32(SI), Z5
	VCVTPH2PS   64(SI), Z6
	VCVTPH2PS   96(SI), Z7
	VFMADD231PS 0(DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z1
	VFMADD231PS 128(DI), Z6, Z2
	VFMADD231PS 192(DI), Z7, Z3
	ADDQ        $128, SI
	ADDQ        $256, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JGE         f16avx512loop64

f16avx512tail:
	TESTQ CX, CX
	JZ    f16avx512done

f16avx512loop16:
	VCVTPH2PS   0(SI), Z4
	VFMADD231PS 0(DI), Z4, Z0
	ADDQ        $32, SI
	ADDQ        $64, DI
	SUBQ        $16, CX
	JNZ         f16avx512loop16

f16avx512done:
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+24(FP)
	RET

// func dequantizeQ8AVX2(dst *float32, w *byte, nb int)
// Per block: broadcast d, then four times sign-extend 8 int8 to int32, convert
// and scale.
TEXT ·dequantizeQ8AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ nb+16(FP), CX

dqq8loop:
	VCVTPH2PS    0(SI), X0
	VBROADCASTSS X0, Y0
	VPMOVSXBD    2(SI), Y1
	VPMOVSXBD    10(SI), Y2
	VPMOVSXBD    18(SI), Y3
	VPMOVSXBD    26(SI), Y4
	VCVTDQ2PS    Y1, Y1
	VCVTDQ2PS    Y2, Y2
	VCVTDQ2PS    Y3, Y3
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y0, Y1, Y1
	VMULPS       Y0, Y2, Y2
	VMULPS       Y0, Y3, Y3
	VMULPS       Y0, Y4, Y4
	VMOVUPS      Y1, 0(DI)
	VMOVUPS      Y2, 32(DI)
	VMOVUPS      Y3, 64(DI)
	VMOVUPS      Y4, 96(DI)
	ADDQ         $34, SI
	ADDQ         $128, DI
	DECQ         CX
	JNZ          dqq8loop
	VZEROUPPER
	RET

// func dequantizeF16AVX2(dst *float32, w *uint16, n int)
// n must be a positive multiple of 8.
TEXT ·dequantizeF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ n+16(FP), CX

dqf16loop:
	VCVTPH2PS 0(SI), Y0
	VMOVUPS   Y0, 0(DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JNZ       dqf16loop
	VZEROUPPER
	RET
