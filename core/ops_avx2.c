/*
** ops_avx2.c — ops_vec.h's kernels compiled for AVX2+FMA (target pragmas: whatever
** the build's -march), called by ops.c only when cpu.c found the CPU runs them.
*/
#if defined(__x86_64__) && defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx2,fma")
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RAM_OPS_LEVEL 1
#else
#define RAM_OPS_LEVEL 0 /* not x86: never chosen by cpu.c; the portable code keeps the table valid */
#endif
#define OPS_TABLE ram_ops_vec_avx2
#include "ops_vec.h"

#if defined(__x86_64__) && defined(__clang__)
#pragma clang attribute pop
#endif
