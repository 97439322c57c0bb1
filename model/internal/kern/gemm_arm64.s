//go:build arm64 && !noasm && gc

#include "textflag.h"
#include "neon_arm64.h"

// Field offsets of kparams (gemm.go).
#define KP_A 0
#define KP_B 8
#define KP_C 16
#define KP_BIAS 24
#define KP_K 32
#define KP_LDC 40
#define KP_FLAGS 48
#define EP_EA 56
#define EP_MULX 72

// ---------------------------------------------------------------------------
// NEON 8×12 micro-kernel. Row r of the tile in V(8+3r)..V(10+3r); V0, V1
// hold the 8 values of a packed A column, V2..V4 the 12 of a packed B row.
// Each step is one FMA per lane, k in order: the same roundings as microGo
// compiled for arm64, so the two agree bit for bit.

#define NROW(acc, a, i) \
	FMLAE(acc, 2, a, i) \
	FMLAE((acc)+1, 3, a, i) \
	FMLAE((acc)+2, 4, a, i)

#define NSTEP \
	VLD1.P 32(R1), [V0.S4, V1.S4] \
	VLD1.P 48(R2), [V2.S4, V3.S4, V4.S4] \
	NROW(8, 0, 0) \
	NROW(11, 0, 1) \
	NROW(14, 0, 2) \
	NROW(17, 0, 3) \
	NROW(20, 1, 0) \
	NROW(23, 1, 1) \
	NROW(26, 1, 2) \
	NROW(29, 1, 3)

// Adds row (acc..acc+2) of C at R7 and steps R7 to the next row.
#define NACC(acc) \
	VLD1 (R7), [V0.S4, V1.S4, V2.S4] \
	FADD4(acc, acc, 0) \
	FADD4((acc)+1, (acc)+1, 1) \
	FADD4((acc)+2, (acc)+2, 2) \
	ADD R5, R7

// Adds the next bias (at R8) to row acc..acc+2.
#define NBIAS(acc) \
	VLD1R.P 4(R8), [V0.S4] \
	FADD4(acc, acc, 0) \
	FADD4((acc)+1, (acc)+1, 0) \
	FADD4((acc)+2, (acc)+2, 0)

// min(hi, max(lo, x)) on a row, lo in V0, hi in V1.
#define NCLAMP(acc) \
	FMAX4(acc, acc, 0) \
	FMIN4(acc, acc, 1) \
	FMAX4((acc)+1, (acc)+1, 0) \
	FMIN4((acc)+1, (acc)+1, 1) \
	FMAX4((acc)+2, (acc)+2, 0) \
	FMIN4((acc)+2, (acc)+2, 1)

// The epilogue of one vector, constants V0..V3 (ea, eb, lo, hi): ea·x + eb
// is a multiply then an add (two roundings) as in epilogue.apply. NACTX
// multiplies by x as well (mulx).
#define NACT(x) \
	FMUL4(4, x, 0) \
	FADD4(4, 4, 1) \
	FMAX4(4, 4, 2) \
	FMIN4(x, 4, 3)

#define NACTX(x) \
	FMUL4(4, x, 0) \
	FADD4(4, 4, 1) \
	FMAX4(4, 4, 2) \
	FMIN4(4, 4, 3) \
	FMUL4(x, 4, x)

#define NACTROW(acc) \
	NACT(acc) \
	NACT((acc)+1) \
	NACT((acc)+2)

#define NACTXROW(acc) \
	NACTX(acc) \
	NACTX((acc)+1) \
	NACTX((acc)+2)

#define NSTORE(a, b, c) \
	VST1 [a.S4, b.S4, c.S4], (R7) \
	ADD R5, R7

// func microNEON(p *kparams)
TEXT ·microNEON(SB), NOSPLIT, $0-8
	MOVD p+0(FP), R0
	MOVD KP_A(R0), R1
	MOVD KP_B(R0), R2
	MOVD KP_K(R0), R3
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16
	VEOR V24.B16, V24.B16, V24.B16
	VEOR V25.B16, V25.B16, V25.B16
	VEOR V26.B16, V26.B16, V26.B16
	VEOR V27.B16, V27.B16, V27.B16
	VEOR V28.B16, V28.B16, V28.B16
	VEOR V29.B16, V29.B16, V29.B16
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16
	CMP  $2, R3
	BLT  neon_k1

neon_k2:
	NSTEP
	NSTEP
	SUB  $2, R3
	CMP  $2, R3
	BGE  neon_k2
	CBZ  R3, neon_done

neon_k1:
	NSTEP
	SUBS $1, R3
	BNE  neon_k1

neon_done:
	MOVD KP_C(R0), R4
	MOVD KP_LDC(R0), R5
	LSL  $2, R5
	MOVD KP_FLAGS(R0), R6
	TBZ  $0, R6, neon_noacc
	MOVD R4, R7
	NACC(8)
	NACC(11)
	NACC(14)
	NACC(17)
	NACC(20)
	NACC(23)
	NACC(26)
	NACC(29)

neon_noacc:
	TBZ  $1, R6, neon_store
	MOVD KP_BIAS(R0), R8
	NBIAS(8)
	NBIAS(11)
	NBIAS(14)
	NBIAS(17)
	NBIAS(20)
	NBIAS(23)
	NBIAS(26)
	NBIAS(29)
	TBZ  $3, R6, neon_act
	ADD  $(EP_EA+8), R0, R9
	VLD1R.P 4(R9), [V0.S4]
	VLD1R (R9), [V1.S4]
	NCLAMP(8)
	NCLAMP(11)
	NCLAMP(14)
	NCLAMP(17)
	NCLAMP(20)
	NCLAMP(23)
	NCLAMP(26)
	NCLAMP(29)
	B    neon_store

neon_act:
	TBZ  $2, R6, neon_store
	ADD  $EP_EA, R0, R9
	VLD1R.P 4(R9), [V0.S4]
	VLD1R.P 4(R9), [V1.S4]
	VLD1R.P 4(R9), [V2.S4]
	VLD1R (R9), [V3.S4]
	MOVWU EP_MULX(R0), R10
	CBZ  R10, neon_actplain
	NACTXROW(8)
	NACTXROW(11)
	NACTXROW(14)
	NACTXROW(17)
	NACTXROW(20)
	NACTXROW(23)
	NACTXROW(26)
	NACTXROW(29)
	B    neon_store

neon_actplain:
	NACTROW(8)
	NACTROW(11)
	NACTROW(14)
	NACTROW(17)
	NACTROW(20)
	NACTROW(23)
	NACTROW(26)
	NACTROW(29)

neon_store:
	MOVD R4, R7
	NSTORE(V8, V9, V10)
	NSTORE(V11, V12, V13)
	NSTORE(V14, V15, V16)
	NSTORE(V17, V18, V19)
	NSTORE(V20, V21, V22)
	NSTORE(V23, V24, V25)
	NSTORE(V26, V27, V28)
	NSTORE(V29, V30, V31)
	RET

// ---------------------------------------------------------------------------
// func dotNEON(x, y *float32, n int) float32
// Σ x[i]·y[i] over i in [0, n), n ≥ 0, exactly as dotGo compiled for arm64:
// lane j of V0 is dotGo's s_j (one FMA per element, i ≡ j mod 4), the last
// n mod 4 elements go into s0, and the result is (s0 + s1) + (s2 + s3).
TEXT ·dotNEON(SB), NOSPLIT, $0-28
	MOVD x+0(FP), R0
	MOVD y+8(FP), R1
	MOVD n+16(FP), R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16

dot_blk16:
	// Four vectors at a time: still one accumulator, so the same order.
	CMP  $16, R2
	BLT  dot_blk4
	VLD1.P 64(R0), [V16.S4, V17.S4, V18.S4, V19.S4]
	VLD1.P 64(R1), [V20.S4, V21.S4, V22.S4, V23.S4]
	FMLA4(0, 16, 20)
	FMLA4(0, 17, 21)
	FMLA4(0, 18, 22)
	FMLA4(0, 19, 23)
	SUB  $16, R2
	B    dot_blk16

dot_blk4:
	CMP  $4, R2
	BLT  dot_lanes
	VLD1.P 16(R0), [V16.S4]
	VLD1.P 16(R1), [V20.S4]
	FMLA4(0, 16, 20)
	SUB  $4, R2
	B    dot_blk4

dot_lanes:
	// s1..s3 into F3..F5 before scalar FMAs on F0 clear V0's upper lanes.
	VMOV V0.S[1], V3
	VMOV V0.S[2], V4
	VMOV V0.S[3], V5
	CBZ  R2, dot_sum

dot_tail:
	FMOVS.P 4(R0), F1
	FMOVS.P 4(R1), F2
	FMADDS F2, F0, F1, F0
	SUBS $1, R2
	BNE  dot_tail

dot_sum:
	FADDS F3, F0, F0
	FADDS F5, F4, F4
	FADDS F4, F0, F0
	FMOVS F0, ret+24(FP)
	RET

// func axpyNEON(alpha float32, x, y *float32, n int)
// y[i] += alpha·x[i] over i in [0, n), one FMA per element as axpyGo.
TEXT ·axpyNEON(SB), NOSPLIT, $0-32
	FMOVS alpha+0(FP), F31
	MOVD x+8(FP), R0
	MOVD y+16(FP), R1
	MOVD n+24(FP), R2
	VDUP V31.S[0], V30.S4

axpy_blk16:
	CMP  $16, R2
	BLT  axpy_blk4
	VLD1.P 64(R0), [V16.S4, V17.S4, V18.S4, V19.S4]
	VLD1 (R1), [V20.S4, V21.S4, V22.S4, V23.S4]
	FMLA4(20, 16, 30)
	FMLA4(21, 17, 30)
	FMLA4(22, 18, 30)
	FMLA4(23, 19, 30)
	VST1.P [V20.S4, V21.S4, V22.S4, V23.S4], 64(R1)
	SUB  $16, R2
	B    axpy_blk16

axpy_blk4:
	CMP  $4, R2
	BLT  axpy_tail
	VLD1.P 16(R0), [V16.S4]
	VLD1 (R1), [V20.S4]
	FMLA4(20, 16, 30)
	VST1.P [V20.S4], 16(R1)
	SUB  $4, R2
	B    axpy_blk4

axpy_tail:
	CBZ  R2, axpy_ret
	FMOVS.P 4(R0), F1
	FMOVS (R1), F2
	FMADDS F31, F2, F1, F2
	FMOVS.P F2, 4(R1)
	SUB  $1, R2
	B    axpy_tail

axpy_ret:
	RET
