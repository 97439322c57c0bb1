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
