/*
** sgemm_pack.c — the generic packer of sgemm.h: a block of B (or of B^T, the
** weights' (out, in) layout) copied into the nr-wide column panels the
** micro-kernels read, the last panel zero-padded. Used by every kernel for
** B, and by the AVX-512 one for the edges of its register transposes.
*/
#include "sgemm.h"

#include <string.h>

void ram_sgemm_pack_b_generic(int tB, const float *B, long ldb, int k0, int kc, int j0, int nc, int nr, float *bp)
{
    for (int jp = 0; jp < nc; jp += nr) {
        float *dst = bp + (long)jp * kc;
        int w = nc - jp < nr ? nc - jp : nr;
        if (!tB) {
            for (int k = 0; k < kc; k++) {
                const float *src = B + (long)(k0 + k) * ldb + j0 + jp;
                float *d = dst + (long)k * nr;
                memcpy(d, src, sizeof(float) * w);
                if (w < nr) memset(d + w, 0, sizeof(float) * (nr - w));
            }
        } else {
            for (int jj = 0; jj < w; jj++) {
                const float *src = B + (long)(j0 + jp + jj) * ldb + k0;
                for (int k = 0; k < kc; k++) dst[(long)k * nr + jj] = src[k];
            }
            for (int jj = w; jj < nr; jj++)
                for (int k = 0; k < kc; k++) dst[(long)k * nr + jj] = 0.0f;
        }
    }
}
