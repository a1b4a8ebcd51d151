/* nn dense layer: out = in . w^T + b, with OpenBLAS sgemm (row-major). */
#include "untangle/nn.h"

#include <cblas.h>
#include <string.h>

/* openblas_config.h includes <complex.h>, whose macro I would eat the
 * parameter I (in features) below; nothing here uses complex numbers. */
#undef I

void nn_dense_forward(float *out, const float *in, const float *w, const float *b,
                      int B, int I, int O)
{
    // out (B, O), in (B, I), w (O, I), b (O)
    /* Start every row of out at the bias and let sgemm add in . w^T (beta = 1):
     * one pass over out instead of a GEMM pass plus a bias pass. */
    for (int r = 0; r < B; r++)
        memcpy(out + (size_t)r * O, b, (size_t)O * sizeof *out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, O, I, 1.0f, in, I, w, I, 1.0f,
                out, O);
}

void nn_dense_backward(float *din, float *dw, float *db, const float *dout,
                       const float *in, const float *w, int B, int I, int O)
{
    // din (B, I) or NULL, dw (O, I), db (O), dout (B, O), in (B, I), w (O, I)
    /* dw += dout^T . in  (forward: out[r][o] += sum_i in[r][i] * w[o][i]) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, I, B, 1.0f, dout, O, in, I, 1.0f,
                dw, I);
    /* db += sum over the batch of dout */
    for (int r = 0; r < B; r++) {
        const float *d = dout + (size_t)r * O;
        for (int o = 0; o < O; o++)
            db[o] += d[o];
    }
    /* din += dout . w */
    if (din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, I, O, 1.0f, dout, O, w, I,
                    1.0f, din, I);
}
