/* nn dense layer: out = in . w^T + b, with OpenBLAS sgemm (row-major).
 *
 * Threads (nn_impl.h): each GEMM is cut into tiles of its OUTPUT, rows of
 * the batch in blocks of ROW_BLOCK and columns in blocks of nn_block_width,
 * both from the shapes alone; a tile is one single-threaded sgemm over the
 * whole inner dimension, so every output float is the same sum in the same
 * order whoever computes it. The weight gradient's inner dimension is the
 * batch: its tiles cut only the (O, I) output. */
#include "nn_impl.h"
#include "untangle/nn.h"

#include <cblas.h>
#include <string.h>

/* openblas_config.h includes <complex.h>, whose macro I would eat the
 * parameter I (in features) below; nothing here uses complex numbers. */
#undef I

/* Rows of the batch per tile: a training batch is one block; a large
 * evaluation batch is cut too. */
enum { ROW_BLOCK = 256 };
/* Columns per tile: at least COL_TARGET, more when a column is little work,
 * so that a tile is about TILE_MACS multiply-adds or more. */
enum { COL_TARGET = 128, TILE_MACS = 1 << 20 };

/* The column width of tiles whose columns each cost per_col multiply-adds. */
static int col_width(int n, long per_col)
{
    long t = per_col > 0 ? (TILE_MACS + per_col - 1) / per_col : COL_TARGET;
    return nn_block_width(n, t > COL_TARGET ? (int)(t < n ? t : n) : COL_TARGET);
}

typedef struct dense_job {
    float *y;                /* the output being tiled */
    const float *x, *w, *b;  /* operands, as the kernel names them */
    int B, I, O;
    int rw, cw, nc;          /* row and column width, column blocks */
} dense_job;

/* Tile t of a job: rows [*r0, *r0 + *nr), columns [*c0, *c0 + *n) of an
 * output with cols columns. */
static void tile(const dense_job *j, int t, int cols, int rows, int *r0, int *nr, int *c0,
                 int *n)
{
    *r0 = t / j->nc * j->rw;
    *c0 = t % j->nc * j->cw;
    *nr = rows - *r0 < j->rw ? rows - *r0 : j->rw;
    *n = cols - *c0 < j->cw ? cols - *c0 : j->cw;
}

static void forward_tile(void *ctx, int t, int slot)
{
    (void)slot;
    const dense_job *j = ctx;
    const int I = j->I, O = j->O;
    int r0, nr, o0, n;
    tile(j, t, O, j->B, &r0, &nr, &o0, &n);
    float *out = j->y + (size_t)r0 * O + o0; // (nr, n) of out (B, O)
    /* Start every row of the tile at the bias and let sgemm add in . w^T
     * (beta = 1): one pass over out instead of a GEMM pass plus a bias pass. */
    for (int r = 0; r < nr; r++)
        memcpy(out + (size_t)r * O, j->b + o0, (size_t)n * sizeof *out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, n, I, 1.0f, j->x + (size_t)r0 * I,
                I, j->w + (size_t)o0 * I, I, 1.0f, out, O);
}

void nn_dense_forward(float *out, const float *in, const float *w, const float *b,
                      int B, int I, int O)
{
    // out (B, O), in (B, I), w (O, I), b (O)
    dense_job j = {out, in, w, b, B, I, O, ROW_BLOCK, 0, 0};
    int rows = B < ROW_BLOCK ? B : ROW_BLOCK;
    j.cw = col_width(O, (long)rows * I);
    j.nc = nn_block_count(O, j.cw);
    nn_parallel(nn_block_count(B, ROW_BLOCK) * j.nc, forward_tile, &j);
}

/* dw (O, I) += dout^T . in, tiled by blocks of the larger of O and I; the
 * inner dimension is the batch. j->x = dout, j->w = in. */
static void dw_tile(void *ctx, int t, int slot)
{
    (void)slot;
    const dense_job *j = ctx;
    const int B = j->B, I = j->I, O = j->O;
    int o0, no, i0, n;
    tile(j, t, I, O, &o0, &no, &i0, &n);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, no, n, B, 1.0f, j->x + o0, O,
                j->w + i0, I, 1.0f, j->y + (size_t)o0 * I + i0, I);
}

/* din (B, I) += dout . w, tiled by rows of the batch and columns of I.
 * j->x = dout. */
static void din_tile(void *ctx, int t, int slot)
{
    (void)slot;
    const dense_job *j = ctx;
    const int I = j->I, O = j->O;
    int r0, nr, i0, n;
    tile(j, t, I, j->B, &r0, &nr, &i0, &n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, n, O, 1.0f, j->x + (size_t)r0 * O,
                O, j->w + i0, I, 1.0f, j->y + (size_t)r0 * I + i0, I);
}

void nn_dense_backward(float *din, float *dw, float *db, const float *dout,
                       const float *in, const float *w, int B, int I, int O)
{
    // din (B, I) or NULL, dw (O, I) or NULL, db (O) or NULL, dout (B, O), in (B, I), w (O, I)
    /* dw += dout^T . in  (forward: out[r][o] += sum_i in[r][i] * w[o][i]) */
    if (dw) {
        dense_job j = {dw, dout, in, NULL, B, I, O, O, I, 1};
        if (O > I)
            j.rw = col_width(O, (long)I * B);
        else
            j.cw = col_width(I, (long)O * B);
        j.nc = nn_block_count(I, j.cw);
        nn_parallel(nn_block_count(O, j.rw) * j.nc, dw_tile, &j);
    }
    /* db += sum over the batch of dout, in batch order */
    for (int r = 0; r < B && db; r++) {
        const float *d = dout + (size_t)r * O;
        for (int o = 0; o < O; o++)
            db[o] += d[o];
    }
    /* din += dout . w */
    if (din) {
        int rows = B < ROW_BLOCK ? B : ROW_BLOCK;
        dense_job k = {din, dout, w, NULL, B, I, O, ROW_BLOCK, col_width(I, (long)rows * O), 0};
        k.nc = nn_block_count(I, k.cw);
        nn_parallel(nn_block_count(B, ROW_BLOCK) * k.nc, din_tile, &k);
    }
}
