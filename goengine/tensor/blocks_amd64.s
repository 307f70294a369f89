//go:build !purego

#include "textflag.h"

// The AVX2 rows kernels of the Blocks types: for each of rows rows, the row
// at w + i·stride times the activation, into out[i]. Each row's blocks are the
// arithmetic of ggml's ggml_vec_dot_*_q8_* (ggml-cpu/arch/x86/quants.c) for
// AVX2, and blocks.go's generic kernels written as vectors: quants widened to
// bytes, VPMADDUBSW (unsigned byte × signed byte, pairs summed to int16, which
// no block's quants can saturate: the largest pair, Q6_K's, is
// 2·63·127 = 16002), VPMADDWD to int32 with ones or the sub-block scales, one
// float32 conversion and FMA per block or super-block. Rows run one after
// another through the same operations, so a row's result does not depend on
// the rows around it.
//
// Arguments, shared by every kernel: out, w, stride (bytes), rows and nb
// (blocks per row) first, then the activation: xq (its int8 quants), xd (its
// block scales) and sums (Q8_1's d·Σq per block for Q4_1 and Q5_1, Q8_K's
// int16 sums of 16 for the K-quants, unused otherwise).
// Registers: R9 out, R10 the row, R11 stride, R12 rows left; per row SI the
// block, DI xq, DX xd, R8 sums, CX blocks left; Y0 and Y1 accumulate the
// blocks' products, X10 (and X3) the min terms. Scalar float16 fields are loaded
// within their block: a load past the last block of a mapped file could
// fault.

// PREFETCH_AHEAD is how far ahead of the block being read the row loops
// prefetch the matrix, one line per loop iteration (four per K-quant
// super-block): the rows are one contiguous stream, and on matrices out of
// cache the prefetch was worth 10 to 30% against the hardware's own (0.5, 2
// and 4 KiB tried; 2 KiB best or level with the best).
#define PREFETCH_AHEAD 2048

// ROWS_BEGIN loads the row loop's registers.
#define ROWS_BEGIN \
	MOVQ out+0(FP), R9; \
	MOVQ w+8(FP), R10; \
	MOVQ stride+16(FP), R11; \
	MOVQ rows+24(FP), R12

// ROW_START points at the row and the activation and clears the accumulators.
#define ROW_START \
	MOVQ   R10, SI; \
	MOVQ   nb+32(FP), CX; \
	MOVQ   xq+40(FP), DI; \
	MOVQ   xd+48(FP), DX; \
	MOVQ   sums+56(FP), R8; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS X10, X10, X10

// ROW_END stores (Y0 + Y1 summed across lanes) + X10 and goes to the next row.
#define ROW_END(next) \
	VADDPS       Y1, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VHADDPS      X0, X0, X0; \
	VHADDPS      X0, X0, X0; \
	VADDSS       X10, X0, X0; \
	VMOVSS       X0, (R9); \
	ADDQ         $4, R9; \
	ADDQ         R11, R10; \
	DECQ         R12; \
	JNZ          next

// BYTES sets every byte of y (x its low half) to the byte of imm, 4 copies.
#define BYTES(imm, x, y) \
	MOVL         imm, AX; \
	VMOVD        AX, x; \
	VPBROADCASTD x, y

// INT16_ONES sets every int16 lane of y to 1, for VPMADDWD's pair sums.
#define INT16_ONES(y) \
	VPCMPEQW y, y, y; \
	VPSRLW   $15, y, y

// NIBBLES widens the 16 bytes at off(SI) to 32 quants in Y4, low nibbles
// first (values 0..15), then high ones (16..31): bytes_from_nibbles_32.
// Y14 holds 0x0f bytes.
#define NIBBLES(off) \
	VMOVDQU     off(SI), X4; \
	VPSRLW      $4, X4, X5; \
	VINSERTI128 $1, X5, Y4, Y4; \
	VPAND       Y14, Y4, Y4

// FIFTH_BITS sets Y5's byte j to 0xff where bit j of the uint32 at off(SI)
// is set: bytes_from_bits_32. Y12 spreads byte k of the word to bytes
// 8k..8k+7, Y11 clears a different bit in each, Y13 is all ones.
#define FIFTH_BITS(off) \
	VPBROADCASTD off(SI), Y5; \
	VPSHUFB      Y12, Y5, Y5; \
	VPOR         Y11, Y5, Y5; \
	VPCMPEQB     Y13, Y5, Y5

// DOT4 sets Y2's int32 lanes to the sums of four products of unsigned bytes
// of q and signed bytes of x: VPMADDUBSW's pair sums (int16, which no block's
// quants saturate), then VPMADDWD's with Y15's int16 ones. The VNNI kernels
// below redefine it as one VPDPBUSD, whose sums are the same four products.
#define DOT4(x, q) \
	VPMADDUBSW x, q, Y2; \
	VPMADDWD   Y15, Y2, Y2

// SIGNED_BLOCK adds block (signed quants in Y4) · activation block xo(DI),
// scaled by the weight's float16 d at wo(SI) and xd's so(DX), into acc:
// VPMADDUBSW needs an unsigned operand, so |q| times x carrying q's sign
// (mul_sum_i8_pairs_float). |x| <= 127, so pairs stay below 2·128·127.
#define SIGNED_BLOCK(wo, xo, so, acc) \
	VMOVDQU      xo(DI), Y5; \
	VPABSB       Y4, Y6; \
	VPSIGNB      Y4, Y5, Y5; \
	DOT4(Y5, Y6); \
	VCVTDQ2PS    Y2, Y6; \
	VCVTPH2PS    wo(SI), X7; \
	VMULSS       so(DX), X7, X7; \
	VBROADCASTSS X7, Y7; \
	VFMADD231PS  Y6, Y7, acc

// UNSIGNED_BLOCK is SIGNED_BLOCK for unsigned quants (Q4_1, Q5_1), plus the
// min term m·s (the float16 m after d, Q8_1's s at so(R8)) into macc.
#define UNSIGNED_BLOCK(wo, xo, so, acc, macc) \
	DOT4(xo(DI), Y4); \
	VCVTDQ2PS    Y2, Y4; \
	VCVTPH2PS    wo(SI), X7; \
	VMULSS       so(DX), X7, X8; \
	VBROADCASTSS X8, Y8; \
	VFMADD231PS  Y4, Y8, acc; \
	VMOVSHDUP    X7, X7; \
	VFMADD231SS  so(R8), X7, macc

// Q4_0 block: d, 16 bytes of nibbles; q - 8 with Y13 = 0x08 bytes.
#define Q4_0(wo, xo, so, acc, macc) \
	NIBBLES(wo+2); \
	VPSUBB Y13, Y4, Y4; \
	SIGNED_BLOCK(wo, xo, so, acc)

// Q4_1 block: d, m, 16 bytes of nibbles.
#define Q4_1(wo, xo, so, acc, macc) \
	NIBBLES(wo+4); \
	UNSIGNED_BLOCK(wo, xo, so, acc, macc)

// Q5_0 block: d, qh, nibbles. A clear fifth bit makes q - 16 of the nibble:
// q | 0xf0 as an int8 (Y9 = 0xf0 bytes).
#define Q5_0(wo, xo, so, acc, macc) \
	NIBBLES(wo+6); \
	FIFTH_BITS(wo+2); \
	VPANDN Y9, Y5, Y5; \
	VPOR   Y5, Y4, Y4; \
	SIGNED_BLOCK(wo, xo, so, acc)

// Q5_1 block: d, m, qh, nibbles; a set fifth bit adds 16 (Y9 = 0x10 bytes).
#define Q5_1(wo, xo, so, acc, macc) \
	NIBBLES(wo+8); \
	FIFTH_BITS(wo+4); \
	VPAND Y9, Y5, Y5; \
	VPOR  Y5, Y4, Y4; \
	UNSIGNED_BLOCK(wo, xo, so, acc, macc)

// FIFTH_BITS_CONSTANTS sets Y11, Y12 and Y13 for FIFTH_BITS.
#define FIFTH_BITS_CONSTANTS \
	VPCMPEQB     Y13, Y13, Y13; \
	VPBROADCASTQ fifthBitMask<>(SB), Y11; \
	VMOVDQU      fifthBitSpread<>(SB), Y12

DATA fifthBitMask<>+0(SB)/8, $0x7fbfdfeff7fbfdfe
GLOBL fifthBitMask<>(SB), RODATA|NOPTR, $8

DATA fifthBitSpread<>+0(SB)/8, $0x0000000000000000
DATA fifthBitSpread<>+8(SB)/8, $0x0101010101010101
DATA fifthBitSpread<>+16(SB)/8, $0x0202020202020202
DATA fifthBitSpread<>+24(SB)/8, $0x0303030303030303
GLOBL fifthBitSpread<>(SB), RODATA|NOPTR, $32

// ROWS32 is the row loop of a type of 32-value blocks of size bytes: two
// blocks per iteration into Y0 and Y1, then the odd one. The min terms of
// Q4_1 and Q5_1 go to X10 and X3, two chains of dependent scalar FMAs: one,
// at 4 to 5 cycles an FMA, would take about as long as the blocks' own work.
#define ROWS32(BLOCK, size, row, loop2, tail, done) \
row:; \
	ROW_START; \
	VXORPS X3, X3, X3; \
	CMPQ  CX, $2; \
	JLT   tail; \
loop2:; \
	PREFETCHT0 PREFETCH_AHEAD(SI); \
	BLOCK(0, 0, 0, Y0, X10); \
	BLOCK(size, 32, 4, Y1, X3); \
	ADDQ  $(2*size), SI; \
	ADDQ  $64, DI; \
	ADDQ  $8, DX; \
	ADDQ  $8, R8; \
	SUBQ  $2, CX; \
	CMPQ  CX, $2; \
	JGE   loop2; \
tail:; \
	TESTQ CX, CX; \
	JZ    done; \
	BLOCK(0, 0, 0, Y0, X10); \
done:; \
	VADDSS X3, X10, X10; \
	ROW_END(row)

// func rowsQ4_0AVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)
TEXT ·rowsQ4_0AVX2(SB), NOSPLIT, $0-64
	ROWS_BEGIN
	BYTES($0x0f0f0f0f, X14, Y14)
	BYTES($0x08080808, X13, Y13)
	INT16_ONES(Y15)
	ROWS32(Q4_0, 18, q40row, q40loop2, q40tail, q40done)
	VZEROUPPER
	RET

// func rowsQ4_1AVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)
TEXT ·rowsQ4_1AVX2(SB), NOSPLIT, $0-64
	ROWS_BEGIN
	BYTES($0x0f0f0f0f, X14, Y14)
	INT16_ONES(Y15)
	ROWS32(Q4_1, 20, q41row, q41loop2, q41tail, q41done)
	VZEROUPPER
	RET

// func rowsQ5_0AVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)
TEXT ·rowsQ5_0AVX2(SB), NOSPLIT, $0-64
	ROWS_BEGIN
	BYTES($0x0f0f0f0f, X14, Y14)
	BYTES($0xf0f0f0f0, X9, Y9)
	FIFTH_BITS_CONSTANTS
	INT16_ONES(Y15)
	ROWS32(Q5_0, 22, q50row, q50loop2, q50tail, q50done)
	VZEROUPPER
	RET

// func rowsQ5_1AVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)
TEXT ·rowsQ5_1AVX2(SB), NOSPLIT, $0-64
	ROWS_BEGIN
	BYTES($0x0f0f0f0f, X14, Y14)
	BYTES($0x10101010, X9, Y9)
	FIFTH_BITS_CONSTANTS
	INT16_ONES(Y15)
	ROWS32(Q5_1, 24, q51row, q51loop2, q51tail, q51done)
	VZEROUPPER
	RET

// The VNNI kernels of the 32-value types: the same row loops with DOT4 as
// VPDPBUSD (AVX-512 VNNI on YMM registers), one instruction where AVX2 takes
// two. Its int32 sums are VPMADDUBSW-then-VPMADDWD's, so each kernel's
// results are bit for bit the AVX2 one's. On the 2-core Xeon (BenchmarkRowsBlocks,
// best of four, MB/s of weights) they read Q4_0 6 %, Q4_1 8-15 %, Q5_0 and
// Q5_1 0-5 % faster than AVX2.
//
// The K-quants keep their AVX2 kernels at the avx512 level because wider ones
// measured slower there. ZMM versions of Q4_K, Q5_K and Q6_K were tried: two
// AVX2 32-quant groups per instruction, bit for bit the AVX2 results. They ran
// at 17.7, 15.4 and 25.6 GB/s against AVX2's 20.9, 20.1 and 24.3 GB/s
// (576x1536). The 512-bit integer multiplies issue on one port where the
// 256-bit ones issue on two, so the multiplies gain nothing, and the halves
// cost inserts and a fold. VNNI does not fit them either: their sub-block
// scales multiply int16 pair sums inside VPMADDWD, and VPDPBUSD has no step
// where a scale could enter.
#undef DOT4
#define DOT4(x, q) \
	VPXOR    Y2, Y2, Y2; \
	VPDPBUSD x, q, Y2

// func rowsQ4_0VNNI(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)
TEXT ·rowsQ4_0VNNI(SB), NOSPLIT, $0-64
	ROWS_BEGIN
	BYTES($0x0f0f0f0f, X14, Y14)
	BYTES($0x08080808, X13, Y13)
	ROWS32(Q4_0, 18, q40vrow, q40vloop2, q40vtail, q40vdone)
	VZEROUPPER
	RET

// func rowsQ4_1VNNI(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)
TEXT ·rowsQ4_1VNNI(SB), NOSPLIT, $0-64
	ROWS_BEGIN
	BYTES($0x0f0f0f0f, X14, Y14)
	ROWS32(Q4_1, 20, q41vrow, q41vloop2, q41vtail, q41vdone)
	VZEROUPPER
	RET

// func rowsQ5_0VNNI(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)
TEXT ·rowsQ5_0VNNI(SB), NOSPLIT, $0-64
	ROWS_BEGIN
	BYTES($0x0f0f0f0f, X14, Y14)
	BYTES($0xf0f0f0f0, X9, Y9)
	FIFTH_BITS_CONSTANTS
	ROWS32(Q5_0, 22, q50vrow, q50vloop2, q50vtail, q50vdone)
	VZEROUPPER
	RET

// func rowsQ5_1VNNI(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *float32)
TEXT ·rowsQ5_1VNNI(SB), NOSPLIT, $0-64
	ROWS_BEGIN
	BYTES($0x0f0f0f0f, X14, Y14)
	BYTES($0x10101010, X9, Y9)
	FIFTH_BITS_CONSTANTS
	ROWS32(Q5_1, 24, q51vrow, q51vloop2, q51vtail, q51vdone)
	VZEROUPPER
	RET

// The K-quants: one 256-value super-block per iteration against one Q8_K
// block (256 quants at DI, its scale at DX, its 16 int16 sums at R8). The
// sub-block scales multiply int16 pair sums in VPMADDWD, broadcast to every
// lane by the kScale tables; the min (or offset) term is the activation's
// sums times the mins, so it costs one VPMADDWD per super-block. Y0
// accumulates d_x·d·Σ, Y1 (its low half) -d_x·dmin·Σ m·sums for Q4_K and
// Q5_K; Y7 is a super-block's int32 sums.

// ROWSK is the row loop of a K-quant of size bytes per super-block.
#define ROWSK(BLOCK, size, row, loop) \
row:; \
	ROW_START; \
loop:; \
	PREFETCHT0 PREFETCH_AHEAD(SI); \
	PREFETCHT0 (PREFETCH_AHEAD+64)(SI); \
	PREFETCHT0 (PREFETCH_AHEAD+128)(SI); \
	PREFETCHT0 (PREFETCH_AHEAD+192)(SI); \
	BLOCK; \
	ADDQ $size, SI; \
	ADDQ $256, DI; \
	ADDQ $4, DX; \
	ADDQ $32, R8; \
	DECQ CX; \
	JNZ  loop; \
	ROW_END(row)

// K4_SCALES unpacks the scales and mins of the Q4_K or Q5_K super-block at SI
// (d, dmin, 12 scale bytes): Y2 = the 8 scales as int16, in both halves, X5
// lane 0 = d·d_x, and X1 -= dmin·d_x·Σ_j m_j·(sums 2j + 2j+1).
#define K4_SCALES \
	VMOVDQU      4(SI), X3; \
	VPSHUFD      $0x98, X3, X2; \
	VPSRLVD      k4Shift<>(SB), X2, X2; \
	VPAND        k4Low<>(SB), X2, X2; \
	VPSHUFD      $0x50, X3, X3; \
	VPSRLD       $6, X3, X3; \
	VPAND        k4High<>(SB), X3, X3; \
	VPSLLD       $4, X3, X3; \
	VPOR         X3, X2, X2; \
	VPMOVZXBW    X2, Y2; \
	VMOVDQU      (R8), Y3; \
	VEXTRACTI128 $1, Y3, X4; \
	VPHADDW      X4, X3, X3; \
	VEXTRACTI128 $1, Y2, X4; \
	VPMADDWD     X3, X4, X4; \
	VCVTDQ2PS    X4, X4; \
	VCVTPH2PS    (SI), X5; \
	VBROADCASTSS (DX), X6; \
	VMULPS       X6, X5, X5; \
	VMOVSHDUP    X5, X6; \
	VBROADCASTSS X6, X6; \
	VFNMADD231PS X4, X6, X1; \
	VINSERTI128  $1, X2, Y2, Y2

// K_SCALED adds the int16 pair sums of 32 quants (Y11) times 32 activation
// quants at xo(DI), times the scale picked by kScale16 entry s, into Y7.
#define K_SCALED(xo, s) \
	VPMADDUBSW xo(DI), Y11, Y11; \
	VPSHUFB    kScale16<>+s(SB), Y2, Y12; \
	VPMADDWD   Y12, Y11, Y11; \
	VPADDD     Y11, Y7, Y7

// K_FINISH adds the super-block's sums Y7, times X5 lane 0, into Y0.
#define K_FINISH \
	VCVTDQ2PS    Y7, Y7; \
	VBROADCASTSS X5, Y5; \
	VFMADD231PS  Y7, Y5, Y0

// Q4_K_CHUNK: 64 values from 32 bytes at qo(SI), low nibbles (scale sl) then
// high ones (scale sl+32).
#define Q4_K_CHUNK(qo, xo, xo2, sl, sh) \
	VMOVDQU qo(SI), Y11; \
	VPSRLW  $4, Y11, Y13; \
	VPAND   Y14, Y11, Y11; \
	VPAND   Y14, Y13, Y13; \
	K_SCALED(xo, sl); \
	VMOVDQA Y13, Y11; \
	K_SCALED(xo2, sh)

// Q4_K super-block: d, dmin, scales, 128 bytes of nibbles.
#define Q4_K \
	K4_SCALES; \
	VPXOR Y7, Y7, Y7; \
	Q4_K_CHUNK(16, 0, 32, 0, 32); \
	Q4_K_CHUNK(48, 64, 96, 64, 96); \
	Q4_K_CHUNK(80, 128, 160, 128, 160); \
	Q4_K_CHUNK(112, 192, 224, 192, 224); \
	K_FINISH

// Q5_K_CHUNK is Q4_K_CHUNK plus the fifth bits, bits 0 and 1 of Y15 (qh, shifted
// right by 2 after each chunk) moved to bit 4: +16.
#define Q5_K_CHUNK(qo, xo, xo2, sl, sh) \
	VMOVDQU qo(SI), Y11; \
	VPSRLW  $4, Y11, Y13; \
	VPAND   Y14, Y11, Y11; \
	VPAND   Y14, Y13, Y13; \
	VPAND   bitMask<>+0(SB), Y15, Y3; \
	VPSLLW  $4, Y3, Y3; \
	VPOR    Y3, Y11, Y11; \
	VPAND   bitMask<>+32(SB), Y15, Y4; \
	VPSLLW  $3, Y4, Y4; \
	VPOR    Y4, Y13, Y13; \
	VPSRLW  $2, Y15, Y15; \
	K_SCALED(xo, sl); \
	VMOVDQA Y13, Y11; \
	K_SCALED(xo2, sh)

// Q5_K super-block: d, dmin, scales, 32 bytes qh, 128 bytes of nibbles.
#define Q5_K \
	K4_SCALES; \
	VMOVDQU 16(SI), Y15; \
	VPXOR   Y7, Y7, Y7; \
	Q5_K_CHUNK(48, 0, 32, 0, 32); \
	Q5_K_CHUNK(80, 64, 96, 64, 96); \
	Q5_K_CHUNK(112, 128, 160, 128, 160); \
	Q5_K_CHUNK(144, 192, 224, 192, 224); \
	K_FINISH

// Q6_K_SUM adds 32 quants (Y8, 6 bits) times 32 activation quants at xo(DI),
// times the int8 scales picked by kScale8 entry s from X3, into Y7.
#define Q6_K_SUM(xo, s) \
	VPMADDUBSW xo(DI), Y8, Y8; \
	VPSHUFB    kScale8<>+s(SB), X3, X9; \
	VPMOVSXBW  X9, Y9; \
	VPMADDWD   Y9, Y8, Y8; \
	VPADDD     Y8, Y7, Y7

// Q6_K_HALF: 128 values from 64 bytes ql at lo(SI) and 32 bytes qh at qh(SI):
// values 0..31 the low nibbles of ql[0:32] and qh bits 0-1, 32..63 those of
// ql[32:64] and bits 2-3, then the high nibbles with bits 4-5 and 6-7. Y13
// holds 0x03 bytes.
#define Q6_K_HALF(lo, lo2, qh, x0, x1, x2, x3, s0, s1, s2, s3) \
	VMOVDQU lo(SI), Y4; \
	VMOVDQU lo2(SI), Y5; \
	VMOVDQU qh(SI), Y6; \
	VPAND   Y14, Y4, Y8; \
	VPAND   Y13, Y6, Y9; \
	VPSLLW  $4, Y9, Y9; \
	VPOR    Y9, Y8, Y8; \
	Q6_K_SUM(x0, s0); \
	VPAND   Y14, Y5, Y8; \
	VPAND   q6High<>+0(SB), Y6, Y9; \
	VPSLLW  $2, Y9, Y9; \
	VPOR    Y9, Y8, Y8; \
	Q6_K_SUM(x1, s1); \
	VPSRLW  $4, Y4, Y8; \
	VPAND   Y14, Y8, Y8; \
	VPAND   q6High<>+32(SB), Y6, Y9; \
	VPOR    Y9, Y8, Y8; \
	Q6_K_SUM(x2, s2); \
	VPSRLW  $4, Y5, Y8; \
	VPAND   Y14, Y8, Y8; \
	VPAND   q6High<>+64(SB), Y6, Y9; \
	VPSRLW  $2, Y9, Y9; \
	VPOR    Y9, Y8, Y8; \
	Q6_K_SUM(x3, s3)

// Q6_K super-block: ql, qh, 16 int8 scales, d. The quants are q - 32 taken as
// unsigned q: 32·Σ_j sc_j·sums_j (Y2) comes off the int32 sums at the end.
#define Q6_K \
	VPMOVSXBW    192(SI), Y2; \
	VPMADDWD     (R8), Y2, Y2; \
	VPSLLD       $5, Y2, Y2; \
	VMOVDQU      192(SI), X3; \
	VPXOR        Y7, Y7, Y7; \
	Q6_K_HALF(0, 32, 128, 0, 32, 64, 96, 0, 16, 32, 48); \
	Q6_K_HALF(64, 96, 160, 128, 160, 192, 224, 64, 80, 96, 112); \
	VPSUBD       Y2, Y7, Y7; \
	MOVWLZX      208(SI), AX; \
	VMOVD        AX, X5; \
	VCVTPH2PS    X5, X5; \
	VMULSS       (DX), X5, X5; \
	K_FINISH

// Q2_K_SUM adds 32 2-bit quants (Y11) times 32 activation quants at xo(DI),
// their two scales picked from sc by kScalePair entry s, into Y7.
#define Q2_K_SUM(xo, s, sc) \
	VPMADDUBSW xo(DI), Y11, Y11; \
	VPSHUFB    kScalePair<>+s(SB), sc, Y12; \
	VPMADDWD   Y12, Y11, Y11; \
	VPADDD     Y11, Y7, Y7

// Q2_K_HALF: 128 values from the 32 bytes at qo(SI), at shifts 0, 2, 4, 6;
// sc holds their 8 scales as int16 in both halves. Y13 holds 0x03 bytes.
#define Q2_K_HALF(qo, x0, x1, x2, x3, sc) \
	VMOVDQU qo(SI), Y4; \
	VPAND   Y13, Y4, Y11; \
	Q2_K_SUM(x0, 0, sc); \
	VPSRLW  $2, Y4, Y11; \
	VPAND   Y13, Y11, Y11; \
	Q2_K_SUM(x1, 32, sc); \
	VPSRLW  $4, Y4, Y11; \
	VPAND   Y13, Y11, Y11; \
	Q2_K_SUM(x2, 64, sc); \
	VPSRLW  $6, Y4, Y11; \
	VPAND   Y13, Y11, Y11; \
	Q2_K_SUM(x3, 96, sc)

// Q2_K super-block: 16 scale bytes (scale low nibble, min high), 64 bytes of
// quants, d, dmin. The mins times the 16 sums go straight into Y0.
#define Q2_K \
	VMOVDQU      (SI), X2; \
	VPSRLW       $4, X2, X3; \
	VPAND        X14, X3, X3; \
	VPAND        X14, X2, X2; \
	VPMOVZXBW    X3, Y3; \
	VPMADDWD     (R8), Y3, Y3; \
	VCVTDQ2PS    Y3, Y3; \
	MOVL         80(SI), AX; \
	VMOVD        AX, X5; \
	VCVTPH2PS    X5, X5; \
	VBROADCASTSS (DX), X6; \
	VMULPS       X6, X5, X5; \
	VMOVSHDUP    X5, X6; \
	VBROADCASTSS X6, Y6; \
	VFNMADD231PS Y3, Y6, Y0; \
	VPMOVZXBW    X2, Y2; \
	VPERMQ       $0x44, Y2, Y8; \
	VPERMQ       $0xee, Y2, Y9; \
	VPXOR        Y7, Y7, Y7; \
	Q2_K_HALF(16, 0, 32, 64, 96, Y8); \
	Q2_K_HALF(48, 128, 160, 192, 224, Y9); \
	K_FINISH

// Q3_K_PART adds 32 values: 2-bit quants (Y4 shifted right by lsh, masked by
// Y13 = 0x03 bytes) minus 4 where hmask (Y6) has bit b clear, that bit of
// ~hmask (bitMask entry at boff) shifted down to bit 0, then up to bit 2.
// Both products with the activation take the quants as unsigned, and the
// second is subtracted, as ggml does; the scales come from sc by kScalePair s.
#define Q3_K_PART(lsh, boff, b, xo, s, sc) \
	VPSRLW     $lsh, Y4, Y11; \
	VPAND      Y13, Y11, Y11; \
	VPANDN     bitMask<>+boff(SB), Y6, Y12; \
	VPSRLW     $b, Y12, Y12; \
	VPSLLW     $2, Y12, Y12; \
	VPMADDUBSW xo(DI), Y11, Y11; \
	VPMADDUBSW xo(DI), Y12, Y12; \
	VPSUBW     Y12, Y11, Y11; \
	Q2_K_SUM_NOLOAD(s, sc)

// Q2_K_SUM_NOLOAD is Q2_K_SUM on pair sums already in Y11.
#define Q2_K_SUM_NOLOAD(s, sc) \
	VPSHUFB    kScalePair<>+s(SB), sc, Y12; \
	VPMADDWD   Y12, Y11, Y11; \
	VPADDD     Y11, Y7, Y7

// Q3_K super-block: 32 bytes hmask, 64 bytes of quants, 12 scale bytes, d.
// The 6-bit scales are unpacked as ggml's aux (q3KScales), minus 32 (Y15).
#define Q3_K \
	VMOVQ        96(SI), X2; \
	VPSHUFD      $0x44, X2, X2; \
	VPSRLVD      q3Shift<>(SB), X2, X2; \
	VPAND        X14, X2, X2; \
	VPBROADCASTD 104(SI), X3; \
	VPSRLVD      q3Shift<>+16(SB), X3, X3; \
	VPAND        X13, X3, X3; \
	VPSLLD       $4, X3, X3; \
	VPOR         X3, X2, X2; \
	VPSUBB       X15, X2, X2; \
	VPMOVSXBW    X2, Y2; \
	VPERMQ       $0x44, Y2, Y8; \
	VPERMQ       $0xee, Y2, Y9; \
	VMOVDQU      (SI), Y6; \
	VPXOR        Y7, Y7, Y7; \
	VMOVDQU      32(SI), Y4; \
	Q3_K_PART(0, 0, 0, 0, 0, Y8); \
	Q3_K_PART(2, 32, 1, 32, 32, Y8); \
	Q3_K_PART(4, 64, 2, 64, 64, Y8); \
	Q3_K_PART(6, 96, 3, 96, 96, Y8); \
	VMOVDQU      64(SI), Y4; \
	Q3_K_PART(0, 128, 4, 128, 0, Y9); \
	Q3_K_PART(2, 160, 5, 160, 32, Y9); \
	Q3_K_PART(4, 192, 6, 192, 64, Y9); \
	Q3_K_PART(6, 224, 7, 224, 96, Y9); \
	MOVWLZX      108(SI), AX; \
	VMOVD        AX, X5; \
	VCVTPH2PS    X5, X5; \
	VMULSS       (DX), X5, X5; \
	K_FINISH

// func rowsQ2_KAVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *int16)
TEXT ·rowsQ2_KAVX2(SB), NOSPLIT, $0-64
	ROWS_BEGIN
	BYTES($0x0f0f0f0f, X14, Y14)
	BYTES($0x03030303, X13, Y13)
	ROWSK(Q2_K, 84, q2krow, q2kloop)
	VZEROUPPER
	RET

// func rowsQ3_KAVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *int16)
TEXT ·rowsQ3_KAVX2(SB), NOSPLIT, $0-64
	ROWS_BEGIN
	BYTES($0x0f0f0f0f, X14, Y14)
	BYTES($0x03030303, X13, Y13)
	BYTES($0x20202020, X15, Y15)
	ROWSK(Q3_K, 110, q3krow, q3kloop)
	VZEROUPPER
	RET

// func rowsQ4_KAVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *int16)
TEXT ·rowsQ4_KAVX2(SB), NOSPLIT, $0-64
	ROWS_BEGIN
	BYTES($0x0f0f0f0f, X14, Y14)
	ROWSK(Q4_K, 144, q4krow, q4kloop)
	VZEROUPPER
	RET

// func rowsQ5_KAVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *int16)
TEXT ·rowsQ5_KAVX2(SB), NOSPLIT, $0-64
	ROWS_BEGIN
	BYTES($0x0f0f0f0f, X14, Y14)
	ROWSK(Q5_K, 176, q5krow, q5kloop)
	VZEROUPPER
	RET

// func rowsQ6_KAVX2(out *float32, w *byte, stride, rows, nb int, xq *int8, xd *float32, sums *int16)
TEXT ·rowsQ6_KAVX2(SB), NOSPLIT, $0-64
	ROWS_BEGIN
	BYTES($0x0f0f0f0f, X14, Y14)
	BYTES($0x03030303, X13, Y13)
	ROWSK(Q6_K, 210, q6krow, q6kloop)
	VZEROUPPER
	RET

// BF16_8 adds 8 products of bfloat16 weights at wo(SI), widened by a 16-bit
// shift (exact), and float32 x at xo(DI) into acc.
#define BF16_8(wo, xo, acc) \
	VPMOVZXWD   wo(SI), Y4; \
	VPSLLD      $16, Y4, Y4; \
	VFMADD231PS xo(DI), Y4, acc

// func rowsBF16AVX2(out *float32, w *byte, stride, rows, n int, x *float32)
// n, a positive multiple of 8: 32 per iteration into four accumulators, then 8
// at a time, reduced as dotAVX2.
TEXT ·rowsBF16AVX2(SB), NOSPLIT, $0-48
	ROWS_BEGIN

bf16row:
	MOVQ   R10, SI
	MOVQ   n+32(FP), CX
	MOVQ   x+40(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JLT    bf16tail

bf16loop32:
	BF16_8(0, 0, Y0)
	BF16_8(16, 32, Y1)
	BF16_8(32, 64, Y2)
	BF16_8(48, 96, Y3)
	ADDQ $64, SI
	ADDQ $128, DI
	SUBQ $32, CX
	CMPQ CX, $32
	JGE  bf16loop32

bf16tail:
	TESTQ CX, CX
	JZ    bf16done

bf16loop8:
	BF16_8(0, 0, Y0)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ  bf16loop8

bf16done:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       X0, (R9)
	ADDQ         $4, R9
	ADDQ         R11, R10
	DECQ         R12
	JNZ          bf16row
	VZEROUPPER
	RET

// kScale16: VPSHUFB indexes that copy int16 scale i of a 16-byte lane to
// every int16 lane, for i = 0..7, 32 bytes each (ggml's get_scale_shuffle_k4).
DATA kScale16<>+0(SB)/8, $0x0100010001000100
DATA kScale16<>+8(SB)/8, $0x0100010001000100
DATA kScale16<>+16(SB)/8, $0x0100010001000100
DATA kScale16<>+24(SB)/8, $0x0100010001000100
DATA kScale16<>+32(SB)/8, $0x0302030203020302
DATA kScale16<>+40(SB)/8, $0x0302030203020302
DATA kScale16<>+48(SB)/8, $0x0302030203020302
DATA kScale16<>+56(SB)/8, $0x0302030203020302
DATA kScale16<>+64(SB)/8, $0x0504050405040504
DATA kScale16<>+72(SB)/8, $0x0504050405040504
DATA kScale16<>+80(SB)/8, $0x0504050405040504
DATA kScale16<>+88(SB)/8, $0x0504050405040504
DATA kScale16<>+96(SB)/8, $0x0706070607060706
DATA kScale16<>+104(SB)/8, $0x0706070607060706
DATA kScale16<>+112(SB)/8, $0x0706070607060706
DATA kScale16<>+120(SB)/8, $0x0706070607060706
DATA kScale16<>+128(SB)/8, $0x0908090809080908
DATA kScale16<>+136(SB)/8, $0x0908090809080908
DATA kScale16<>+144(SB)/8, $0x0908090809080908
DATA kScale16<>+152(SB)/8, $0x0908090809080908
DATA kScale16<>+160(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA kScale16<>+168(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA kScale16<>+176(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA kScale16<>+184(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA kScale16<>+192(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA kScale16<>+200(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA kScale16<>+208(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA kScale16<>+216(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA kScale16<>+224(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA kScale16<>+232(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA kScale16<>+240(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA kScale16<>+248(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL kScale16<>(SB), RODATA|NOPTR, $256

// kScalePair: for i = 0..3, int16 scale 2i to the low 128 bits and 2i+1 to
// the high ones, 32 bytes each (ggml's get_scale_shuffle_q3k).
DATA kScalePair<>+0(SB)/8, $0x0100010001000100
DATA kScalePair<>+8(SB)/8, $0x0100010001000100
DATA kScalePair<>+16(SB)/8, $0x0302030203020302
DATA kScalePair<>+24(SB)/8, $0x0302030203020302
DATA kScalePair<>+32(SB)/8, $0x0504050405040504
DATA kScalePair<>+40(SB)/8, $0x0504050405040504
DATA kScalePair<>+48(SB)/8, $0x0706070607060706
DATA kScalePair<>+56(SB)/8, $0x0706070607060706
DATA kScalePair<>+64(SB)/8, $0x0908090809080908
DATA kScalePair<>+72(SB)/8, $0x0908090809080908
DATA kScalePair<>+80(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA kScalePair<>+88(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA kScalePair<>+96(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA kScalePair<>+104(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA kScalePair<>+112(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA kScalePair<>+120(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL kScalePair<>(SB), RODATA|NOPTR, $128

// kScale8: for i = 0..7, int8 scale 2i to bytes 0..7 and 2i+1 to bytes
// 8..15, 16 bytes each (ggml's get_scale_shuffle).
DATA kScale8<>+0(SB)/8, $0x0000000000000000
DATA kScale8<>+8(SB)/8, $0x0101010101010101
DATA kScale8<>+16(SB)/8, $0x0202020202020202
DATA kScale8<>+24(SB)/8, $0x0303030303030303
DATA kScale8<>+32(SB)/8, $0x0404040404040404
DATA kScale8<>+40(SB)/8, $0x0505050505050505
DATA kScale8<>+48(SB)/8, $0x0606060606060606
DATA kScale8<>+56(SB)/8, $0x0707070707070707
DATA kScale8<>+64(SB)/8, $0x0808080808080808
DATA kScale8<>+72(SB)/8, $0x0909090909090909
DATA kScale8<>+80(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA kScale8<>+88(SB)/8, $0x0b0b0b0b0b0b0b0b
DATA kScale8<>+96(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA kScale8<>+104(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA kScale8<>+112(SB)/8, $0x0e0e0e0e0e0e0e0e
DATA kScale8<>+120(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL kScale8<>(SB), RODATA|NOPTR, $128

// bitMask: 32 bytes of 1<<b for b = 0..7.
DATA bitMask<>+0(SB)/8, $0x0101010101010101
DATA bitMask<>+8(SB)/8, $0x0101010101010101
DATA bitMask<>+16(SB)/8, $0x0101010101010101
DATA bitMask<>+24(SB)/8, $0x0101010101010101
DATA bitMask<>+32(SB)/8, $0x0202020202020202
DATA bitMask<>+40(SB)/8, $0x0202020202020202
DATA bitMask<>+48(SB)/8, $0x0202020202020202
DATA bitMask<>+56(SB)/8, $0x0202020202020202
DATA bitMask<>+64(SB)/8, $0x0404040404040404
DATA bitMask<>+72(SB)/8, $0x0404040404040404
DATA bitMask<>+80(SB)/8, $0x0404040404040404
DATA bitMask<>+88(SB)/8, $0x0404040404040404
DATA bitMask<>+96(SB)/8, $0x0808080808080808
DATA bitMask<>+104(SB)/8, $0x0808080808080808
DATA bitMask<>+112(SB)/8, $0x0808080808080808
DATA bitMask<>+120(SB)/8, $0x0808080808080808
DATA bitMask<>+128(SB)/8, $0x1010101010101010
DATA bitMask<>+136(SB)/8, $0x1010101010101010
DATA bitMask<>+144(SB)/8, $0x1010101010101010
DATA bitMask<>+152(SB)/8, $0x1010101010101010
DATA bitMask<>+160(SB)/8, $0x2020202020202020
DATA bitMask<>+168(SB)/8, $0x2020202020202020
DATA bitMask<>+176(SB)/8, $0x2020202020202020
DATA bitMask<>+184(SB)/8, $0x2020202020202020
DATA bitMask<>+192(SB)/8, $0x4040404040404040
DATA bitMask<>+200(SB)/8, $0x4040404040404040
DATA bitMask<>+208(SB)/8, $0x4040404040404040
DATA bitMask<>+216(SB)/8, $0x4040404040404040
DATA bitMask<>+224(SB)/8, $0x8080808080808080
DATA bitMask<>+232(SB)/8, $0x8080808080808080
DATA bitMask<>+240(SB)/8, $0x8080808080808080
DATA bitMask<>+248(SB)/8, $0x8080808080808080
GLOBL bitMask<>(SB), RODATA|NOPTR, $256

// q6High: 32 bytes each of 0x0c, 0x30 and 0xc0, Q6_K's high bits 2-3, 4-5, 6-7.
DATA q6High<>+0(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA q6High<>+8(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA q6High<>+16(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA q6High<>+24(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA q6High<>+32(SB)/8, $0x3030303030303030
DATA q6High<>+40(SB)/8, $0x3030303030303030
DATA q6High<>+48(SB)/8, $0x3030303030303030
DATA q6High<>+56(SB)/8, $0x3030303030303030
DATA q6High<>+64(SB)/8, $0xc0c0c0c0c0c0c0c0
DATA q6High<>+72(SB)/8, $0xc0c0c0c0c0c0c0c0
DATA q6High<>+80(SB)/8, $0xc0c0c0c0c0c0c0c0
DATA q6High<>+88(SB)/8, $0xc0c0c0c0c0c0c0c0
GLOBL q6High<>(SB), RODATA|NOPTR, $96

// k4Shift, k4Low, k4High unpack Q4_K's and Q5_K's 12 scale bytes (as the
// dwords u0, u1, u2) to 8 scales and 8 mins, ggml's utmp (scaleMinK4):
// [u0 & 0x3f3f3f3f, u2 & 0x0f0f0f0f | (u0>>6 & 0x03030303)<<4, u1 & 0x3f3f3f3f,
// u2>>4 & 0x0f0f0f0f | (u1>>6 & 0x03030303)<<4].
DATA k4Shift<>+0(SB)/8, $0x0000000000000000
DATA k4Shift<>+8(SB)/8, $0x0000000400000000
GLOBL k4Shift<>(SB), RODATA|NOPTR, $16
DATA k4Low<>+0(SB)/8, $0x0f0f0f0f3f3f3f3f
DATA k4Low<>+8(SB)/8, $0x0f0f0f0f3f3f3f3f
GLOBL k4Low<>(SB), RODATA|NOPTR, $16
DATA k4High<>+0(SB)/8, $0x0303030300000000
DATA k4High<>+8(SB)/8, $0x0303030300000000
GLOBL k4High<>(SB), RODATA|NOPTR, $16

// q3Shift: the shifts that unpack Q3_K's scales: [0, 0, 4, 4] for the low
// 4 bits of aux0, aux1, aux0, aux1 and [0, 2, 4, 6] for the high 2 bits of aux2.
DATA q3Shift<>+0(SB)/8, $0x0000000000000000
DATA q3Shift<>+8(SB)/8, $0x0000000400000004
DATA q3Shift<>+16(SB)/8, $0x0000000200000000
DATA q3Shift<>+24(SB)/8, $0x0000000600000004
GLOBL q3Shift<>(SB), RODATA|NOPTR, $32
