//go:build !purego

#include "textflag.h"

// The float32 exp of exp.go, 16 or 8 lanes at a time, and the softmax, SwiGLU
// gate and slice exp built on it. Each constant is stored 8 times, 32 bytes,
// so the AVX2 code can use it as a memory operand; AVX-512 broadcasts lane 0.
// expLo
DATA expConsts<>+0(SB)/8, $0xc2b00000c2b00000
DATA expConsts<>+8(SB)/8, $0xc2b00000c2b00000
DATA expConsts<>+16(SB)/8, $0xc2b00000c2b00000
DATA expConsts<>+24(SB)/8, $0xc2b00000c2b00000
// expHi
DATA expConsts<>+32(SB)/8, $0x42b0c0a542b0c0a5
DATA expConsts<>+40(SB)/8, $0x42b0c0a542b0c0a5
DATA expConsts<>+48(SB)/8, $0x42b0c0a542b0c0a5
DATA expConsts<>+56(SB)/8, $0x42b0c0a542b0c0a5
// log2e
DATA expConsts<>+64(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expConsts<>+72(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expConsts<>+80(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expConsts<>+88(SB)/8, $0x3fb8aa3b3fb8aa3b
// expMagic
DATA expConsts<>+96(SB)/8, $0x4b40007f4b40007f
DATA expConsts<>+104(SB)/8, $0x4b40007f4b40007f
DATA expConsts<>+112(SB)/8, $0x4b40007f4b40007f
DATA expConsts<>+120(SB)/8, $0x4b40007f4b40007f
// -ln2Hi
DATA expConsts<>+128(SB)/8, $0xbf318000bf318000
DATA expConsts<>+136(SB)/8, $0xbf318000bf318000
DATA expConsts<>+144(SB)/8, $0xbf318000bf318000
DATA expConsts<>+152(SB)/8, $0xbf318000bf318000
// -ln2Lo
DATA expConsts<>+160(SB)/8, $0x395e8083395e8083
DATA expConsts<>+168(SB)/8, $0x395e8083395e8083
DATA expConsts<>+176(SB)/8, $0x395e8083395e8083
DATA expConsts<>+184(SB)/8, $0x395e8083395e8083
// c7
DATA expConsts<>+192(SB)/8, $0x3950696739506967
DATA expConsts<>+200(SB)/8, $0x3950696739506967
DATA expConsts<>+208(SB)/8, $0x3950696739506967
DATA expConsts<>+216(SB)/8, $0x3950696739506967
// c6
DATA expConsts<>+224(SB)/8, $0x3ab743ce3ab743ce
DATA expConsts<>+232(SB)/8, $0x3ab743ce3ab743ce
DATA expConsts<>+240(SB)/8, $0x3ab743ce3ab743ce
DATA expConsts<>+248(SB)/8, $0x3ab743ce3ab743ce
// c5
DATA expConsts<>+256(SB)/8, $0x3c0889083c088908
DATA expConsts<>+264(SB)/8, $0x3c0889083c088908
DATA expConsts<>+272(SB)/8, $0x3c0889083c088908
DATA expConsts<>+280(SB)/8, $0x3c0889083c088908
// c4
DATA expConsts<>+288(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expConsts<>+296(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expConsts<>+304(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expConsts<>+312(SB)/8, $0x3d2aa9c13d2aa9c1
// c3
DATA expConsts<>+320(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expConsts<>+328(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expConsts<>+336(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expConsts<>+344(SB)/8, $0x3e2aaaaa3e2aaaaa
// c2
DATA expConsts<>+352(SB)/8, $0x3f0000003f000000
DATA expConsts<>+360(SB)/8, $0x3f0000003f000000
DATA expConsts<>+368(SB)/8, $0x3f0000003f000000
DATA expConsts<>+376(SB)/8, $0x3f0000003f000000
// 1
DATA expConsts<>+384(SB)/8, $0x3f8000003f800000
DATA expConsts<>+392(SB)/8, $0x3f8000003f800000
DATA expConsts<>+400(SB)/8, $0x3f8000003f800000
DATA expConsts<>+408(SB)/8, $0x3f8000003f800000
// sign
DATA expConsts<>+416(SB)/8, $0x8000000080000000
DATA expConsts<>+424(SB)/8, $0x8000000080000000
DATA expConsts<>+432(SB)/8, $0x8000000080000000
DATA expConsts<>+440(SB)/8, $0x8000000080000000
// -Inf
DATA expConsts<>+448(SB)/8, $0xff800000ff800000
DATA expConsts<>+456(SB)/8, $0xff800000ff800000
DATA expConsts<>+464(SB)/8, $0xff800000ff800000
DATA expConsts<>+472(SB)/8, $0xff800000ff800000
GLOBL expConsts<>(SB), RODATA|NOPTR, $480

#define C_LO      expConsts<>+0(SB)
#define C_HI      expConsts<>+32(SB)
#define C_LOG2E   expConsts<>+64(SB)
#define C_MAGIC   expConsts<>+96(SB)
#define C_NLN2HI  expConsts<>+128(SB)
#define C_NLN2LO  expConsts<>+160(SB)
#define C_C7      expConsts<>+192(SB)
#define C_C6      expConsts<>+224(SB)
#define C_C5      expConsts<>+256(SB)
#define C_C4      expConsts<>+288(SB)
#define C_C3      expConsts<>+320(SB)
#define C_C2      expConsts<>+352(SB)
#define C_ONE     expConsts<>+384(SB)
#define C_SIGN    expConsts<>+416(SB)
#define C_NEGINF  expConsts<>+448(SB)

// Lanes 0..r-1 of an 8-lane mask start at expMask<>+4*(8-r): the AVX2 tails.
DATA expMask<>+0(SB)/8, $0xffffffffffffffff
DATA expMask<>+8(SB)/8, $0xffffffffffffffff
DATA expMask<>+16(SB)/8, $0xffffffffffffffff
DATA expMask<>+24(SB)/8, $0xffffffffffffffff
DATA expMask<>+32(SB)/8, $0
DATA expMask<>+40(SB)/8, $0
DATA expMask<>+48(SB)/8, $0
DATA expMask<>+56(SB)/8, $0
GLOBL expMask<>(SB), RODATA|NOPTR, $64

// AVX-512 keeps every constant in a register: Z16-Z30.
#define LOAD_CONSTS_AVX512 \
	VBROADCASTSS C_LO, Z16;     \
	VBROADCASTSS C_HI, Z17;     \
	VBROADCASTSS C_LOG2E, Z18;  \
	VBROADCASTSS C_MAGIC, Z19;  \
	VBROADCASTSS C_NLN2HI, Z20; \
	VBROADCASTSS C_NLN2LO, Z21; \
	VBROADCASTSS C_C7, Z22;     \
	VBROADCASTSS C_C6, Z23;     \
	VBROADCASTSS C_C5, Z24;     \
	VBROADCASTSS C_C4, Z25;     \
	VBROADCASTSS C_C3, Z26;     \
	VBROADCASTSS C_C2, Z27;     \
	VBROADCASTSS C_ONE, Z28;    \
	VBROADCASTSS C_SIGN, Z29;   \
	VBROADCASTSS C_NEGINF, Z30

// EXP_AVX512 replaces x with exp(x), as expf does; t and p are scratch. The
// clamps take x as the second source so that a NaN in x comes through.
#define EXP_AVX512(x, t, p) \
	VMAXPS      x, Z16, x;   \
	VMINPS      x, Z17, x;   \
	VMOVAPS     Z19, t;      \
	VFMADD231PS Z18, x, t;   \
	VSUBPS      Z19, t, p;   \
	VPSLLD      $23, t, t;   \
	VFMADD231PS Z20, p, x;   \
	VFMADD231PS Z21, p, x;   \
	VMOVAPS     Z22, p;      \
	VFMADD213PS Z23, x, p;   \
	VFMADD213PS Z24, x, p;   \
	VFMADD213PS Z25, x, p;   \
	VFMADD213PS Z26, x, p;   \
	VFMADD213PS Z27, x, p;   \
	VFMADD213PS Z28, x, p;   \
	VFMADD213PS Z28, x, p;   \
	VMULPS      t, p, x

// EXP2_AVX512 is EXP_AVX512 on x and y, interleaved.
#define EXP2_AVX512(x, t, p, y, u, q) \
	VMAXPS      x, Z16, x;   \
	VMAXPS      y, Z16, y;   \
	VMINPS      x, Z17, x;   \
	VMINPS      y, Z17, y;   \
	VMOVAPS     Z19, t;      \
	VMOVAPS     Z19, u;      \
	VFMADD231PS Z18, x, t;   \
	VFMADD231PS Z18, y, u;   \
	VSUBPS      Z19, t, p;   \
	VSUBPS      Z19, u, q;   \
	VPSLLD      $23, t, t;   \
	VPSLLD      $23, u, u;   \
	VFMADD231PS Z20, p, x;   \
	VFMADD231PS Z20, q, y;   \
	VFMADD231PS Z21, p, x;   \
	VFMADD231PS Z21, q, y;   \
	VMOVAPS     Z22, p;      \
	VMOVAPS     Z22, q;      \
	VFMADD213PS Z23, x, p;   \
	VFMADD213PS Z23, y, q;   \
	VFMADD213PS Z24, x, p;   \
	VFMADD213PS Z24, y, q;   \
	VFMADD213PS Z25, x, p;   \
	VFMADD213PS Z25, y, q;   \
	VFMADD213PS Z26, x, p;   \
	VFMADD213PS Z26, y, q;   \
	VFMADD213PS Z27, x, p;   \
	VFMADD213PS Z27, y, q;   \
	VFMADD213PS Z28, x, p;   \
	VFMADD213PS Z28, y, q;   \
	VFMADD213PS Z28, x, p;   \
	VFMADD213PS Z28, y, q;   \
	VMULPS      t, p, x;     \
	VMULPS      u, q, y

// K1 = lanes 0..CX-1, CX = n mod 16, for the masked tail; BX = n / 16.
#define TAIL_AVX512 \
	MOVQ  BX, CX;  \
	ANDQ  $15, CX; \
	SHRQ  $4, BX;  \
	MOVL  $1, AX;  \
	SHLL  CX, AX;  \
	DECL  AX;      \
	KMOVW AX, K1

// func expAVX512(dst, src *float32, n int)
TEXT ·expAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), BX
	LOAD_CONSTS_AVX512
	TAIL_AVX512
	TESTQ BX, BX
	JZ    tail

loop:
	VMOVUPS (SI), Z1
	EXP_AVX512(Z1, Z2, Z3)
	VMOVUPS Z1, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    BX
	JNZ     loop

tail:
	TESTQ CX, CX
	JZ    done
	VMOVUPS.Z (SI), K1, Z1
	EXP_AVX512(Z1, Z2, Z3)
	VMOVUPS Z1, K1, (DI)

done:
	VZEROUPPER
	RET

// func softmaxAVX512(x *float32, n int)
// n >= 1. Three passes over x, 16 lanes wide with a masked tail: max, exp(x -
// max) stored and summed, scale by 1/sum. The exp pass takes two vectors at a
// time, so that two exp chains overlap (1.5x at n = 2048), into two float32
// accumulators: each lane adds at most n/32 + 1 terms in (0, 1], then 5 more
// additions fold the lanes, so the sum's relative error is below
// (n/32 + 6)·2^-24 (4.2e-6 at n = 2048), about 2^-24·sqrt(n/32) in practice.
TEXT ·softmaxAVX512(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), BX
	LOAD_CONSTS_AVX512
	TAIL_AVX512

	// Pass 1: the maximum; the merge-masked tail load leaves -Inf past n.
	VMOVAPS Z30, Z0
	MOVQ    DI, SI
	MOVQ    BX, DX
	TESTQ   DX, DX
	JZ      maxtail

maxloop:
	VMAXPS (SI), Z0, Z0
	ADDQ   $64, SI
	DECQ   DX
	JNZ    maxloop

maxtail:
	VMOVAPS       Z30, Z1
	VMOVUPS       (SI), K1, Z1
	VMAXPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0x4e, X0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0xb1, X0, X1
	VMAXPS        X1, X0, X0
	VBROADCASTSS  X0, Z0

	// Pass 2: x = exp(x - max), summed into Z4; the tail adds only live lanes.
	VPXORD Z4, Z4, Z4
	VPXORD Z9, Z9, Z9
	MOVQ   DI, SI
	MOVQ   BX, DX
	SHRQ   $1, DX
	JZ     expone

exploop:
	VMOVUPS (SI), Z1
	VMOVUPS 64(SI), Z6
	VSUBPS  Z0, Z1, Z1
	VSUBPS  Z0, Z6, Z6
	EXP2_AVX512(Z1, Z2, Z3, Z6, Z7, Z8)
	VMOVUPS Z1, (SI)
	VMOVUPS Z6, 64(SI)
	VADDPS  Z1, Z4, Z4
	VADDPS  Z6, Z9, Z9
	ADDQ    $128, SI
	DECQ    DX
	JNZ     exploop

expone:
	TESTQ $1, BX
	JZ    exptail
	VMOVUPS (SI), Z1
	VSUBPS  Z0, Z1, Z1
	EXP_AVX512(Z1, Z2, Z3)
	VMOVUPS Z1, (SI)
	VADDPS  Z1, Z4, Z4
	ADDQ    $64, SI

exptail:
	TESTQ CX, CX
	JZ    sum
	VMOVUPS.Z (SI), K1, Z1
	VSUBPS    Z0, Z1, Z1
	EXP_AVX512(Z1, Z2, Z3)
	VMOVUPS   Z1, K1, (SI)
	VADDPS    Z1, Z4, K1, Z4

sum:
	VADDPS        Z9, Z4, Z4
	VEXTRACTF64X4 $1, Z4, Y1
	VADDPS        Y1, Y4, Y4
	VEXTRACTF128  $1, Y4, X1
	VADDPS        X1, X4, X4
	VHADDPS       X4, X4, X4
	VHADDPS       X4, X4, X4
	VMOVSS        C_ONE, X5
	VDIVSS        X4, X5, X5
	VBROADCASTSS  X5, Z5

	// Pass 3: x *= 1/sum.
	MOVQ  DI, SI
	MOVQ  BX, DX
	TESTQ DX, DX
	JZ    scaletail

scaleloop:
	VMULPS  (SI), Z5, Z1
	VMOVUPS Z1, (SI)
	ADDQ    $64, SI
	DECQ    DX
	JNZ     scaleloop

scaletail:
	TESTQ CX, CX
	JZ    done
	VMOVUPS.Z (SI), K1, Z1
	VMULPS    Z5, Z1, Z1
	VMOVUPS   Z1, K1, (SI)

done:
	VZEROUPPER
	RET

// func swiGLUGateAVX512(gate, up *float32, n int)
// gate = gate / (1 + exp(-gate)) * up, two vectors at a time. A true division
// rather than a reciprocal estimate: correctly rounded up to 1 + exp(-z) = 2.4e38.
TEXT ·swiGLUGateAVX512(SB), NOSPLIT, $0-24
	MOVQ gate+0(FP), DI
	MOVQ up+8(FP), SI
	MOVQ n+16(FP), BX
	LOAD_CONSTS_AVX512
	TAIL_AVX512
	MOVQ BX, DX
	SHRQ $1, DX
	JZ   one

loop:
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z5
	VPXORD  Z29, Z0, Z1
	VPXORD  Z29, Z5, Z6
	EXP2_AVX512(Z1, Z2, Z3, Z6, Z7, Z8)
	VADDPS  Z28, Z1, Z1
	VADDPS  Z28, Z6, Z6
	VDIVPS  Z1, Z0, Z0
	VDIVPS  Z6, Z5, Z5
	VMULPS  (SI), Z0, Z0
	VMULPS  64(SI), Z5, Z5
	VMOVUPS Z0, (DI)
	VMOVUPS Z5, 64(DI)
	ADDQ    $128, SI
	ADDQ    $128, DI
	DECQ    DX
	JNZ     loop

one:
	TESTQ $1, BX
	JZ    tail
	VMOVUPS (DI), Z0
	VPXORD  Z29, Z0, Z1
	EXP_AVX512(Z1, Z2, Z3)
	VADDPS  Z28, Z1, Z1
	VDIVPS  Z1, Z0, Z0
	VMULPS  (SI), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI

tail:
	TESTQ CX, CX
	JZ    done
	VMOVUPS.Z (DI), K1, Z0
	VMOVUPS.Z (SI), K1, Z4
	VPXORD    Z29, Z0, Z1
	EXP_AVX512(Z1, Z2, Z3)
	VADDPS    Z28, Z1, Z1
	VDIVPS    Z1, Z0, Z0
	VMULPS    Z4, Z0, Z0
	VMOVUPS   Z0, K1, (DI)

done:
	VZEROUPPER
	RET

// AVX2 has 16 registers: lo, hi, log2e, magic, -ln2Hi, -ln2Lo and c7 live in
// Y15-Y9, the other coefficients are memory operands.
#define LOAD_CONSTS_AVX2 \
	VMOVUPS C_LO, Y15;     \
	VMOVUPS C_HI, Y14;     \
	VMOVUPS C_LOG2E, Y13;  \
	VMOVUPS C_MAGIC, Y12;  \
	VMOVUPS C_NLN2HI, Y11; \
	VMOVUPS C_NLN2LO, Y10; \
	VMOVUPS C_C7, Y9

// EXP_AVX2 is EXP_AVX512 on 8 lanes.
#define EXP_AVX2(x, t, p) \
	VMAXPS      x, Y15, x;     \
	VMINPS      x, Y14, x;     \
	VMOVAPS     Y12, t;        \
	VFMADD231PS Y13, x, t;     \
	VSUBPS      Y12, t, p;     \
	VPSLLD      $23, t, t;     \
	VFMADD231PS Y11, p, x;     \
	VFMADD231PS Y10, p, x;     \
	VMOVAPS     Y9, p;         \
	VFMADD213PS C_C6, x, p;    \
	VFMADD213PS C_C5, x, p;    \
	VFMADD213PS C_C4, x, p;    \
	VFMADD213PS C_C3, x, p;    \
	VFMADD213PS C_C2, x, p;    \
	VFMADD213PS C_ONE, x, p;   \
	VFMADD213PS C_ONE, x, p;   \
	VMULPS      t, p, x

// EXP2_AVX2 is EXP_AVX2 on x and y, interleaved.
#define EXP2_AVX2(x, t, p, y, u, q) \
	VMAXPS      x, Y15, x;     \
	VMAXPS      y, Y15, y;     \
	VMINPS      x, Y14, x;     \
	VMINPS      y, Y14, y;     \
	VMOVAPS     Y12, t;        \
	VMOVAPS     Y12, u;        \
	VFMADD231PS Y13, x, t;     \
	VFMADD231PS Y13, y, u;     \
	VSUBPS      Y12, t, p;     \
	VSUBPS      Y12, u, q;     \
	VPSLLD      $23, t, t;     \
	VPSLLD      $23, u, u;     \
	VFMADD231PS Y11, p, x;     \
	VFMADD231PS Y11, q, y;     \
	VFMADD231PS Y10, p, x;     \
	VFMADD231PS Y10, q, y;     \
	VMOVAPS     Y9, p;         \
	VMOVAPS     Y9, q;         \
	VFMADD213PS C_C6, x, p;    \
	VFMADD213PS C_C6, y, q;    \
	VFMADD213PS C_C5, x, p;    \
	VFMADD213PS C_C5, y, q;    \
	VFMADD213PS C_C4, x, p;    \
	VFMADD213PS C_C4, y, q;    \
	VFMADD213PS C_C3, x, p;    \
	VFMADD213PS C_C3, y, q;    \
	VFMADD213PS C_C2, x, p;    \
	VFMADD213PS C_C2, y, q;    \
	VFMADD213PS C_ONE, x, p;   \
	VFMADD213PS C_ONE, y, q;   \
	VFMADD213PS C_ONE, x, p;   \
	VFMADD213PS C_ONE, y, q;   \
	VMULPS      t, p, x;       \
	VMULPS      u, q, y

// Y5 = mask of lanes 0..CX-1, CX = n mod 8, for VMASKMOVPS, which neither reads
// nor writes the other lanes; BX = n / 8.
#define TAIL_AVX2 \
	MOVQ    BX, CX;                   \
	ANDQ    $7, CX;                   \
	SHRQ    $3, BX;                   \
	LEAQ    expMask<>+32(SB), AX;     \
	MOVQ    CX, DX;                   \
	SHLQ    $2, DX;                   \
	SUBQ    DX, AX;                   \
	VMOVUPS (AX), Y5

// func expAVX2(dst, src *float32, n int)
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), BX
	LOAD_CONSTS_AVX2
	TAIL_AVX2
	TESTQ BX, BX
	JZ    tail

loop:
	VMOVUPS (SI), Y1
	EXP_AVX2(Y1, Y2, Y3)
	VMOVUPS Y1, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    BX
	JNZ     loop

tail:
	TESTQ CX, CX
	JZ    done
	VMASKMOVPS (SI), Y5, Y1
	EXP_AVX2(Y1, Y2, Y3)
	VMASKMOVPS Y1, Y5, (DI)

done:
	VZEROUPPER
	RET

// func softmaxAVX2(x *float32, n int)
// softmaxAVX512 on 8 lanes, one accumulator: the sum's relative error is below
// (n/8 + 4)·2^-24.
TEXT ·softmaxAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), BX
	LOAD_CONSTS_AVX2
	TAIL_AVX2

	// Pass 1: the maximum; the tail's dead lanes are blended to -Inf.
	VMOVUPS C_NEGINF, Y0
	MOVQ    DI, SI
	MOVQ    BX, DX
	TESTQ   DX, DX
	JZ      maxtail

maxloop:
	VMAXPS (SI), Y0, Y0
	ADDQ   $32, SI
	DECQ   DX
	JNZ    maxloop

maxtail:
	TESTQ CX, CX
	JZ    maxfold
	VMASKMOVPS (SI), Y5, Y1
	VMOVUPS    C_NEGINF, Y6
	VBLENDVPS  Y5, Y1, Y6, Y1
	VMAXPS     Y1, Y0, Y0

maxfold:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X1, X0, X0
	VBROADCASTSS X0, Y0

	// Pass 2: x = exp(x - max), summed into Y4; the tail's dead lanes are zeroed.
	VXORPS Y4, Y4, Y4
	MOVQ   DI, SI
	MOVQ   BX, DX
	SHRQ   $1, DX
	JZ     expone

exploop:
	VMOVUPS (SI), Y1
	VMOVUPS 32(SI), Y6
	VSUBPS  Y0, Y1, Y1
	VSUBPS  Y0, Y6, Y6
	EXP2_AVX2(Y1, Y2, Y3, Y6, Y7, Y8)
	VMOVUPS Y1, (SI)
	VMOVUPS Y6, 32(SI)
	VADDPS  Y1, Y4, Y4
	VADDPS  Y6, Y4, Y4
	ADDQ    $64, SI
	DECQ    DX
	JNZ     exploop

expone:
	TESTQ $1, BX
	JZ    exptail
	VMOVUPS (SI), Y1
	VSUBPS  Y0, Y1, Y1
	EXP_AVX2(Y1, Y2, Y3)
	VMOVUPS Y1, (SI)
	VADDPS  Y1, Y4, Y4
	ADDQ    $32, SI

exptail:
	TESTQ CX, CX
	JZ    sum
	VMASKMOVPS (SI), Y5, Y1
	VSUBPS     Y0, Y1, Y1
	EXP_AVX2(Y1, Y2, Y3)
	VANDPS     Y5, Y1, Y1
	VMASKMOVPS Y1, Y5, (SI)
	VADDPS     Y1, Y4, Y4

sum:
	VEXTRACTF128 $1, Y4, X1
	VADDPS       X1, X4, X4
	VHADDPS      X4, X4, X4
	VHADDPS      X4, X4, X4
	VMOVSS       C_ONE, X6
	VDIVSS       X4, X6, X6
	VBROADCASTSS X6, Y6

	// Pass 3: x *= 1/sum.
	MOVQ  DI, SI
	MOVQ  BX, DX
	TESTQ DX, DX
	JZ    scaletail

scaleloop:
	VMULPS  (SI), Y6, Y1
	VMOVUPS Y1, (SI)
	ADDQ    $32, SI
	DECQ    DX
	JNZ     scaleloop

scaletail:
	TESTQ CX, CX
	JZ    done
	VMASKMOVPS (SI), Y5, Y1
	VMULPS     Y6, Y1, Y1
	VMASKMOVPS Y1, Y5, (SI)

done:
	VZEROUPPER
	RET

// func swiGLUGateAVX2(gate, up *float32, n int)
TEXT ·swiGLUGateAVX2(SB), NOSPLIT, $0-24
	MOVQ gate+0(FP), DI
	MOVQ up+8(FP), SI
	MOVQ n+16(FP), BX
	LOAD_CONSTS_AVX2
	TAIL_AVX2
	MOVQ BX, DX
	SHRQ $1, DX
	JZ   one

loop:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y4
	VXORPS  C_SIGN, Y0, Y1
	VXORPS  C_SIGN, Y4, Y6
	EXP2_AVX2(Y1, Y2, Y3, Y6, Y7, Y8)
	VADDPS  C_ONE, Y1, Y1
	VADDPS  C_ONE, Y6, Y6
	VDIVPS  Y1, Y0, Y0
	VDIVPS  Y6, Y4, Y4
	VMULPS  (SI), Y0, Y0
	VMULPS  32(SI), Y4, Y4
	VMOVUPS Y0, (DI)
	VMOVUPS Y4, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    DX
	JNZ     loop

one:
	TESTQ $1, BX
	JZ    tail
	VMOVUPS (DI), Y0
	VXORPS  C_SIGN, Y0, Y1
	EXP_AVX2(Y1, Y2, Y3)
	VADDPS  C_ONE, Y1, Y1
	VDIVPS  Y1, Y0, Y0
	VMULPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI

tail:
	TESTQ CX, CX
	JZ    done
	VMASKMOVPS (DI), Y5, Y0
	VMASKMOVPS (SI), Y5, Y4
	VXORPS     C_SIGN, Y0, Y1
	EXP_AVX2(Y1, Y2, Y3)
	VADDPS     C_ONE, Y1, Y1
	VDIVPS     Y1, Y0, Y0
	VMULPS     Y4, Y0, Y0
	VMASKMOVPS Y0, Y5, (DI)

done:
	VZEROUPPER
	RET
