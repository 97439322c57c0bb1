//go:build amd64 && !noasm && gc

#include "textflag.h"

// func affineClipGateAVX2(x *float32, n int, gate *Gate)
// AffineClipGate on x[0:n], n a multiple of 8. Gate's fields, in order:
// PS, PB, A, Hi, M, QS, QB (float32 each). Every multiply and add is its own
// instruction (two roundings, never an FMA), as in the Go code.
TEXT ·affineClipGateAVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ gate+16(FP), DI
	VBROADCASTSS 0(DI), Y8   // PS
	VBROADCASTSS 4(DI), Y9   // PB
	VBROADCASTSS 8(DI), Y10  // A
	VBROADCASTSS 12(DI), Y11 // Hi, whose bits the integer min uses
	VBROADCASTSS 16(DI), Y12 // M
	VBROADCASTSS 20(DI), Y13 // QS
	VBROADCASTSS 24(DI), Y14 // QB

gate_loop:
	VMOVUPS (SI), Y0
	VMULPS  Y8, Y0, Y0  // v·PS
	VADDPS  Y9, Y0, Y0  // + PB
	VADDPS  Y10, Y0, Y1 // u = v + A
	VPSRAD  $31, Y1, Y2 // sign mask
	VPANDN  Y1, Y2, Y1  // u &^ mask: negatives, -0 and negative NaN become +0
	VPMINSD Y11, Y1, Y1 // min(u, Hi) on the bits
	VMULPS  Y1, Y0, Y0  // v·u
	VMULPS  Y12, Y0, Y0 // ·M
	VMULPS  Y13, Y0, Y0 // ·QS
	VADDPS  Y14, Y0, Y0 // + QB
	VMOVUPS Y0, (SI)
	ADDQ    $32, SI
	SUBQ    $8, CX
	JNZ     gate_loop
	VZEROUPPER
	RET
