/*
** ops.c — element-wise kernels and the single caller of cblas_sgemm.
** Kernels are plain loops that the compiler vectorises; reductions that
** decide accuracy (LayerNorm statistics) accumulate in double so that our
** results stay within the golden tolerance whatever the row width.
*/
#include "ops.h"

#include "ram.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* OpenBLAS's own prototypes; declared here to avoid depending on its extra headers. */
extern void openblas_set_num_threads(int);
extern int openblas_get_num_threads(void);

void ram_gemm(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] *= beta;
        return;
    }
    cblas_sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans, tB ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

void ram_linear(const float *x, int rows, int in, const float *W, const float *b, int out, float *y)
{
    if (b) {
        for (int r = 0; r < rows; r++) memcpy(y + (size_t)r * out, b, sizeof(float) * out);
    }
    ram_gemm(0, 1, rows, out, in, 1.0f, x, in, W, in, b ? 1.0f : 0.0f, y, out);
}

void ram_layernorm(const float *x, float *y, int rows, int cols, const float *w, const float *b, float eps)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        double s = 0, ss = 0;
        for (int i = 0; i < cols; i++) s += xr[i];
        double mean = s / cols;
        for (int i = 0; i < cols; i++) {
            double d = xr[i] - mean;
            ss += d * d;
        }
        float inv = (float)(1.0 / sqrt(ss / cols + (double)eps));
        float m = (float)mean;
        for (int i = 0; i < cols; i++) yr[i] = (xr[i] - m) * inv * w[i] + b[i];
    }
}

void ram_gelu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void ram_quick_gelu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

void ram_relu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

void ram_softmax_rows(float *x, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * cols;
        float mx = xr[0];
        for (int i = 1; i < cols; i++) mx = xr[i] > mx ? xr[i] : mx;
        float s = 0;
        for (int i = 0; i < cols; i++) {
            xr[i] = expf(xr[i] - mx);
            s += xr[i];
        }
        float inv = 1.0f / s;
        for (int i = 0; i < cols; i++) xr[i] *= inv;
    }
}

void ram_add(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

float ram_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

void ram_ops_set_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }
int ram_ops_get_threads(void) { return openblas_get_num_threads(); }

void ram_set_threads(int n) { ram_ops_set_threads(n); }
int ram_get_threads(void) { return ram_ops_get_threads(); }

void ram_l2_normalize(float *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)v[i] * v[i];
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < n; i++) v[i] *= inv;
}
