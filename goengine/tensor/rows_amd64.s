//go:build !purego

#include "textflag.h"

// Four-row versions of dotQ8VNNI and dotF16AVX512 (quant_amd64.s). Each row
// goes through the one-row kernel's floating-point operations in the same
// order, into its own accumulators, so its result is the one-row result bit for
// bit; only the loads of the activation are shared.
//
// Four rows read in step are four interleaved streams inside one contiguous
// range, which the hardware prefetchers follow worse than the one-row kernel's
// single stream: without help the four-row kernels were slower than one row at
// a time on matrices out of cache. So the main loops prefetch the matrix
// linearly, a fixed distance ahead of the four rows (16 KiB for Q8_0, 8 KiB for
// float16, the best of the distances tried on the 32768x768 head), as many
// bytes per iteration as the four rows consume. PREFETCHT0 never faults, so
// running past the end of the matrix is harmless.
//
// The two-row AVX2 Q8_0 kernel prefetches the same way, 16 KiB ahead: without
// it, SmolLM2-135M Q8_0 decoded at 53-55 tokens/s here (GOENGINE_KERNELS=avx2),
// with it at 64-79 over four rounds (llama-bench's AVX2 build, alternating with
// it: 65-73); 8 or 32 KiB were no better.

// The scale spreading indexes of dotQ8VNNI: lanes 0-7 take scale 0, lanes 8-15
// scale 1 (and 2, 3 for the second block pair).
DATA rowsQ8ScaleIdx<>+0(SB)/8, $0x0000000000000000
DATA rowsQ8ScaleIdx<>+8(SB)/8, $0x0000000000000000
DATA rowsQ8ScaleIdx<>+16(SB)/8, $0x0000000000000000
DATA rowsQ8ScaleIdx<>+24(SB)/8, $0x0000000000000000
DATA rowsQ8ScaleIdx<>+32(SB)/8, $0x0000000100000001
DATA rowsQ8ScaleIdx<>+40(SB)/8, $0x0000000100000001
DATA rowsQ8ScaleIdx<>+48(SB)/8, $0x0000000100000001
DATA rowsQ8ScaleIdx<>+56(SB)/8, $0x0000000100000001
DATA rowsQ8ScaleIdx<>+64(SB)/8, $0x0000000200000002
DATA rowsQ8ScaleIdx<>+72(SB)/8, $0x0000000200000002
DATA rowsQ8ScaleIdx<>+80(SB)/8, $0x0000000200000002
DATA rowsQ8ScaleIdx<>+88(SB)/8, $0x0000000200000002
DATA rowsQ8ScaleIdx<>+96(SB)/8, $0x0000000300000003
DATA rowsQ8ScaleIdx<>+104(SB)/8, $0x0000000300000003
DATA rowsQ8ScaleIdx<>+112(SB)/8, $0x0000000300000003
DATA rowsQ8ScaleIdx<>+120(SB)/8, $0x0000000300000003
GLOBL rowsQ8ScaleIdx<>(SB), RODATA|NOPTR, $128

// ROWQ8_SCALES computes, as dotQ8VNNI does, the four products d·xs of the
// blocks at wr (X14 holds the four xs) and spreads them over two block pairs.
#define ROWQ8_SCALES(wr, sc0, sc1) \
	VMOVD     0(wr), X8; \
	VPINSRW   $1, 34(wr), X8, X8; \
	VPINSRW   $2, 68(wr), X8, X8; \
	VPINSRW   $3, 102(wr), X8, X8; \
	VCVTPH2PS X8, X8; \
	VMULPS    X14, X8, X8; \
	VPERMPS   Z8, Z28, sc0; \
	VPERMPS   Z8, Z29, sc1

// ROWQ8_PAIR adds blocks (wr+wo) and (wr+wo+34) times the 64 activation bytes in
// xreg into acc, lane i scaled by scale[i]. The int32 lane sums are those of
// dotQ8VNNI (four products each, exact) computed another way: w XOR 0x80 is
// w+128 as an unsigned byte, so VPDPBUSD started from corr = -128·Σx gives
// Σ(w+128)·x - 128·Σx = Σw·x; no intermediate leaves int32.
#define ROWQ8_PAIR(wr, wo, xreg, corr, scale, acc) \
	VMOVDQU      (wo+2)(wr), Y9; \
	VINSERTI64X4 $1, (wo+36)(wr), Z9, Z9; \
	VPXORD       Z30, Z9, Z9; \
	VMOVDQA64    corr, Z12; \
	VPDPBUSD     xreg, Z9, Z12; \
	VCVTDQ2PS    Z12, Z12; \
	VFMADD231PS  Z12, scale, acc

// ROWQ8_AVX2 is the one-block step of dotQ8AVX2 (Q8_AVX2) for the block at
// (wo)(wr), with the activation block in Y13 and its scale in X14; Y15 holds
// int16 ones. dotQ8VNNI's tail and both rows of dotQ8x2AVX2 use it.
#define ROWQ8_AVX2(wo, wr, acc) \
	VMOVDQU      (wo+2)(wr), Y8; \
	VPABSB       Y8, Y9; \
	VPSIGNB      Y8, Y13, Y10; \
	VPMADDUBSW   Y10, Y9, Y9; \
	VPMADDWD     Y15, Y9, Y9; \
	VCVTDQ2PS    Y9, Y9; \
	VCVTPH2PS    (wo)(wr), X11; \
	VMULSS       X14, X11, X11; \
	VBROADCASTSS X11, Y11; \
	VFMADD231PS  Y9, Y11, acc

// func dotQ8x4VNNI(w *byte, stride int, xq *int8, xs *float32, nb int, out *[4]float32)
// Rows at w, w+stride, w+2·stride, w+3·stride (SI, R8, R9, R10); row i keeps
// dotQ8VNNI's two accumulators in Z(2i), Z(2i+1). Per four blocks the 128
// activation bytes, their four scales and their corrections are loaded or
// computed once for the four rows. R12 is the prefetch pointer: 544 bytes (four
// rows of four blocks) per iteration.
TEXT ·dotQ8x4VNNI(SB), NOSPLIT, $0-48
	MOVQ      w+0(FP), SI
	MOVQ      stride+8(FP), BX
	MOVQ      xq+16(FP), DI
	MOVQ      xs+24(FP), DX
	MOVQ      nb+32(FP), CX
	MOVQ      out+40(FP), AX
	LEAQ      (SI)(BX*1), R8
	LEAQ      (SI)(BX*2), R9
	LEAQ      (R8)(BX*2), R10
	LEAQ      16384(SI), R12
	VPXORD    Z31, Z31, Z31
	VPXORD    Z0, Z0, Z0
	VPXORD    Z1, Z1, Z1
	VPXORD    Z2, Z2, Z2
	VPXORD    Z3, Z3, Z3
	VPXORD    Z4, Z4, Z4
	VPXORD    Z5, Z5, Z5
	VPXORD    Z6, Z6, Z6
	VPXORD    Z7, Z7, Z7
	VMOVDQU64 rowsQ8ScaleIdx<>+0(SB), Z28
	VMOVDQU64 rowsQ8ScaleIdx<>+64(SB), Z29
	MOVL      $0x80808080, R11
	VPBROADCASTD R11, Z30
	CMPQ      CX, $4
	JLT       rq8tail

rq8loop4:
	PREFETCHT0 0(R12)
	PREFETCHT0 64(R12)
	PREFETCHT0 128(R12)
	PREFETCHT0 192(R12)
	PREFETCHT0 256(R12)
	PREFETCHT0 320(R12)
	PREFETCHT0 384(R12)
	PREFETCHT0 448(R12)
	PREFETCHT0 512(R12)
	VMOVDQU64 0(DI), Z16
	VMOVDQU64 64(DI), Z17
	VMOVUPS   0(DX), X14
	VPXORD    Z18, Z18, Z18
	VPXORD    Z19, Z19, Z19
	VPDPBUSD  Z16, Z30, Z18 // 128·Σx over each lane's four bytes
	VPDPBUSD  Z17, Z30, Z19
	VPSUBD    Z18, Z31, Z18
	VPSUBD    Z19, Z31, Z19
	ROWQ8_SCALES(SI, Z20, Z21)
	ROWQ8_PAIR(SI, 0, Z16, Z18, Z20, Z0)
	ROWQ8_PAIR(SI, 68, Z17, Z19, Z21, Z1)
	ROWQ8_SCALES(R8, Z22, Z23)
	ROWQ8_PAIR(R8, 0, Z16, Z18, Z22, Z2)
	ROWQ8_PAIR(R8, 68, Z17, Z19, Z23, Z3)
	ROWQ8_SCALES(R9, Z24, Z25)
	ROWQ8_PAIR(R9, 0, Z16, Z18, Z24, Z4)
	ROWQ8_PAIR(R9, 68, Z17, Z19, Z25, Z5)
	ROWQ8_SCALES(R10, Z26, Z27)
	ROWQ8_PAIR(R10, 0, Z16, Z18, Z26, Z6)
	ROWQ8_PAIR(R10, 68, Z17, Z19, Z27, Z7)
	ADDQ      $136, SI
	ADDQ      $136, R8
	ADDQ      $136, R9
	ADDQ      $136, R10
	ADDQ      $544, R12
	ADDQ      $128, DI
	ADDQ      $16, DX
	SUBQ      $4, CX
	CMPQ      CX, $4
	JGE       rq8loop4

rq8tail:
	VADDPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VADDPS        Z3, Z2, Z2
	VEXTRACTF64X4 $1, Z2, Y3
	VADDPS        Y3, Y2, Y2
	VADDPS        Z5, Z4, Z4
	VEXTRACTF64X4 $1, Z4, Y5
	VADDPS        Y5, Y4, Y4
	VADDPS        Z7, Z6, Z6
	VEXTRACTF64X4 $1, Z6, Y7
	VADDPS        Y7, Y6, Y6
	TESTQ         CX, CX
	JZ            rq8done
	VPCMPEQW      Y15, Y15, Y15
	VPSRLW        $15, Y15, Y15

rq8loop1:
	VMOVDQU (DI), Y13
	VMOVSS  (DX), X14
	ROWQ8_AVX2(0, SI, Y0)
	ROWQ8_AVX2(0, R8, Y2)
	ROWQ8_AVX2(0, R9, Y4)
	ROWQ8_AVX2(0, R10, Y6)
	ADDQ    $34, SI
	ADDQ    $34, R8
	ADDQ    $34, R9
	ADDQ    $34, R10
	ADDQ    $32, DI
	ADDQ    $4, DX
	DECQ    CX
	JNZ     rq8loop1

rq8done:
	// dotQ8VNNI's reduction per row; the horizontal adds pair the same lanes
	// as its VHADDPS X0, X0, X0 twice and leave [row0, row1, row2, row3].
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VEXTRACTF128 $1, Y2, X3
	VADDPS       X3, X2, X2
	VEXTRACTF128 $1, Y4, X5
	VADDPS       X5, X4, X4
	VEXTRACTF128 $1, Y6, X7
	VADDPS       X7, X6, X6
	VHADDPS      X2, X0, X0
	VHADDPS      X6, X4, X4
	VHADDPS      X4, X0, X0
	VMOVUPS      X0, (AX)
	VZEROUPPER
	RET

// ROWF16_64 adds 64 products of the row at wr with x (Z16-Z19) into the row's
// four accumulators, as dotF16AVX512's main loop does.
#define ROWF16_64(wr, a0, a1, a2, a3) \
	VCVTPH2PS   0(wr), Z20; \
	VCVTPH2PS   32(wr), Z21; \
	VCVTPH2PS   64(wr), Z22; \
	VCVTPH2PS   96(wr), Z23; \
	VFMADD231PS Z16, Z20, a0; \
	VFMADD231PS Z17, Z21, a1; \
	VFMADD231PS Z18, Z22, a2; \
	VFMADD231PS Z19, Z23, a3

// ROWF16_REDUCE folds a row's four accumulators to 4 lanes as dotF16AVX512 does:
// (a0+a1)+(a2+a3), then upper 256 bits onto lower, then upper 128 onto lower.
#define ROWF16_REDUCE(z0, z1, z2, z3, y0, y1, x0, x1) \
	VADDPS        z1, z0, z0; \
	VADDPS        z3, z2, z2; \
	VADDPS        z2, z0, z0; \
	VEXTRACTF64X4 $1, z0, y1; \
	VADDPS        y1, y0, y0; \
	VEXTRACTF128  $1, y0, x1; \
	VADDPS        x1, x0, x0

// func dotF16x4AVX512(w *uint16, stride int, x *float32, n int, out *[4]float32)
// Rows at w + i·stride elements (SI, R8, R9, R10); row i keeps dotF16AVX512's
// four accumulators in Z(4i)..Z(4i+3). x is loaded once for the four rows. R12
// is the prefetch pointer: 512 bytes (four rows of 64 values) per iteration.
TEXT ·dotF16x4AVX512(SB), NOSPLIT, $0-40
	MOVQ   w+0(FP), SI
	MOVQ   stride+8(FP), BX
	SHLQ   $1, BX
	MOVQ   x+16(FP), DI
	MOVQ   n+24(FP), CX
	MOVQ   out+32(FP), AX
	LEAQ   (SI)(BX*1), R8
	LEAQ   (SI)(BX*2), R9
	LEAQ   (R8)(BX*2), R10
	LEAQ   8192(SI), R12
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	CMPQ   CX, $64
	JLT    rf16tail

rf16loop64:
	PREFETCHT0 0(R12)
	PREFETCHT0 64(R12)
	PREFETCHT0 128(R12)
	PREFETCHT0 192(R12)
	PREFETCHT0 256(R12)
	PREFETCHT0 320(R12)
	PREFETCHT0 384(R12)
	PREFETCHT0 448(R12)
	VMOVUPS 0(DI), Z16
	VMOVUPS 64(DI), Z17
	VMOVUPS 128(DI), Z18
	VMOVUPS 192(DI), Z19
	ROWF16_64(SI, Z0, Z1, Z2, Z3)
	ROWF16_64(R8, Z4, Z5, Z6, Z7)
	ROWF16_64(R9, Z8, Z9, Z10, Z11)
	ROWF16_64(R10, Z12, Z13, Z14, Z15)
	ADDQ    $128, SI
	ADDQ    $128, R8
	ADDQ    $128, R9
	ADDQ    $128, R10
	ADDQ    $512, R12
	ADDQ    $256, DI
	SUBQ    $64, CX
	CMPQ    CX, $64
	JGE     rf16loop64

rf16tail:
	TESTQ CX, CX
	JZ    rf16done

rf16loop16:
	VMOVUPS     0(DI), Z16
	VCVTPH2PS   0(SI), Z20
	VCVTPH2PS   0(R8), Z21
	VCVTPH2PS   0(R9), Z22
	VCVTPH2PS   0(R10), Z23
	VFMADD231PS Z16, Z20, Z0
	VFMADD231PS Z16, Z21, Z4
	VFMADD231PS Z16, Z22, Z8
	VFMADD231PS Z16, Z23, Z12
	ADDQ        $32, SI
	ADDQ        $32, R8
	ADDQ        $32, R9
	ADDQ        $32, R10
	ADDQ        $64, DI
	SUBQ        $16, CX
	JNZ         rf16loop16

rf16done:
	ROWF16_REDUCE(Z0, Z1, Z2, Z3, Y0, Y1, X0, X1)
	ROWF16_REDUCE(Z4, Z5, Z6, Z7, Y4, Y5, X4, X5)
	ROWF16_REDUCE(Z8, Z9, Z10, Z11, Y8, Y9, X8, X9)
	ROWF16_REDUCE(Z12, Z13, Z14, Z15, Y12, Y13, X12, X13)
	VHADDPS X4, X0, X0
	VHADDPS X12, X8, X8
	VHADDPS X8, X0, X0
	VMOVUPS X0, (AX)
	VZEROUPPER
	RET

// ROWQ8X2_AVX2 is dotQ8AVX2's step for block (wo) of the rows at SI and R8, which
// share the activation block and its scale, loaded once into Y13 and X14.
#define ROWQ8X2_AVX2(wo, xo, so, acc0, acc1) \
	VMOVDQU    (xo)(DI), Y13; \
	VMOVSS     (so)(DX), X14; \
	ROWQ8_AVX2(wo, SI, acc0); \
	ROWQ8_AVX2(wo, R8, acc1)

// ROWQ8_AVX2_REDUCE is dotQ8AVX2's final sum of its four accumulators a..d.
#define ROWQ8_AVX2_REDUCE(a, b, c, d, xa, xb) \
	VADDPS       b, a, a; \
	VADDPS       d, c, c; \
	VADDPS       c, a, a; \
	VEXTRACTF128 $1, a, xb; \
	VADDPS       xb, xa, xa; \
	VHADDPS      xa, xa, xa; \
	VHADDPS      xa, xa, xa

// func dotQ8x2AVX2(w *byte, stride int, xq *int8, xs *float32, nb int, out *[2]float32)
// Rows at w and w+stride (SI, R8), each with dotQ8AVX2's four accumulators:
// Y0-Y3 and Y4-Y7. Four blocks per iteration, then one at a time into the first.
// R12 prefetches 16 KiB ahead, 272 bytes (two rows of four blocks) per iteration.
TEXT ·dotQ8x2AVX2(SB), NOSPLIT, $0-48
	MOVQ     w+0(FP), SI
	MOVQ     stride+8(FP), BX
	MOVQ     xq+16(FP), DI
	MOVQ     xs+24(FP), DX
	MOVQ     nb+32(FP), CX
	MOVQ     out+40(FP), AX
	LEAQ     (SI)(BX*1), R8
	LEAQ     16384(SI), R12
	VPCMPEQW Y15, Y15, Y15
	VPSRLW   $15, Y15, Y15
	VXORPS   Y0, Y0, Y0
	VXORPS   Y1, Y1, Y1
	VXORPS   Y2, Y2, Y2
	VXORPS   Y3, Y3, Y3
	VXORPS   Y4, Y4, Y4
	VXORPS   Y5, Y5, Y5
	VXORPS   Y6, Y6, Y6
	VXORPS   Y7, Y7, Y7
	CMPQ     CX, $4
	JLT      rq8x2tail

rq8x2loop4:
	PREFETCHT0 0(R12)
	PREFETCHT0 64(R12)
	PREFETCHT0 128(R12)
	PREFETCHT0 192(R12)
	PREFETCHT0 256(R12)
	ROWQ8X2_AVX2(0, 0, 0, Y0, Y4)
	ROWQ8X2_AVX2(34, 32, 4, Y1, Y5)
	ROWQ8X2_AVX2(68, 64, 8, Y2, Y6)
	ROWQ8X2_AVX2(102, 96, 12, Y3, Y7)
	ADDQ $136, SI
	ADDQ $136, R8
	ADDQ $272, R12
	ADDQ $128, DI
	ADDQ $16, DX
	SUBQ $4, CX
	CMPQ CX, $4
	JGE  rq8x2loop4

rq8x2tail:
	TESTQ CX, CX
	JZ    rq8x2done

rq8x2loop1:
	ROWQ8X2_AVX2(0, 0, 0, Y0, Y4)
	ADDQ $34, SI
	ADDQ $34, R8
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JNZ  rq8x2loop1

rq8x2done:
	ROWQ8_AVX2_REDUCE(Y0, Y1, Y2, Y3, X0, X1)
	ROWQ8_AVX2_REDUCE(Y4, Y5, Y6, Y7, X4, X5)
	MOVSS X0, 0(AX)
	MOVSS X4, 4(AX)
	VZEROUPPER
	RET
