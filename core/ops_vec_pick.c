/*
** ops_vec_pick.c — the portable table of vector kernels (ops_vec.h at
** level 0) and the choice among the tables (ops_vec_table.h) by the
** instruction set cpu.h picks at run time. Apart from ops.c so that the
** int8 kernel (gemm_q8.c, below ops.c in the call graph) can LayerNorm the
** rows it is about to quantize with the very kernel ram_layernorm uses.
*/
#include "cpu.h"
#include "ops_vec_table.h"

#define RAM_OPS_LEVEL 0
#define OPS_TABLE ram_ops_vec_portable
#include "ops_vec.h"
#undef RAM_OPS_LEVEL

const struct ram_ops_vec *ram_ops_vec_pick(void)
{
    switch (ram_cpu_isa()) {
    case RAM_ISA_AVX512: return &ram_ops_vec_avx512;
    case RAM_ISA_AVX2: return &ram_ops_vec_avx2;
    default: return &ram_ops_vec_portable;
    }
}
