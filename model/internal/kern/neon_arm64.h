// Shared by the arm64 assembly kernels (gemm_arm64.s, dw_arm64.s).

// Go's arm64 assembler has no floating-point vector arithmetic besides
// VFMLA, so these are encoded by hand (register numbers, all .4S):
// FMLAE: Vd += Vn·Vm.S[i] (by element); FMLA4: Vd += Vn·Vm;
// FADD4/FMUL4: Vd = Vn + Vm / Vn·Vm; FMAX4/FMIN4: Vd = max/min(Vn, Vm),
// NaN-propagating like Go's max and min.
#define FMLAE(d, n, m, i) WORD $(0x4F801000 | (((i)&1)<<21) | ((m)<<16) | (((i)>>1)<<11) | ((n)<<5) | (d))
#define FMLA4(d, n, m) WORD $(0x4E20CC00 | ((m)<<16) | ((n)<<5) | (d))
#define FADD4(d, n, m) WORD $(0x4E20D400 | ((m)<<16) | ((n)<<5) | (d))
#define FMUL4(d, n, m) WORD $(0x6E20DC00 | ((m)<<16) | ((n)<<5) | (d))
#define FMAX4(d, n, m) WORD $(0x4E20F400 | ((m)<<16) | ((n)<<5) | (d))
#define FMIN4(d, n, m) WORD $(0x4EA0F400 | ((m)<<16) | ((n)<<5) | (d))
