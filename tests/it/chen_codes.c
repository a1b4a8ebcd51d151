/* chen_codes: the shared table of the cross-check of Chen et al.'s
 * estimators and the chunk MIG (tests/py/test_chen.py).
 *
 *   chen_codes OUT.h5 [SEED]
 *
 * A synthetic encoded set on the full grid of K = 4 factors of sizes 3, 4, 6,
 * 8 (576 items, canonical order: the last factor fastest), D = 5 Gaussian
 * latents that mix the factors (so TC, MI and the gaps are far from 0 and
 * from their maxima) and one categorical variable of 3 categories that
 * mostly copies factor 0 (JointVAE's kind of unit), one posterior sample per
 * item (metrics_sample_posterior), then the estimators exactly as
 * run_evaluate calls them (src/run/evaluate.c):
 *   full:  metrics_chen with S >= n and a random pick (full-set mode: with
 *          S >= every group, every item's sample is used);
 *   sub:   metrics_chen with S = 100 and no pick (subsample mode: the first
 *          100 samples of the set, the first min(100, n_v) members of each
 *          factor value's group);
 * each followed by metrics_mig with H(v_k) = log |V_k| and metrics_mig_mean
 * over factors 1..K-1 (factor 0 left out, as Chen's mi_metric.py leaves out
 * dSprites' shape); and metrics_mig_chunks on the means with chunks
 * [1, 1, 2, 1] (one per factor) over the same factors.
 *
 * OUT.h5 (h5py-readable): mu, lv, z (n, D) float32; alpha (n, 3) float32;
 * c (n, 1) int32 (the sampled categories); f (n, K) int32; sizes (K) int32;
 * chunks (4) int32; use (K) uint8; S_sub (1) int64; and for each of full and
 * sub: <m>_tc, <m>_mi, <m>_dwkl, <m>_kl_mc, <m>_kl, <m>_h_joint, <m>_h_cond,
 * <m>_mig (1) float64, <m>_mi_matrix (U, K), <m>_gap (K) float64; chunk_mi
 * (4, K), chunk_gap (K), chunk_mig (1) float64. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "untangle/metrics.h"

enum { K = 4, D = 5, NCAT = 3, U = D + 1, N_CHUNKS = 4, S_SUB = 100 };
static const int SIZES[K] = {3, 4, 6, 8};
static const int CHUNKS[N_CHUNKS] = {1, 1, 2, 1};
static const unsigned char USE[K] = {0, 1, 1, 1};

static hid_t out_file = H5I_INVALID_HID;

static void put(const char *name, hid_t type, int rank, const hsize_t *dims, const void *data)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(out_file, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (sp < 0 || d < 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        fprintf(stderr, "chen_codes: cannot write %s\n", name);
        exit(1);
    }
    H5Dclose(d);
    H5Sclose(sp);
}

static void put_f64(const char *prefix, const char *name, int rank, const hsize_t *dims,
                    const double *v)
{
    char full[64];
    snprintf(full, sizeof full, "%s_%s", prefix, name);
    put(full, H5T_NATIVE_DOUBLE, rank, dims, v);
}

static void check(int rc, const err *e, const char *what)
{
    if (rc) {
        fprintf(stderr, "chen_codes: %s: %s\n", what, e->msg);
        exit(1);
    }
}

/* metrics_chen, metrics_mig and metrics_mig_mean as run_evaluate calls them,
 * stored under prefix. */
static void chen(const char *prefix, const metrics_posterior *q, const float *z, const int *c,
                 const int *f, size_t S, rng *pick)
{
    metrics_decomposition dc;
    double mi[U * K], gap[K], logv[K];
    err e;
    err_clear(&e);
    check(metrics_chen(q, z, c, f, K, SIZES, S, pick, &dc, mi, &e), &e, prefix);
    for (int k = 0; k < K; k++)
        logv[k] = log((double)SIZES[k]);
    metrics_mig(mi, U, K, logv, gap);
    double mig = metrics_mig_mean(gap, K, USE);
    hsize_t one[1] = {1}, m2[2] = {U, K}, kk[1] = {K};
    put_f64(prefix, "tc", 1, one, &dc.tc);
    put_f64(prefix, "mi", 1, one, &dc.mi);
    put_f64(prefix, "dwkl", 1, one, &dc.dwkl);
    put_f64(prefix, "kl_mc", 1, one, &dc.kl_mc);
    put_f64(prefix, "kl", 1, one, &dc.kl);
    put_f64(prefix, "h_joint", 1, one, &dc.h_joint);
    put_f64(prefix, "h_cond", 1, one, &dc.h_cond);
    put_f64(prefix, "mig", 1, one, &mig);
    put_f64(prefix, "mi_matrix", 2, m2, mi);
    put_f64(prefix, "gap", 1, kk, gap);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: chen_codes OUT.h5 [SEED]\n");
        return 1;
    }
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
    const size_t n = metrics_grid_count(K, SIZES);
    int *f = malloc(sizeof(int) * n * K), *c = malloc(sizeof(int) * n);
    float *mu = malloc(sizeof(float) * n * D), *lv = malloc(sizeof(float) * n * D);
    float *z = malloc(sizeof(float) * n * D), *alpha = malloc(sizeof(float) * n * NCAT);
    if (!f || !c || !mu || !lv || !z || !alpha)
        return 1;
    metrics_grid_factors(K, SIZES, f);
    rng r;
    rng_seed(&r, seed, RNG_TEST);
    for (size_t i = 0; i < n; i++) {
        double u[K];
        for (int k = 0; k < K; k++)
            u[k] = 2.0 * f[i * K + k] / (SIZES[k] - 1) - 1.0; /* in [-1, 1] */
        /* means: one latent per factor, one mixing two; each with a jitter */
        double m[D] = {1.5 * u[1], 1.2 * u[2] + 0.4 * u[3], sin(2.0 * u[2]), 2.0 * u[3],
                       0.8 * u[0] - 0.6 * u[1]};
        for (int j = 0; j < D; j++) {
            mu[i * D + j] = (float)(m[j] + 0.1 * rng_normal(&r));
            lv[i * D + j] = (float)(-3.0 + 2.5 * rng_uniform(&r)); /* sigma 0.22 .. 0.78 */
        }
        /* the categorical unit: factor 0's value with probability ~0.8 */
        double a[NCAT], s = 0.0;
        for (int k = 0; k < NCAT; k++) {
            a[k] = (k == f[i * K] ? 4.0 : 0.5) * (0.5 + rng_uniform(&r));
            s += a[k];
        }
        for (int k = 0; k < NCAT; k++)
            alpha[i * NCAT + k] = (float)(a[k] / s);
    }
    static const int discrete[1] = {NCAT};
    metrics_posterior q = {n, D, mu, lv, 1, discrete, alpha};
    metrics_sample_posterior(&q, &r, z, c);

    out_file = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (out_file < 0) {
        fprintf(stderr, "chen_codes: cannot create %s\n", argv[1]);
        return 1;
    }
    hsize_t nd[2] = {n, D}, na[2] = {n, NCAT}, nc[2] = {n, 1}, nf[2] = {n, K}, kk[1] = {K},
            ch[1] = {N_CHUNKS}, one[1] = {1};
    put("mu", H5T_NATIVE_FLOAT, 2, nd, mu);
    put("lv", H5T_NATIVE_FLOAT, 2, nd, lv);
    put("z", H5T_NATIVE_FLOAT, 2, nd, z);
    put("alpha", H5T_NATIVE_FLOAT, 2, na, alpha);
    put("c", H5T_NATIVE_INT, 2, nc, c);
    put("f", H5T_NATIVE_INT, 2, nf, f);
    put("sizes", H5T_NATIVE_INT, 1, kk, SIZES);
    put("chunks", H5T_NATIVE_INT, 1, ch, CHUNKS);
    put("use", H5T_NATIVE_UINT8, 1, kk, USE);
    long long s_sub = S_SUB;
    put("S_sub", H5T_NATIVE_LLONG, 1, one, &s_sub);

    rng pick;
    rng_seed(&pick, seed, RNG_TEST + 1);
    chen("full", &q, z, c, f, n, &pick);
    chen("sub", &q, z, c, f, S_SUB, NULL);

    double cmi[N_CHUNKS * K], cgap[K], cmig;
    err e;
    err_clear(&e);
    check(metrics_mig_chunks(mu, n, D, CHUNKS, N_CHUNKS, f, K, SIZES, USE, cmi, cgap, &cmig, &e),
          &e, "chunks");
    hsize_t cm[2] = {N_CHUNKS, K};
    put("chunk_mi", H5T_NATIVE_DOUBLE, 2, cm, cmi);
    put("chunk_gap", H5T_NATIVE_DOUBLE, 1, kk, cgap);
    put("chunk_mig", H5T_NATIVE_DOUBLE, 1, one, &cmig);
    H5Fclose(out_file);
    free(f);
    free(c);
    free(mu);
    free(lv);
    free(z);
    free(alpha);
    return 0;
}
