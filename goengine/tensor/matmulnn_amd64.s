//go:build !purego

#include "textflag.h"

// AVX-512 registers: accumulator Z(4t+v) holds columns 16v..16v+15 of token t,
// Z16-Z19 (Z24-Z27) one row of W, Z20-Z23 the broadcast activations.

// W row at R12 (plus DX with the second form) into w0..w3; lanes past n read as
// zero and never fault.
#define NN512_LOADW(w0, w1, w2, w3) \
	VMOVUPS.Z (R12), K1, w0; \
	VMOVUPS.Z 64(R12), K2, w1; \
	VMOVUPS.Z 128(R12), K3, w2; \
	VMOVUPS.Z 192(R12), K4, w3

#define NN512_LOADW2(w0, w1, w2, w3) \
	VMOVUPS.Z (R12)(DX*1), K1, w0; \
	VMOVUPS.Z 64(R12)(DX*1), K2, w1; \
	VMOVUPS.Z 128(R12)(DX*1), K3, w2; \
	VMOVUPS.Z 192(R12)(DX*1), K4, w3

// a0..a3 += b · (w0..w3)
#define NN512_FMA(b, w0, w1, w2, w3, a0, a1, a2, a3) \
	VFMADD231PS w0, b, a0; \
	VFMADD231PS w1, b, a1; \
	VFMADD231PS w2, b, a2; \
	VFMADD231PS w3, b, a3

// Store one token's 64 columns at DI (masked past n) and step DI to the next row.
#define NN512_STORE(a0, a1, a2, a3) \
	VMOVUPS a0, K1, (DI); \
	VMOVUPS a1, K2, 64(DI); \
	VMOVUPS a2, K3, 128(DI); \
	VMOVUPS a3, K4, 192(DI); \
	ADDQ    SI, DI

// func matMulNNKernelAVX512(out *float32, ldo int, x *float32, ldx int, w *float32, ldw int, K, nt, n int)
// Per k: 4 W loads and nt broadcasts for 4·nt FMAs, so for nt ≥ 2 the two FMA
// pipes, not the loads, set the pace. With nt = 1, 4 accumulators cannot cover
// the FMA latency: even and odd k go to separate sets.
TEXT ·matMulNNKernelAVX512(SB), NOSPLIT, $0-72
	// K1..K4: lanes j < n of the four 16-column vectors.
	MOVQ n+64(FP), CX
	MOVQ $-1, SI
	CMPQ CX, $64
	JAE  masks512
	MOVQ $1, SI
	SHLQ CX, SI
	DECQ SI

masks512:
	KMOVW SI, K1
	SHRQ  $16, SI
	KMOVW SI, K2
	SHRQ  $16, SI
	KMOVW SI, K3
	SHRQ  $16, SI
	KMOVW SI, K4

	MOVQ x+16(FP), R8
	MOVQ ldx+24(FP), AX
	SHLQ $2, AX
	LEAQ (R8)(AX*1), R9
	LEAQ (R9)(AX*1), R10
	LEAQ (R10)(AX*1), R11
	MOVQ w+32(FP), R12
	MOVQ ldw+40(FP), DX
	SHLQ $2, DX
	MOVQ K+48(FP), CX
	MOVQ out+0(FP), DI
	MOVQ ldo+8(FP), SI
	SHLQ $2, SI
	XORQ AX, AX // byte offset of k in the x rows
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	MOVQ nt+56(FP), BX
	CMPQ BX, $2
	JB   nt1_512
	JEQ  nt2_512
	CMPQ BX, $3
	JEQ  nt3_512

	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

loop4_512:
	NN512_LOADW(Z16, Z17, Z18, Z19)
	VBROADCASTSS (R8)(AX*1), Z20
	VBROADCASTSS (R9)(AX*1), Z21
	VBROADCASTSS (R10)(AX*1), Z22
	VBROADCASTSS (R11)(AX*1), Z23
	NN512_FMA(Z20, Z16, Z17, Z18, Z19, Z0, Z1, Z2, Z3)
	NN512_FMA(Z21, Z16, Z17, Z18, Z19, Z4, Z5, Z6, Z7)
	NN512_FMA(Z22, Z16, Z17, Z18, Z19, Z8, Z9, Z10, Z11)
	NN512_FMA(Z23, Z16, Z17, Z18, Z19, Z12, Z13, Z14, Z15)
	ADDQ $4, AX
	ADDQ DX, R12
	DECQ CX
	JNZ  loop4_512
	NN512_STORE(Z0, Z1, Z2, Z3)
	NN512_STORE(Z4, Z5, Z6, Z7)
	NN512_STORE(Z8, Z9, Z10, Z11)
	NN512_STORE(Z12, Z13, Z14, Z15)
	VZEROUPPER
	RET

nt3_512:
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11

loop3_512:
	NN512_LOADW(Z16, Z17, Z18, Z19)
	VBROADCASTSS (R8)(AX*1), Z20
	VBROADCASTSS (R9)(AX*1), Z21
	VBROADCASTSS (R10)(AX*1), Z22
	NN512_FMA(Z20, Z16, Z17, Z18, Z19, Z0, Z1, Z2, Z3)
	NN512_FMA(Z21, Z16, Z17, Z18, Z19, Z4, Z5, Z6, Z7)
	NN512_FMA(Z22, Z16, Z17, Z18, Z19, Z8, Z9, Z10, Z11)
	ADDQ $4, AX
	ADDQ DX, R12
	DECQ CX
	JNZ  loop3_512
	NN512_STORE(Z0, Z1, Z2, Z3)
	NN512_STORE(Z4, Z5, Z6, Z7)
	NN512_STORE(Z8, Z9, Z10, Z11)
	VZEROUPPER
	RET

nt2_512:
	NN512_LOADW(Z16, Z17, Z18, Z19)
	VBROADCASTSS (R8)(AX*1), Z20
	VBROADCASTSS (R9)(AX*1), Z21
	NN512_FMA(Z20, Z16, Z17, Z18, Z19, Z0, Z1, Z2, Z3)
	NN512_FMA(Z21, Z16, Z17, Z18, Z19, Z4, Z5, Z6, Z7)
	ADDQ $4, AX
	ADDQ DX, R12
	DECQ CX
	JNZ  nt2_512
	NN512_STORE(Z0, Z1, Z2, Z3)
	NN512_STORE(Z4, Z5, Z6, Z7)
	VZEROUPPER
	RET

nt1_512:
	// Pairs of k: even k into Z0-Z3, odd k into Z4-Z7.
	MOVQ CX, BX
	SHRQ $1, CX
	JZ   odd1_512

loop1_512:
	NN512_LOADW(Z16, Z17, Z18, Z19)
	NN512_LOADW2(Z24, Z25, Z26, Z27)
	VBROADCASTSS (R8)(AX*1), Z20
	VBROADCASTSS 4(R8)(AX*1), Z21
	NN512_FMA(Z20, Z16, Z17, Z18, Z19, Z0, Z1, Z2, Z3)
	NN512_FMA(Z21, Z24, Z25, Z26, Z27, Z4, Z5, Z6, Z7)
	ADDQ $8, AX
	LEAQ (R12)(DX*2), R12
	DECQ CX
	JNZ  loop1_512

odd1_512:
	TESTQ $1, BX
	JZ    sum1_512
	NN512_LOADW(Z16, Z17, Z18, Z19)
	VBROADCASTSS (R8)(AX*1), Z20
	NN512_FMA(Z20, Z16, Z17, Z18, Z19, Z0, Z1, Z2, Z3)

sum1_512:
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	VADDPS Z6, Z2, Z2
	VADDPS Z7, Z3, Z3
	NN512_STORE(Z0, Z1, Z2, Z3)
	VZEROUPPER
	RET

// Lanes 0..7 of AVX2 vector v's mask start at matMulNNMask<>+4*(32-n)+32v:
// ones for column 8v+i < n.
DATA matMulNNMask<>+0(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+8(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+16(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+24(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+32(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+40(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+48(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+56(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+64(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+72(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+80(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+88(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+96(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+104(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+112(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+120(SB)/8, $0xffffffffffffffff
DATA matMulNNMask<>+128(SB)/8, $0
DATA matMulNNMask<>+136(SB)/8, $0
DATA matMulNNMask<>+144(SB)/8, $0
DATA matMulNNMask<>+152(SB)/8, $0
DATA matMulNNMask<>+160(SB)/8, $0
DATA matMulNNMask<>+168(SB)/8, $0
DATA matMulNNMask<>+176(SB)/8, $0
DATA matMulNNMask<>+184(SB)/8, $0
DATA matMulNNMask<>+192(SB)/8, $0
DATA matMulNNMask<>+200(SB)/8, $0
DATA matMulNNMask<>+208(SB)/8, $0
DATA matMulNNMask<>+216(SB)/8, $0
DATA matMulNNMask<>+224(SB)/8, $0
DATA matMulNNMask<>+232(SB)/8, $0
DATA matMulNNMask<>+240(SB)/8, $0
DATA matMulNNMask<>+248(SB)/8, $0
GLOBL matMulNNMask<>(SB), RODATA|NOPTR, $256

// AVX2 registers: accumulator Y(4t+v) holds columns 8v..8v+7 of token t,
// Y12-Y14 the broadcast activations, Y15 one W vector at a time (all 16 taken).

// W vector at off(R12), plain or masked (mask row at off(BX); VMASKMOVPS loads
// zeros past n and never fault there).
#define NN2_W(off) VMOVUPS off(R12), Y15
#define NN2_MW(off) VMOVUPS off(BX), Y15; VMASKMOVPS off(R12), Y15, Y15
#define NN2_W2(off) VMOVUPS off(R12)(DX*1), Y15
#define NN2_MW2(off) VMOVUPS off(BX), Y15; VMASKMOVPS off(R12)(DX*1), Y15, Y15

#define NN2_FMA3(a0, a1, a2) \
	VFMADD231PS Y15, Y12, a0; \
	VFMADD231PS Y15, Y13, a1; \
	VFMADD231PS Y15, Y14, a2

#define NN2_FMA2(a0, a1) \
	VFMADD231PS Y15, Y12, a0; \
	VFMADD231PS Y15, Y13, a1

#define NN2_STORE(a0, a1, a2, a3) \
	VMOVUPS a0, (DI); \
	VMOVUPS a1, 32(DI); \
	VMOVUPS a2, 64(DI); \
	VMOVUPS a3, 96(DI); \
	ADDQ    SI, DI

// func matMulNNKernelAVX2(out *float32, ldo int, x *float32, ldx int, w *float32, ldw int, K, nt, n int)
// 3 tokens x 32 columns: 12 accumulators, per k 4 W loads and 3 broadcasts for
// 12 FMAs. Tiles with n < 32 take the masked loops.
TEXT ·matMulNNKernelAVX2(SB), NOSPLIT, $0-72
	MOVQ x+16(FP), R8
	MOVQ ldx+24(FP), AX
	SHLQ $2, AX
	LEAQ (R8)(AX*1), R9
	LEAQ (R9)(AX*1), R10
	MOVQ w+32(FP), R12
	MOVQ ldw+40(FP), DX
	SHLQ $2, DX
	MOVQ K+48(FP), CX
	MOVQ out+0(FP), DI
	MOVQ ldo+8(FP), SI
	SHLQ $2, SI
	MOVQ n+64(FP), R11
	LEAQ matMulNNMask<>+128(SB), BX // 32 ones, then 32 zeros
	SHLQ $2, R11
	SUBQ R11, BX // mask rows for n < 32
	XORQ AX, AX  // byte offset of k in the x rows
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ nt+56(FP), R13
	CMPQ R11, $128
	JB   masked2
	CMPQ R13, $2
	JB   nt1_2
	JEQ  nt2_2

	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

loop3_2:
	VBROADCASTSS (R8)(AX*1), Y12
	VBROADCASTSS (R9)(AX*1), Y13
	VBROADCASTSS (R10)(AX*1), Y14
	NN2_W(0)
	NN2_FMA3(Y0, Y4, Y8)
	NN2_W(32)
	NN2_FMA3(Y1, Y5, Y9)
	NN2_W(64)
	NN2_FMA3(Y2, Y6, Y10)
	NN2_W(96)
	NN2_FMA3(Y3, Y7, Y11)
	ADDQ $4, AX
	ADDQ DX, R12
	DECQ CX
	JNZ  loop3_2
	JMP  store3_2

nt2_2:
	VBROADCASTSS (R8)(AX*1), Y12
	VBROADCASTSS (R9)(AX*1), Y13
	NN2_W(0)
	NN2_FMA2(Y0, Y4)
	NN2_W(32)
	NN2_FMA2(Y1, Y5)
	NN2_W(64)
	NN2_FMA2(Y2, Y6)
	NN2_W(96)
	NN2_FMA2(Y3, Y7)
	ADDQ $4, AX
	ADDQ DX, R12
	DECQ CX
	JNZ  nt2_2
	JMP  store2_2

nt1_2:
	// Pairs of k: even k into Y0-Y3, odd k into Y4-Y7 (4 chains alone cannot
	// cover the FMA latency).
	MOVQ CX, R13
	SHRQ $1, CX
	JZ   odd1_2

loop1_2:
	VBROADCASTSS (R8)(AX*1), Y12
	VBROADCASTSS 4(R8)(AX*1), Y13
	NN2_W(0)
	VFMADD231PS Y15, Y12, Y0
	NN2_W2(0)
	VFMADD231PS Y15, Y13, Y4
	NN2_W(32)
	VFMADD231PS Y15, Y12, Y1
	NN2_W2(32)
	VFMADD231PS Y15, Y13, Y5
	NN2_W(64)
	VFMADD231PS Y15, Y12, Y2
	NN2_W2(64)
	VFMADD231PS Y15, Y13, Y6
	NN2_W(96)
	VFMADD231PS Y15, Y12, Y3
	NN2_W2(96)
	VFMADD231PS Y15, Y13, Y7
	ADDQ $8, AX
	LEAQ (R12)(DX*2), R12
	DECQ CX
	JNZ  loop1_2

odd1_2:
	TESTQ $1, R13
	JZ    store1_2
	VBROADCASTSS (R8)(AX*1), Y12
	NN2_W(0)
	VFMADD231PS Y15, Y12, Y0
	NN2_W(32)
	VFMADD231PS Y15, Y12, Y1
	NN2_W(64)
	VFMADD231PS Y15, Y12, Y2
	NN2_W(96)
	VFMADD231PS Y15, Y12, Y3
	JMP store1_2

masked2:
	CMPQ R13, $2
	JB   mnt1_2
	JEQ  mnt2_2

	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

mloop3_2:
	VBROADCASTSS (R8)(AX*1), Y12
	VBROADCASTSS (R9)(AX*1), Y13
	VBROADCASTSS (R10)(AX*1), Y14
	NN2_MW(0)
	NN2_FMA3(Y0, Y4, Y8)
	NN2_MW(32)
	NN2_FMA3(Y1, Y5, Y9)
	NN2_MW(64)
	NN2_FMA3(Y2, Y6, Y10)
	NN2_MW(96)
	NN2_FMA3(Y3, Y7, Y11)
	ADDQ $4, AX
	ADDQ DX, R12
	DECQ CX
	JNZ  mloop3_2

store3_2:
	NN2_STORE(Y0, Y1, Y2, Y3)
	NN2_STORE(Y4, Y5, Y6, Y7)
	NN2_STORE(Y8, Y9, Y10, Y11)
	VZEROUPPER
	RET

mnt2_2:
	VBROADCASTSS (R8)(AX*1), Y12
	VBROADCASTSS (R9)(AX*1), Y13
	NN2_MW(0)
	NN2_FMA2(Y0, Y4)
	NN2_MW(32)
	NN2_FMA2(Y1, Y5)
	NN2_MW(64)
	NN2_FMA2(Y2, Y6)
	NN2_MW(96)
	NN2_FMA2(Y3, Y7)
	ADDQ $4, AX
	ADDQ DX, R12
	DECQ CX
	JNZ  mnt2_2

store2_2:
	NN2_STORE(Y0, Y1, Y2, Y3)
	NN2_STORE(Y4, Y5, Y6, Y7)
	VZEROUPPER
	RET

mnt1_2:
	MOVQ CX, R13
	SHRQ $1, CX
	JZ   modd1_2

mloop1_2:
	VBROADCASTSS (R8)(AX*1), Y12
	VBROADCASTSS 4(R8)(AX*1), Y13
	NN2_MW(0)
	VFMADD231PS Y15, Y12, Y0
	NN2_MW2(0)
	VFMADD231PS Y15, Y13, Y4
	NN2_MW(32)
	VFMADD231PS Y15, Y12, Y1
	NN2_MW2(32)
	VFMADD231PS Y15, Y13, Y5
	NN2_MW(64)
	VFMADD231PS Y15, Y12, Y2
	NN2_MW2(64)
	VFMADD231PS Y15, Y13, Y6
	NN2_MW(96)
	VFMADD231PS Y15, Y12, Y3
	NN2_MW2(96)
	VFMADD231PS Y15, Y13, Y7
	ADDQ $8, AX
	LEAQ (R12)(DX*2), R12
	DECQ CX
	JNZ  mloop1_2

modd1_2:
	TESTQ $1, R13
	JZ    store1_2
	VBROADCASTSS (R8)(AX*1), Y12
	NN2_MW(0)
	VFMADD231PS Y15, Y12, Y0
	NN2_MW(32)
	VFMADD231PS Y15, Y12, Y1
	NN2_MW(64)
	VFMADD231PS Y15, Y12, Y2
	NN2_MW(96)
	VFMADD231PS Y15, Y12, Y3

store1_2:
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	NN2_STORE(Y0, Y1, Y2, Y3)
	VZEROUPPER
	RET
