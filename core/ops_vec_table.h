/*
** ops_vec_table.h — the table of vector kernels that ops_vec.h builds once
** per instruction set (ops_vec_pick.c, ops_avx2.c, ops_avx512.c); ops.c
** and gemm_q8.c call the one cpu.h chooses. Each entry does what the ops.h function of that name
** does, on one thread.
*/
#ifndef RAM_OPS_VEC_TABLE_H
#define RAM_OPS_VEC_TABLE_H

#include <stddef.h>

struct ram_ops_vec {
    void (*layernorm_rows)(const float *x, float *y, int rows, int cols, const float *w, const float *b, float eps);
    void (*gelu)(float *x, size_t n);
    void (*quick_gelu)(float *x, size_t n);
    void (*relu)(float *x, size_t n);
    void (*softmax_rows)(float *x, int rows, int cols, float div); /* of x / div by rows */
    void (*add)(float *y, const float *x, size_t n);
    float (*dot)(const float *a, const float *b, int n);
    void (*attention_head)(const float *q, const float *k, const float *v, int ld, int N, int d, float scale,
                           const float *s0, float *s, float *kt, float *o, int ldo);
    void (*reweight_rows)(const float *q, const float *rows, int n, int des, int E, float *w, float *out);
    /* y[r * ldy + o] = dot(x row r, W row o, n) + b[o] (b may be NULL), each
    ** bit for bit dot()'s, for rows x outs pairs at once. */
    void (*dots)(const float *x, int rows, const float *W, int outs, int n, const float *b, float *y, int ldy);
};

extern const struct ram_ops_vec ram_ops_vec_portable, ram_ops_vec_avx2, ram_ops_vec_avx512;

/* The table of the instruction set cpu.h chooses (ops_vec_pick.c). */
const struct ram_ops_vec *ram_ops_vec_pick(void);

/* Row x (k floats) as a product's packing reads it: LayerNorm'ed into tmp
** first when w is set (ram_layernorm's values, one row at a time, so the
** normed row stays in L1 instead of taking a pass over memory), else x. */
static inline const float *ram_row_layernormed(const float *x, int k, const float *w, const float *b, float eps,
                                               float *tmp)
{
    if (!w) return x;
    ram_ops_vec_pick()->layernorm_rows(x, tmp, 1, k, w, b, eps);
    return tmp;
}

#endif /* RAM_OPS_VEC_TABLE_H */
