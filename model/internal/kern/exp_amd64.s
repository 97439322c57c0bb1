//go:build amd64 && !noasm && gc

#include "textflag.h"

// func expShiftAVX2(y, x *float32, n int, m float32, consts *float32)
// ExpShift on n values, n a multiple of 8; consts is expConsts (15
// constants of 8 lanes, 32 bytes each). The operations are those of
// expShiftGo, in its order, each rounded on its own.
TEXT ·expShiftAVX2(SB), NOSPLIT, $0-40
	MOVQ y+0(FP), DX
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS m+24(FP), Y15
	MOVQ consts+32(FP), DI
	VXORPS Y14, Y14, Y14

exp_loop:
	VMOVUPS (SI), Y0
	VSUBPS  Y15, Y0, Y0      // t = x - m
	VMULPS  0(DI), Y0, Y1    // t*log2e
	VADDPS  32(DI), Y1, Y1   // + 0.5
	VROUNDPS $1, Y1, Y1      // fx = floor
	VMULPS  64(DI), Y1, Y2   // fx*c1
	VSUBPS  Y2, Y0, Y2       // r = t - fx*c1
	VMULPS  96(DI), Y1, Y3   // fx*c2
	VSUBPS  Y3, Y2, Y2       // r -= fx*c2
	VMULPS  Y2, Y2, Y3       // z = r*r
	VMOVUPS 128(DI), Y4      // p
	VMULPS  Y2, Y4, Y4
	VADDPS  160(DI), Y4, Y4
	VMULPS  Y2, Y4, Y4
	VADDPS  192(DI), Y4, Y4
	VMULPS  Y2, Y4, Y4
	VADDPS  224(DI), Y4, Y4
	VMULPS  Y2, Y4, Y4
	VADDPS  256(DI), Y4, Y4
	VMULPS  Y2, Y4, Y4
	VADDPS  288(DI), Y4, Y4
	VMULPS  Y3, Y4, Y4       // p*z
	VADDPS  Y2, Y4, Y4       // + r
	VADDPS  320(DI), Y4, Y4  // + 1
	VCVTTPS2DQ Y1, Y5        // n
	VPSRLD  $31, Y5, Y6
	VPADDD  Y6, Y5, Y6
	VPSRAD  $1, Y6, Y6       // h = n/2, rounded toward zero
	VPSUBD  Y6, Y5, Y5       // n - h
	VPADDD  448(DI), Y6, Y6
	VPSLLD  $23, Y6, Y6      // 2^h
	VPADDD  448(DI), Y5, Y5
	VPSLLD  $23, Y5, Y5      // 2^(n-h)
	VMULPS  Y6, Y4, Y4
	VMULPS  Y5, Y4, Y4
	VCMPPS  $0x1e, 352(DI), Y0, Y7 // t > hi
	VBLENDVPS Y7, 416(DI), Y4, Y4  // +Inf
	VCMPPS  $0x11, 384(DI), Y0, Y7 // t < lo
	VBLENDVPS Y7, Y14, Y4, Y4      // 0
	VCMPPS  $3, Y0, Y0, Y7         // t is NaN
	VBLENDVPS Y7, Y0, Y4, Y4       // t
	VMOVUPS Y4, (DX)
	ADDQ    $32, SI
	ADDQ    $32, DX
	SUBQ    $8, CX
	JNZ     exp_loop
	VZEROUPPER
	RET
