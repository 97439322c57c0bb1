//go:build arm64 && !noasm && gc

#include "textflag.h"
#include "neon_arm64.h"

// Field offsets of dwparams (dw.go).
#define DW_DST 0
#define DW_SRC 8
#define DW_OFFS 16
#define DW_W 24
#define DW_N 32
#define DW_NTAPS 40
#define DW_BIAS 48
#define DW_ACTF 52
#define DW_ROWS 56
#define DW_SPITCH 64
#define DW_DPITCH 72
#define DW_EA 80
#define DW_MULX 96

// ---------------------------------------------------------------------------
// Depthwise 3×3 kernel (NEON): for each of rows rows,
// dst[i] = ep(bias + Σ_t w[t]·src[offs[t]+i]) for i in [0, n), then
// src += srcPitch, dst += dstPitch. Taps as newDWPlan builds them:
// offs[3·kh+kw] = offs[3·kh] + offs[kw], offs[0] = 0. One pointer per tap
// (R8..R15, R19), advanced by post-indexed loads; the nine weights in
// V16..V24; bias in V29; epilogue constants ea, eb, lo, hi in V25..V28.
// Rows are computed 32 lanes at a time (accumulators V0..V7, loads into
// V8..V15), then 4 at a time; the last 1 to 3 lanes load a whole vector
// (reading at most 3 elements past the row's taps, within dwSlack) and store
// lane by lane. Taps are added in order, one FMA each, as dwGo compiled for
// arm64 does: the two agree bit for bit.

// The 32-lane tap through pointer p with the weight in V(w).
#define DW_T32(p, w) \
	VLD1.P 64(p), [V8.S4, V9.S4, V10.S4, V11.S4] \
	VLD1.P 64(p), [V12.S4, V13.S4, V14.S4, V15.S4] \
	FMLA4(0, 8, w) \
	FMLA4(1, 9, w) \
	FMLA4(2, 10, w) \
	FMLA4(3, 11, w) \
	FMLA4(4, 12, w) \
	FMLA4(5, 13, w) \
	FMLA4(6, 14, w) \
	FMLA4(7, 15, w)

#define DW_T4(p, w) \
	VLD1.P 16(p), [V8.S4] \
	FMLA4(0, 8, w)

#define DW_T1(p, w) \
	VLD1 (p), [V8.S4] \
	FMLA4(0, 8, w)

#define DW_TAPS32 \
	DW_T32(R8, 16) \
	DW_T32(R9, 17) \
	DW_T32(R10, 18) \
	DW_T32(R11, 19) \
	DW_T32(R12, 20) \
	DW_T32(R13, 21) \
	DW_T32(R14, 22) \
	DW_T32(R15, 23) \
	DW_T32(R19, 24)

#define DW_TAPS4 \
	DW_T4(R8, 16) \
	DW_T4(R9, 17) \
	DW_T4(R10, 18) \
	DW_T4(R11, 19) \
	DW_T4(R12, 20) \
	DW_T4(R13, 21) \
	DW_T4(R14, 22) \
	DW_T4(R15, 23) \
	DW_T4(R19, 24)

#define DW_TAPS1 \
	DW_T1(R8, 16) \
	DW_T1(R9, 17) \
	DW_T1(R10, 18) \
	DW_T1(R11, 19) \
	DW_T1(R12, 20) \
	DW_T1(R13, 21) \
	DW_T1(R14, 22) \
	DW_T1(R15, 23) \
	DW_T1(R19, 24)

// The epilogue of V(x) (temporary V30), as epilogue.apply: a multiply and
// then an add, never an FMA.
#define DW_ACT(x) \
	FMUL4(30, x, 25) \
	FADD4(30, 30, 26) \
	FMAX4(30, 30, 27) \
	FMIN4(x, 30, 28)

#define DW_ACTX(x) \
	FMUL4(30, x, 25) \
	FADD4(30, 30, 26) \
	FMAX4(30, 30, 27) \
	FMIN4(30, 30, 28) \
	FMUL4(x, 30, x)

#define DW_BIAS8 \
	VORR V29.B16, V29.B16, V0.B16 \
	VORR V29.B16, V29.B16, V1.B16 \
	VORR V29.B16, V29.B16, V2.B16 \
	VORR V29.B16, V29.B16, V3.B16 \
	VORR V29.B16, V29.B16, V4.B16 \
	VORR V29.B16, V29.B16, V5.B16 \
	VORR V29.B16, V29.B16, V6.B16 \
	VORR V29.B16, V29.B16, V7.B16

// func dw3x3NEON(p *dwparams)
TEXT ·dw3x3NEON(SB), NOSPLIT, $0-8
	MOVD p+0(FP), R0
	MOVD DW_ROWS(R0), R4
	CMP  $0, R4
	BLE  dw3n_ret
	MOVD DW_W(R0), R1
	VLD1R.P 4(R1), [V16.S4]
	VLD1R.P 4(R1), [V17.S4]
	VLD1R.P 4(R1), [V18.S4]
	VLD1R.P 4(R1), [V19.S4]
	VLD1R.P 4(R1), [V20.S4]
	VLD1R.P 4(R1), [V21.S4]
	VLD1R.P 4(R1), [V22.S4]
	VLD1R.P 4(R1), [V23.S4]
	VLD1R (R1), [V24.S4]
	ADD  $DW_EA, R0, R1
	VLD1R.P 4(R1), [V25.S4]
	VLD1R.P 4(R1), [V26.S4]
	VLD1R.P 4(R1), [V27.S4]
	VLD1R (R1), [V28.S4]
	ADD  $DW_BIAS, R0, R1
	VLD1R (R1), [V29.S4]
	MOVWU DW_ACTF(R0), R24
	MOVWU DW_MULX(R0), R25
	// Byte offsets: R2 = offs[1], R3 = offs[2], R21 = offs[3], R22 = offs[6].
	MOVD DW_OFFS(R0), R1
	MOVD 8(R1), R2
	LSL  $2, R2
	MOVD 16(R1), R3
	LSL  $2, R3
	MOVD 24(R1), R21
	LSL  $2, R21
	MOVD 48(R1), R22
	LSL  $2, R22
	MOVD DW_SRC(R0), R5
	MOVD DW_DST(R0), R6
	MOVD DW_SPITCH(R0), R7
	LSL  $2, R7
	MOVD DW_DPITCH(R0), R23
	LSL  $2, R23

dw3n_row:
	MOVD R5, R8
	ADD  R2, R5, R9
	ADD  R3, R5, R10
	ADD  R21, R5, R11
	ADD  R2, R11, R12
	ADD  R3, R11, R13
	ADD  R22, R5, R14
	ADD  R2, R14, R15
	ADD  R3, R14, R19
	MOVD R6, R20
	MOVD DW_N(R0), R1

dw3n_blk32:
	CMP  $32, R1
	BLT  dw3n_blk4
	DW_BIAS8
	DW_TAPS32
	CBZ  R24, dw3n_st32
	CBZ  R25, dw3n_plain32
	DW_ACTX(0)
	DW_ACTX(1)
	DW_ACTX(2)
	DW_ACTX(3)
	DW_ACTX(4)
	DW_ACTX(5)
	DW_ACTX(6)
	DW_ACTX(7)
	B    dw3n_st32

dw3n_plain32:
	DW_ACT(0)
	DW_ACT(1)
	DW_ACT(2)
	DW_ACT(3)
	DW_ACT(4)
	DW_ACT(5)
	DW_ACT(6)
	DW_ACT(7)

dw3n_st32:
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R20)
	VST1.P [V4.S4, V5.S4, V6.S4, V7.S4], 64(R20)
	SUB  $32, R1
	B    dw3n_blk32

dw3n_blk4:
	CMP  $4, R1
	BLT  dw3n_tail
	VORR V29.B16, V29.B16, V0.B16
	DW_TAPS4
	CBZ  R24, dw3n_st4
	CBZ  R25, dw3n_plain4
	DW_ACTX(0)
	B    dw3n_st4

dw3n_plain4:
	DW_ACT(0)

dw3n_st4:
	VST1.P [V0.S4], 16(R20)
	SUB  $4, R1
	B    dw3n_blk4

dw3n_tail:
	CBZ  R1, dw3n_next
	VORR V29.B16, V29.B16, V0.B16
	DW_TAPS1
	CBZ  R24, dw3n_st1
	CBZ  R25, dw3n_plain1
	DW_ACTX(0)
	B    dw3n_st1

dw3n_plain1:
	DW_ACT(0)

dw3n_st1:
	VST1.P V0.S[0], 4(R20)
	CMP  $2, R1
	BLT  dw3n_next
	VST1.P V0.S[1], 4(R20)
	CMP  $3, R1
	BLT  dw3n_next
	VST1 V0.S[2], (R20)

dw3n_next:
	ADD  R7, R5
	ADD  R23, R6
	SUBS $1, R4
	BNE  dw3n_row

dw3n_ret:
	RET

// ---------------------------------------------------------------------------
// Depthwise tap kernel (NEON) for any taps: as dw3x3NEON, but each block of
// lanes walks the offs and w arrays (weights broadcast per tap), 16 lanes at
// a time (accumulators V0..V3, loads into V8..V11), then 4, then the last 1
// to 3 lanes (reading at most 3 elements past the row's taps). Taps in
// order, one FMA each, as dwGo.

// The taps of one block: R19 = the block's byte offset in the row, R5 the
// row; LOAD loads from R13 and FMAS adds V16 times the loads.
#define DWG_TAPS(LOAD, FMAS, lbl) \
	MOVD DW_OFFS(R0), R9 \
	MOVD DW_W(R0), R10 \
	MOVD DW_NTAPS(R0), R11 \
lbl: \
	MOVD.P 8(R9), R12 \
	VLD1R.P 4(R10), [V16.S4] \
	ADD  R12<<2, R5, R13 \
	ADD  R19, R13 \
	LOAD \
	FMAS \
	SUBS $1, R11 \
	BNE  lbl

#define DWG_LD16 VLD1 (R13), [V8.S4, V9.S4, V10.S4, V11.S4]
#define DWG_FMA16 FMLA4(0, 8, 16); FMLA4(1, 9, 16); FMLA4(2, 10, 16); FMLA4(3, 11, 16)
#define DWG_LD4 VLD1 (R13), [V8.S4]
#define DWG_FMA4 FMLA4(0, 8, 16)

// func dwNEON(p *dwparams)
TEXT ·dwNEON(SB), NOSPLIT, $0-8
	MOVD p+0(FP), R0
	MOVD DW_ROWS(R0), R4
	CMP  $0, R4
	BLE  dwg_ret
	MOVD DW_NTAPS(R0), R1
	CMP  $0, R1
	BLE  dwg_ret
	ADD  $DW_EA, R0, R1
	VLD1R.P 4(R1), [V25.S4]
	VLD1R.P 4(R1), [V26.S4]
	VLD1R.P 4(R1), [V27.S4]
	VLD1R (R1), [V28.S4]
	ADD  $DW_BIAS, R0, R1
	VLD1R (R1), [V29.S4]
	MOVWU DW_ACTF(R0), R24
	MOVWU DW_MULX(R0), R25
	MOVD DW_SRC(R0), R5
	MOVD DW_DST(R0), R6
	MOVD DW_SPITCH(R0), R7
	LSL  $2, R7
	MOVD DW_DPITCH(R0), R23
	LSL  $2, R23

dwg_row:
	MOVD R6, R20
	MOVD $0, R19
	MOVD DW_N(R0), R1

dwg_blk16:
	CMP  $16, R1
	BLT  dwg_blk4
	VORR V29.B16, V29.B16, V0.B16
	VORR V29.B16, V29.B16, V1.B16
	VORR V29.B16, V29.B16, V2.B16
	VORR V29.B16, V29.B16, V3.B16
	DWG_TAPS(DWG_LD16, DWG_FMA16, dwg_tap16)
	CBZ  R24, dwg_st16
	CBZ  R25, dwg_plain16
	DW_ACTX(0)
	DW_ACTX(1)
	DW_ACTX(2)
	DW_ACTX(3)
	B    dwg_st16

dwg_plain16:
	DW_ACT(0)
	DW_ACT(1)
	DW_ACT(2)
	DW_ACT(3)

dwg_st16:
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R20)
	ADD  $64, R19
	SUB  $16, R1
	B    dwg_blk16

dwg_blk4:
	CMP  $4, R1
	BLT  dwg_tail
	VORR V29.B16, V29.B16, V0.B16
	DWG_TAPS(DWG_LD4, DWG_FMA4, dwg_tap4)
	CBZ  R24, dwg_st4
	CBZ  R25, dwg_plain4
	DW_ACTX(0)
	B    dwg_st4

dwg_plain4:
	DW_ACT(0)

dwg_st4:
	VST1.P [V0.S4], 16(R20)
	ADD  $16, R19
	SUB  $4, R1
	B    dwg_blk4

dwg_tail:
	CBZ  R1, dwg_next
	VORR V29.B16, V29.B16, V0.B16
	DWG_TAPS(DWG_LD4, DWG_FMA4, dwg_tap1)
	CBZ  R24, dwg_st1
	CBZ  R25, dwg_plain1
	DW_ACTX(0)
	B    dwg_st1

dwg_plain1:
	DW_ACT(0)

dwg_st1:
	VST1.P V0.S[0], 4(R20)
	CMP  $2, R1
	BLT  dwg_next
	VST1.P V0.S[1], 4(R20)
	CMP  $3, R1
	BLT  dwg_next
	VST1 V0.S[2], (R20)

dwg_next:
	ADD  R7, R5
	ADD  R23, R6
	SUBS $1, R4
	BNE  dwg_row

dwg_ret:
	RET
