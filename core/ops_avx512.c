/*
** ops_avx512.c — ops_vec.h's kernels compiled for AVX-512 (target pragmas: whatever
** the build's -march), called by ops.c only when cpu.c found the CPU runs them.
*/
#if defined(__x86_64__) && defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))), \
                             apply_to = function)
#elif defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RAM_OPS_LEVEL 2
#else
#define RAM_OPS_LEVEL 0 /* not x86: never chosen by cpu.c; the portable code keeps the table valid */
#endif
#define OPS_TABLE ram_ops_vec_avx512
#include "ops_vec.h"

#if defined(__x86_64__) && defined(__clang__)
#pragma clang attribute pop
#endif
