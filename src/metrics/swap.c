/* metrics/swap.c: swap accuracy (docs/architecture.md section 5) and latent traversals.
 *
 * Swap accuracy asks whether the dims that carry factor k can be transplanted
 * between two codes: decode(code_a with factor k's dims from code_b) must be
 * the ground-truth counterfactual, rendered from a's factors with factor k
 * set to b's value, rather than any of its one-factor neighbours. The
 * renderer gives the counterfactual exactly.
 *
 * The candidates (METRICS_N_CANDIDATES = 113 = 3+6+40+32+32): for each factor
 * k and each of its values v, the target with factor k set to v. The target
 * itself is among them once per factor (5 entries); the other 108 are its
 * one-factor neighbours, 2+5+39+31+31. Some neighbours render to exactly the
 * target's pixels: orientation classes 0 and 39 are both angle 0 = 2 pi, and
 * at S = 32 a small sprite may not change a single pixel centre between two
 * neighbouring angles. Such candidates "count as the target": they are not
 * competitors. tests/unit/test_metrics.c checks the count by rendering.
 *
 * The comparison is exact: with the Bernoulli NLL summed over pixels,
 *     BCE(l, x) = sum_p softplus(l_p) - sum_p x_p l_p,
 * so BCE(l, t) < BCE(l, c) iff sum_p l_p (t_p - c_p) > 0; the softplus part,
 * common to all candidates, cancels and is never rounded. */
#include "untangle/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { SWAP_BATCH = 64 }; /* pairs encoded and decoded together */

_Static_assert(METRICS_N_CANDIDATES == 3 + 6 + 40 + 32 + 32,
               "one candidate per (factor, value): the sum of the factor sizes");

int metrics_swap_candidates(const int t[DATA_K], int cand[][DATA_K])
{
    int n = 0;
    for (int k = 0; k < DATA_K; k++)
        for (int v = 0; v < data_factor_sizes[k]; v++) {
            memcpy(cand[n], t, sizeof(int) * DATA_K);
            cand[n][k] = v;
            n++;
        }
    return n;
}

/* 1 when the decoded logits l (P) are strictly closer in Bernoulli NLL to the
 * target t than to every candidate whose pixels differ from it. tgt, img:
 * (P) 0/1 scratch. */
static int swap_success(const float *l, const int t[DATA_K], int S, uint8_t *tgt, uint8_t *img)
{
    const int P = S * S;
    int cand[METRICS_N_CANDIDATES][DATA_K];
    int nc = metrics_swap_candidates(t, cand);
    data_render_u8(tgt, t, S);
    for (int i = 0; i < nc; i++) {
        data_render_u8(img, cand[i], S);
        if (memcmp(img, tgt, (size_t)P) == 0)
            continue; /* the target, or pixel-identical to it */
        /* BCE(l, c) - BCE(l, t) = sum_p l_p (t_p - c_p) */
        double d = 0.0;
        for (int p = 0; p < P; p++)
            d += (double)l[p] * (double)((int)tgt[p] - (int)img[p]);
        if (!(d > 0.0))
            return 0;
    }
    return 1;
}

int metrics_swap_accuracy(const metrics_codec *cd, const unsigned char *mask, long pairs,
                          rng *r, double *acc, double *mean, err *e)
{
    const int S = cd->S, P = S * S, W = cd->W;
    if (pairs <= 0) {
        for (int k = 0; k < DATA_K; k++)
            acc[k] = NAN;
        if (mean)
            *mean = NAN;
        return 0;
    }
    float *x = malloc(sizeof(float) * 2 * SWAP_BATCH * (size_t)P);  /* (2B, P): a's then b's */
    float *code = malloc(sizeof(float) * 2 * SWAP_BATCH * (size_t)W); /* (2B, W) */
    float *sw = malloc(sizeof(float) * SWAP_BATCH * (size_t)W);       /* (B, W) swapped */
    float *logits = malloc(sizeof(float) * SWAP_BATCH * (size_t)P);  /* (B, P) */
    int *f = malloc(sizeof(int) * 2 * SWAP_BATCH * DATA_K);          /* (2B, K) */
    uint8_t *tgt = malloc((size_t)P), *img = malloc((size_t)P);
    double out[DATA_K];
    int rc = 0;
    if (!x || !code || !sw || !logits || !f || !tgt || !img) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for swap accuracy");
        goto done;
    }
    for (int k = 0; k < DATA_K; k++) {
        long ok = 0;
        for (long p0 = 0; p0 < pairs; p0 += SWAP_BATCH) {
            int B = (int)(pairs - p0 < SWAP_BATCH ? pairs - p0 : SWAP_BATCH);
            /* a uniform on the grid; b uniform with b[k] != a[k] */
            for (int i = 0; i < B; i++) {
                int *fa = f + (size_t)i * DATA_K, *fb = f + (size_t)(B + i) * DATA_K;
                for (int j = 0; j < DATA_K; j++)
                    fa[j] = (int)rng_below(r, (uint64_t)data_factor_sizes[j]);
                for (int j = 0; j < DATA_K; j++)
                    fb[j] = j == k ? (fa[k] + 1 +
                                      (int)rng_below(r, (uint64_t)data_factor_sizes[k] - 1)) %
                                         data_factor_sizes[k]
                                   : (int)rng_below(r, (uint64_t)data_factor_sizes[j]);
            }
            for (int i = 0; i < 2 * B; i++)
                data_render(x + (size_t)i * P, f + (size_t)i * DATA_K, S);
            cd->encode(cd->ctx, x, f, (size_t)(2 * B), code);
            for (int i = 0; i < B; i++) {
                const float *ca = code + (size_t)i * W, *cb = code + (size_t)(B + i) * W;
                float *o = sw + (size_t)i * W;
                for (int w = 0; w < W; w++)
                    o[w] = mask[(size_t)k * W + w] ? cb[w] : ca[w];
            }
            cd->decode(cd->ctx, sw, (size_t)B, logits);
            for (int i = 0; i < B; i++) {
                int t[DATA_K];
                memcpy(t, f + (size_t)i * DATA_K, sizeof t);
                t[k] = f[(size_t)(B + i) * DATA_K + k];
                ok += swap_success(logits + (size_t)i * P, t, S, tgt, img);
            }
        }
        out[k] = (double)ok / (double)pairs;
    }
    double s = 0.0;
    for (int k = 0; k < DATA_K; k++) {
        acc[k] = out[k];
        s += out[k];
    }
    if (mean)
        *mean = s / DATA_K;
done:
    free(x);
    free(code);
    free(sw);
    free(logits);
    free(f);
    free(tgt);
    free(img);
    return rc;
}

int metrics_traversal(const metrics_codec *cd, const float *code0, int D, int n_discrete,
                      const int *discrete, int steps, double limit, uint8_t **img, int *h,
                      int *w, err *e)
{
    const int T = steps;
    const int S = cd->S, C = cd->C > 1 ? cd->C : 1, P = C * S * S, W = cd->W,
              U = D + n_discrete;
    const int H = U * S, Wd = T * S;
    uint8_t *out = calloc((size_t)H * (size_t)Wd, 1);
    float *codes = malloc(sizeof(float) * T * (size_t)W); /* (T, W) */
    float *logits = malloc(sizeof(float) * T * (size_t)P); /* (T, P) */
    if (!out || !codes || !logits) {
        free(out);
        free(codes);
        free(logits);
        return err_set(e, ERR_NOMEM, "metrics: out of memory for the traversal grid");
    }
    for (int u = 0, off = D; u < U; u++) {
        int cells = T;
        for (int t = 0; t < T; t++)
            memcpy(codes + (size_t)t * W, code0, sizeof(float) * (size_t)W);
        if (u < D) {
            /* linspace(-limit, limit, T) */
            for (int t = 0; t < T; t++)
                codes[(size_t)t * W + u] = (float)(-limit + 2.0 * limit * t / (T - 1));
        } else {
            int Kc = discrete[u - D];
            cells = Kc < T ? Kc : T;
            for (int t = 0; t < cells; t++)
                for (int c = 0; c < Kc; c++)
                    codes[(size_t)t * W + off + c] = c == t ? 1.0f : 0.0f;
            off += Kc;
        }
        cd->decode(cd->ctx, codes, (size_t)cells, logits);
        for (int t = 0; t < cells; t++)
            for (int y = 0; y < S; y++)
                for (int xx = 0; xx < S; xx++) {
                    float s = 0.0f;
                    for (int ch = 0; ch < C; ch++) {
                        float l = logits[(size_t)t * P + (size_t)ch * S * S + (size_t)y * S + xx];
                        s += 1.0f / (1.0f + expf(-l));
                    }
                    s = C == 1 ? s : s / (float)C;
                    out[((size_t)u * S + y) * Wd + (size_t)t * S + xx] =
                        (uint8_t)(255.0f * s + 0.5f);
                }
    }
    free(codes);
    free(logits);
    *img = out;
    *h = H;
    *w = Wd;
    return 0;
}
