//go:build !purego

#include "textflag.h"

// Lanes 0..n-1 of an 8-lane mask start at matMulMask<>+4*(8-n): the AVX2 tail.
DATA matMulMask<>+0(SB)/8, $0xffffffffffffffff
DATA matMulMask<>+8(SB)/8, $0xffffffffffffffff
DATA matMulMask<>+16(SB)/8, $0xffffffffffffffff
DATA matMulMask<>+24(SB)/8, $0xffffffffffffffff
DATA matMulMask<>+32(SB)/8, $0
DATA matMulMask<>+40(SB)/8, $0
DATA matMulMask<>+48(SB)/8, $0
DATA matMulMask<>+56(SB)/8, $0
GLOBL matMulMask<>(SB), RODATA|NOPTR, $64

// func matMulKernelAVX512(out *float32, ldo int, w0, w1, w2, w3, x0, x1, x2, x3 *float32, cols int, accumulate bool)
// Accumulator Z(4r+t) holds 16 partial sums of w_r·x_t. Each 16-float step
// loads 4+4 vectors for 16 FMAs: loads stay under half of the two load ports
// while the two FMA pipes are full, and 16 independent chains hide FMA latency.
TEXT ·matMulKernelAVX512(SB), NOSPLIT, $0-89
	MOVQ w0+16(FP), R8
	MOVQ w1+24(FP), R9
	MOVQ w2+32(FP), R10
	MOVQ w3+40(FP), R11
	MOVQ x0+48(FP), R12
	MOVQ x1+56(FP), R13
	MOVQ x2+64(FP), R14
	MOVQ x3+72(FP), BX
	MOVQ cols+80(FP), DX
	MOVQ DX, CX
	SHLQ $2, CX
	ANDQ $~63, CX // bytes in whole 16-float steps
	ANDQ $15, DX  // tail floats
	XORQ AX, AX
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
	TESTQ CX, CX
	JZ    tail512

loop512:
	VMOVUPS (R8)(AX*1), Z16
	VMOVUPS (R9)(AX*1), Z17
	VMOVUPS (R10)(AX*1), Z18
	VMOVUPS (R11)(AX*1), Z19
	VMOVUPS (R12)(AX*1), Z20
	VMOVUPS (R13)(AX*1), Z21
	VMOVUPS (R14)(AX*1), Z22
	VMOVUPS (BX)(AX*1), Z23
	VFMADD231PS Z20, Z16, Z0
	VFMADD231PS Z21, Z16, Z1
	VFMADD231PS Z22, Z16, Z2
	VFMADD231PS Z23, Z16, Z3
	VFMADD231PS Z20, Z17, Z4
	VFMADD231PS Z21, Z17, Z5
	VFMADD231PS Z22, Z17, Z6
	VFMADD231PS Z23, Z17, Z7
	VFMADD231PS Z20, Z18, Z8
	VFMADD231PS Z21, Z18, Z9
	VFMADD231PS Z22, Z18, Z10
	VFMADD231PS Z23, Z18, Z11
	VFMADD231PS Z20, Z19, Z12
	VFMADD231PS Z21, Z19, Z13
	VFMADD231PS Z22, Z19, Z14
	VFMADD231PS Z23, Z19, Z15
	ADDQ $64, AX
	CMPQ AX, CX
	JB   loop512

tail512:
	// Masked loads read zeros past cols and never fault there.
	TESTQ DX, DX
	JZ    reduce512
	MOVQ  DX, CX
	MOVL  $1, SI
	SHLL  CX, SI
	DECL  SI
	KMOVW SI, K1
	VMOVUPS.Z (R8)(AX*1), K1, Z16
	VMOVUPS.Z (R9)(AX*1), K1, Z17
	VMOVUPS.Z (R10)(AX*1), K1, Z18
	VMOVUPS.Z (R11)(AX*1), K1, Z19
	VMOVUPS.Z (R12)(AX*1), K1, Z20
	VMOVUPS.Z (R13)(AX*1), K1, Z21
	VMOVUPS.Z (R14)(AX*1), K1, Z22
	VMOVUPS.Z (BX)(AX*1), K1, Z23
	VFMADD231PS Z20, Z16, Z0
	VFMADD231PS Z21, Z16, Z1
	VFMADD231PS Z22, Z16, Z2
	VFMADD231PS Z23, Z16, Z3
	VFMADD231PS Z20, Z17, Z4
	VFMADD231PS Z21, Z17, Z5
	VFMADD231PS Z22, Z17, Z6
	VFMADD231PS Z23, Z17, Z7
	VFMADD231PS Z20, Z18, Z8
	VFMADD231PS Z21, Z18, Z9
	VFMADD231PS Z22, Z18, Z10
	VFMADD231PS Z23, Z18, Z11
	VFMADD231PS Z20, Z19, Z12
	VFMADD231PS Z21, Z19, Z13
	VFMADD231PS Z22, Z19, Z14
	VFMADD231PS Z23, Z19, Z15

reduce512:
	// Transpose-and-add 16 vectors into one whose 128-bit lane t holds rows 0-3
	// of token t: 30 shuffles and 15 adds instead of 16 separate horizontal sums.
	// Step 1, per row r: Q_r's lane t holds 4 partial sums of Z(4r+t).
	VSHUFF32X4 $0x44, Z1, Z0, Z16
	VSHUFF32X4 $0xEE, Z1, Z0, Z17
	VADDPS     Z17, Z16, Z16
	VSHUFF32X4 $0x44, Z3, Z2, Z17
	VSHUFF32X4 $0xEE, Z3, Z2, Z18
	VADDPS     Z18, Z17, Z17
	VSHUFF32X4 $0x88, Z17, Z16, Z18
	VSHUFF32X4 $0xDD, Z17, Z16, Z19
	VADDPS     Z19, Z18, Z24

	VSHUFF32X4 $0x44, Z5, Z4, Z16
	VSHUFF32X4 $0xEE, Z5, Z4, Z17
	VADDPS     Z17, Z16, Z16
	VSHUFF32X4 $0x44, Z7, Z6, Z17
	VSHUFF32X4 $0xEE, Z7, Z6, Z18
	VADDPS     Z18, Z17, Z17
	VSHUFF32X4 $0x88, Z17, Z16, Z18
	VSHUFF32X4 $0xDD, Z17, Z16, Z19
	VADDPS     Z19, Z18, Z25

	VSHUFF32X4 $0x44, Z9, Z8, Z16
	VSHUFF32X4 $0xEE, Z9, Z8, Z17
	VADDPS     Z17, Z16, Z16
	VSHUFF32X4 $0x44, Z11, Z10, Z17
	VSHUFF32X4 $0xEE, Z11, Z10, Z18
	VADDPS     Z18, Z17, Z17
	VSHUFF32X4 $0x88, Z17, Z16, Z18
	VSHUFF32X4 $0xDD, Z17, Z16, Z19
	VADDPS     Z19, Z18, Z26

	VSHUFF32X4 $0x44, Z13, Z12, Z16
	VSHUFF32X4 $0xEE, Z13, Z12, Z17
	VADDPS     Z17, Z16, Z16
	VSHUFF32X4 $0x44, Z15, Z14, Z17
	VSHUFF32X4 $0xEE, Z15, Z14, Z18
	VADDPS     Z18, Z17, Z17
	VSHUFF32X4 $0x88, Z17, Z16, Z18
	VSHUFF32X4 $0xDD, Z17, Z16, Z19
	VADDPS     Z19, Z18, Z27

	// Step 2, within each 128-bit lane: sum each Q_r's 4 partials into element r.
	VSHUFPS $0x44, Z25, Z24, Z16
	VSHUFPS $0xEE, Z25, Z24, Z17
	VADDPS  Z17, Z16, Z16
	VSHUFPS $0x44, Z27, Z26, Z17
	VSHUFPS $0xEE, Z27, Z26, Z18
	VADDPS  Z18, Z17, Z17
	VSHUFPS $0x88, Z17, Z16, Z18
	VSHUFPS $0xDD, Z17, Z16, Z19
	VADDPS  Z19, Z18, Z0

	MOVQ          out+0(FP), DI
	MOVQ          ldo+8(FP), SI
	SHLQ          $2, SI
	CMPB          accumulate+88(FP), $0
	JEQ           store512
	LEAQ          (DI)(SI*2), R8
	VMOVUPS       (DI), X1
	VINSERTF32X4  $1, (DI)(SI*1), Z1, Z1
	VINSERTF32X4  $2, (R8), Z1, Z1
	VINSERTF32X4  $3, (R8)(SI*1), Z1, Z1
	VADDPS        Z1, Z0, Z0

store512:
	VMOVUPS       X0, (DI)
	VEXTRACTF32X4 $1, Z0, (DI)(SI*1)
	VEXTRACTF32X4 $2, Z0, (DI)(SI*2)
	LEAQ          (DI)(SI*2), DI
	VEXTRACTF32X4 $3, Z0, (DI)(SI*1)
	VZEROUPPER
	RET

// func matMulKernelAVX2(out *float32, ldo int, w0, w1, w2, w3, x0, x1, x2, x3 *float32, cols int, accumulate bool)
// 4 rows x 3 tokens: 12 accumulators, 3 token vectors and one weight vector fill
// the 16 YMM registers; each 8-float step does 7 loads for 12 FMAs.
TEXT ·matMulKernelAVX2(SB), NOSPLIT, $0-89
	MOVQ w0+16(FP), R8
	MOVQ w1+24(FP), R9
	MOVQ w2+32(FP), R10
	MOVQ w3+40(FP), R11
	MOVQ x0+48(FP), R12
	MOVQ x1+56(FP), R13
	MOVQ x2+64(FP), R14
	MOVQ cols+80(FP), DX
	MOVQ DX, CX
	SHLQ $2, CX
	ANDQ $~31, CX // bytes in whole 8-float steps
	ANDQ $7, DX   // tail floats
	XORQ AX, AX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	TESTQ CX, CX
	JZ    tail2

loop2:
	VMOVUPS     (R12)(AX*1), Y12
	VMOVUPS     (R13)(AX*1), Y13
	VMOVUPS     (R14)(AX*1), Y14
	VMOVUPS     (R8)(AX*1), Y15
	VFMADD231PS Y12, Y15, Y0
	VFMADD231PS Y13, Y15, Y1
	VFMADD231PS Y14, Y15, Y2
	VMOVUPS     (R9)(AX*1), Y15
	VFMADD231PS Y12, Y15, Y3
	VFMADD231PS Y13, Y15, Y4
	VFMADD231PS Y14, Y15, Y5
	VMOVUPS     (R10)(AX*1), Y15
	VFMADD231PS Y12, Y15, Y6
	VFMADD231PS Y13, Y15, Y7
	VFMADD231PS Y14, Y15, Y8
	VMOVUPS     (R11)(AX*1), Y15
	VFMADD231PS Y12, Y15, Y9
	VFMADD231PS Y13, Y15, Y10
	VFMADD231PS Y14, Y15, Y11
	ADDQ        $32, AX
	CMPQ        AX, CX
	JB          loop2

tail2:
	// VMASKMOVPS reads zeros past cols and never faults there. With every
	// register taken, the mask is reloaded into Y15 before each weight row.
	TESTQ DX, DX
	JZ    reduce2
	LEAQ  matMulMask<>+32(SB), SI
	SHLQ  $2, DX
	SUBQ  DX, SI
	VMOVUPS     (SI), Y15
	VMASKMOVPS  (R12)(AX*1), Y15, Y12
	VMASKMOVPS  (R13)(AX*1), Y15, Y13
	VMASKMOVPS  (R14)(AX*1), Y15, Y14
	VMASKMOVPS  (R8)(AX*1), Y15, Y15
	VFMADD231PS Y12, Y15, Y0
	VFMADD231PS Y13, Y15, Y1
	VFMADD231PS Y14, Y15, Y2
	VMOVUPS     (SI), Y15
	VMASKMOVPS  (R9)(AX*1), Y15, Y15
	VFMADD231PS Y12, Y15, Y3
	VFMADD231PS Y13, Y15, Y4
	VFMADD231PS Y14, Y15, Y5
	VMOVUPS     (SI), Y15
	VMASKMOVPS  (R10)(AX*1), Y15, Y15
	VFMADD231PS Y12, Y15, Y6
	VFMADD231PS Y13, Y15, Y7
	VFMADD231PS Y14, Y15, Y8
	VMOVUPS     (SI), Y15
	VMASKMOVPS  (R11)(AX*1), Y15, Y15
	VFMADD231PS Y12, Y15, Y9
	VFMADD231PS Y13, Y15, Y10
	VFMADD231PS Y14, Y15, Y11

reduce2:
	// Per token t, three horizontal adds leave rows 0-3 in each 128-bit lane.
	// With accumulate, the old outputs are added (X14, X15: the free registers);
	// otherwise zeros are, which changes no sum.
	MOVQ   out+0(FP), DI
	MOVQ   ldo+8(FP), SI
	SHLQ   $2, SI
	VXORPS X14, X14, X14
	VXORPS X15, X15, X15
	CMPB   accumulate+88(FP), $0
	JEQ    sums01
	VMOVUPS (DI), X14
	VMOVUPS (DI)(SI*1), X15

sums01:
	VHADDPS      Y3, Y0, Y12
	VHADDPS      Y9, Y6, Y13
	VHADDPS      Y13, Y12, Y12
	VEXTRACTF128 $1, Y12, X13
	VADDPS       X13, X12, X12
	VADDPS       X14, X12, X12
	VMOVUPS      X12, (DI)
	VHADDPS      Y4, Y1, Y12
	VHADDPS      Y10, Y7, Y13
	VHADDPS      Y13, Y12, Y12
	VEXTRACTF128 $1, Y12, X13
	VADDPS       X13, X12, X12
	VADDPS       X15, X12, X12
	VMOVUPS      X12, (DI)(SI*1)
	VXORPS       X14, X14, X14
	CMPB         accumulate+88(FP), $0
	JEQ          sums2
	VMOVUPS      (DI)(SI*2), X14

sums2:
	VHADDPS      Y5, Y2, Y12
	VHADDPS      Y11, Y8, Y13
	VHADDPS      Y13, Y12, Y12
	VEXTRACTF128 $1, Y12, X13
	VADDPS       X13, X12, X12
	VADDPS       X14, X12, X12
	VMOVUPS      X12, (DI)(SI*2)
	VZEROUPPER
	RET
