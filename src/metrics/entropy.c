/* metrics/entropy.c: Chen et al. 2018's estimators on the aggregate posterior
 * q(z) = 1/n sum_n q(z|x_n) of an encoded set ("Isolating Sources of
 * Disentanglement in VAEs", section 4.1 and the released elbo_decomposition /
 * mutual_info_metric_shapes).
 *
 * The one expensive step is log q(z_s) for a sample z_s against n posteriors:
 *     log q(z_s)   = logsumexp_n sum_u log q(z_su|x_n) - log n
 *     log q(z_su)  = logsumexp_n       log q(z_su|x_n) - log n
 * for every code unit u (Gaussian dim or categorical variable). Cost per
 * sample: n*U log-densities and exps plus n exps for the joint, so
 * O(m * n * U) for m samples. The posteriors are stored unit-major ("post",
 * (U, np)) and padded to a multiple of PAD; blocks of up to BLK posteriors
 * are loops of LANES-wide steps that GCC vectorises at -O2 (LANES-wide partial
 * max and sum, and util/vmath.h's polynomial exp: libm's is not vectorised
 * without -ffast-math, which the project forbids). The log-sum-exp over blocks keeps a
 * running reference: per block, s *= exp(m_old - m_new) when it grows.
 * A Gaussian unit needs no max pass: log N(z; mu, sigma) <= its log
 * normaliser lc, so the block's largest lc (stored per block, whatever the
 * sample) is a reference no term exceeds, and the density, the joint's sum
 * and the exp are one fused pass. The reference is at most ~30 nats plus the
 * sample's own squared distance above the largest term (lv is clamped to
 * [LV_MIN, LV_MAX]), far from float's underflow at -87. */
#include "untangle/metrics.h"
#include "../util/vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    PAD = 128,  /* posteriors are padded to a multiple of PAD (of LANES) */
    BLK = 512,  /* posteriors per block at most (a multiple of PAD): the
                   block's max and sum are folded into the running
                   log-sum-exp once per block */
    LANES = 16  /* partial max/sum accumulators: one AVX-512 register of floats */
};

/* log-density of padding entries: exp() of it underflows to ~0 */
#define PAD_LOGP (-1e30f)
/* lv clamp for the density estimates: sigma >= exp(-15) ~ 3e-7 keeps the
 * precision exp(-lv) finite in float */
#define LV_MIN (-30.0f)
/* and sigma <= exp(15): every lc is within 30 nats of every other */
#define LV_MAX 30.0f
#define ALPHA_MIN 1e-30f
static const double LOG_2PI = 1.8378770664093453;

/* The posteriors of an item subset, unit-major and padded. */
typedef struct post {
    size_t n, np;   /* items; padded to a multiple of PAD */
    size_t cap;     /* allocated np */
    int D, nd, Ks;  /* Gaussian dims, categorical variables, their categories */
    int *off;       /* (nd) first category of each variable */
    float *mu;      /* (D, np) means */
    float *nh;      /* (D, np) minus half the precision: -0.5*exp(-lv) */
    float *lc;      /* (D, np) log normalisers -0.5*(lv + log 2 pi) */
    float *lcmax;   /* (D, np / BLK rounded up) the largest lc of each block */
    float *la;      /* (Ks, np) log alpha */
} post;

static size_t n_blocks(size_t np) { return (np + BLK - 1) / BLK; }

static void post_free(post *p)
{
    free(p->off);
    free(p->mu);
    free(p->nh);
    free(p->lc);
    free(p->lcmax);
    free(p->la);
    memset(p, 0, sizeof *p);
}

static int post_alloc(post *p, const metrics_posterior *q, size_t n_max, err *e)
{
    memset(p, 0, sizeof *p);
    p->D = q->D;
    p->nd = q->n_discrete;
    p->Ks = 0;
    p->off = malloc(sizeof(int) * (size_t)(p->nd > 0 ? p->nd : 1));
    if (!p->off)
        goto nomem;
    for (int i = 0; i < p->nd; i++) {
        p->off[i] = p->Ks;
        p->Ks += q->discrete[i];
    }
    p->cap = (n_max + PAD - 1) / PAD * PAD;
    if (p->cap == 0)
        p->cap = PAD;
    size_t nD = (size_t)(p->D > 0 ? p->D : 1) * p->cap;
    p->mu = malloc(sizeof(float) * nD);
    p->nh = malloc(sizeof(float) * nD);
    p->lc = malloc(sizeof(float) * nD);
    p->lcmax = malloc(sizeof(float) * (size_t)(p->D > 0 ? p->D : 1) * n_blocks(p->cap));
    p->la = malloc(sizeof(float) * (size_t)(p->Ks > 0 ? p->Ks : 1) * p->cap);
    if (!p->mu || !p->nh || !p->lc || !p->lcmax || !p->la)
        goto nomem;
    return 0;
nomem:
    post_free(p);
    return err_set(e, ERR_NOMEM, "metrics: out of memory for %zu posteriors", n_max);
}

/* Fill p with the items idx[0..cnt) of q (idx NULL: items 0..cnt-1). */
static void post_fill(post *p, const metrics_posterior *q, const size_t *idx, size_t cnt)
{
    p->n = cnt;
    p->np = (cnt + PAD - 1) / PAD * PAD;
    const int D = q->D;
    for (int j = 0; j < D; j++) {
        float *mu = p->mu + (size_t)j * p->np, *nh = p->nh + (size_t)j * p->np,
              *lc = p->lc + (size_t)j * p->np;
        for (size_t t = 0; t < cnt; t++) {
            size_t i = idx ? idx[t] : t;
            float lv = q->lv[i * D + j];
            lv = lv > LV_MIN ? lv : LV_MIN;
            lv = lv < LV_MAX ? lv : LV_MAX;
            mu[t] = q->mu[i * D + j];
            nh[t] = -0.5f * expf(-lv);
            lc[t] = (float)(-0.5 * ((double)lv + LOG_2PI));
        }
        for (size_t t = cnt; t < p->np; t++) {
            mu[t] = 0.0f;
            nh[t] = 0.0f;
            lc[t] = PAD_LOGP;
        }
        float *bm = p->lcmax + (size_t)j * n_blocks(p->np);
        for (size_t b = 0; b < p->np; b += BLK) {
            size_t end = p->np - b < BLK ? p->np : b + BLK;
            float x = lc[b];
            for (size_t t = b + 1; t < end; t++)
                x = x > lc[t] ? x : lc[t];
            bm[b / BLK] = x;
        }
    }
    for (int c = 0; c < p->Ks; c++) {
        float *la = p->la + (size_t)c * p->np;
        for (size_t t = 0; t < cnt; t++) {
            size_t i = idx ? idx[t] : t;
            float a = q->alpha[i * (size_t)p->Ks + c];
            la[t] = logf(a > ALPHA_MIN ? a : ALPHA_MIN);
        }
        for (size_t t = cnt; t < p->np; t++)
            la[t] = PAD_LOGP;
    }
}

/* Raise the running log-sum-exp's reference to bm when bm is larger (the
 * sum so far is exp(*m) * *s); returns the reference the block's terms are
 * taken against. */
static inline float lse_rebase(float bm, float *m, double *s)
{
    if (bm > *m) {
        *s *= exp((double)*m - (double)bm); /* exp(-inf) = 0 on the first block */
        *m = bm;
    }
    return *m;
}

/* The LANES partial sums of a block, added in lane order. */
static inline double lanes_total(const float *sm)
{
    double t = 0.0;
    for (int l = 0; l < LANES; l++)
        t += (double)sm[l];
    return t;
}

/* Running log-sum-exp: fold the block L (len, a multiple of PAD) into (*m,
 * *s), where the sum so far is exp(*m) * *s. */
static inline void lse_block(const float *restrict L, int len, float *m, double *s)
{
    float mx[LANES], sm[LANES];
    for (int l = 0; l < LANES; l++)
        mx[l] = L[l];
    for (int i = LANES; i < len; i += LANES)
#pragma GCC unroll 16
        for (int l = 0; l < LANES; l++)
            mx[l] = mx[l] > L[i + l] ? mx[l] : L[i + l];
    float bm = mx[0];
    for (int l = 1; l < LANES; l++)
        bm = bm > mx[l] ? bm : mx[l];
    const float ref = lse_rebase(bm, m, s);
    for (int l = 0; l < LANES; l++)
        sm[l] = 0.0f;
    for (int i = 0; i < len; i += LANES)
#pragma GCC unroll 16 /* the partial sums stay in registers */
        for (int l = 0; l < LANES; l++)
            sm[l] += exp_le0(L[i + l] - ref);
    *s += lanes_total(sm);
}

/* One Gaussian dim of a block, folded into the running log-sum-exp (*m, *s)
 * with the block's largest log normaliser `bound` as its reference:
 * L = log N(z; mu, -0.5/nh) = lc + nh (z - mu)^2 <= bound, and J += L when
 * joint is set (a constant where it is inlined). */
static inline void gauss_lse_block(float *restrict J, const float *restrict mu,
                                   const float *restrict nh, const float *restrict lc, float z,
                                   float bound, int len, int joint, float *m, double *s)
{
    const float ref = lse_rebase(bound, m, s);
    float sm[LANES];
    for (int l = 0; l < LANES; l++)
        sm[l] = 0.0f;
    for (int i = 0; i < len; i += LANES)
#pragma GCC unroll 16 /* the partial sums stay in registers */
        for (int l = 0; l < LANES; l++) {
            float d = z - mu[i + l];
            float L = MADD(d * d, nh[i + l], lc[i + l]);
            if (joint)
                J[i + l] += L;
            sm[l] += exp_le0(L - ref);
        }
    *s += lanes_total(sm);
}

static inline void add_block(float *restrict J, const float *restrict L, int len)
{
    for (int i = 0; i < len; i += LANES)
        for (int l = 0; l < LANES; l++)
            J[i + l] += L[i + l];
}

/* Fold the blocks [b0, b1) of p into one sample's running log-sum-exps:
 * (m[u], s[u]) for unit u < U, and (m[U], s[U]) for the joint when joint is
 * set (sample zs (D), cs (nd)). */
static void fold_blocks(const post *p, const float *zs, const int *cs, size_t b0, size_t b1,
                        int joint, float *m, double *s)
{
    const int U = p->D + p->nd;
    const size_t nb = n_blocks(p->np);
    float J[BLK];
    for (size_t b = b0; b < b1; b += BLK) {
        const int len = b1 - b < BLK ? (int)(b1 - b) : BLK;
        if (joint)
            memset(J, 0, sizeof(float) * (size_t)len);
        for (int j = 0; j < p->D; j++) {
            size_t o = (size_t)j * p->np + b;
            float bound = p->lcmax[(size_t)j * nb + b / BLK];
            if (joint)
                gauss_lse_block(J, p->mu + o, p->nh + o, p->lc + o, zs[j], bound, len, 1,
                                &m[j], &s[j]);
            else
                gauss_lse_block(J, p->mu + o, p->nh + o, p->lc + o, zs[j], bound, len, 0,
                                &m[j], &s[j]);
        }
        for (int i = 0; i < p->nd; i++) {
            const float *la = p->la + (size_t)(p->off[i] + cs[i]) * p->np + b;
            if (joint)
                add_block(J, la, len);
            lse_block(la, len, &m[p->D + i], &s[p->D + i]);
        }
        if (joint)
            lse_block(J, len, &m[U], &s[U]);
    }
}

/* Posteriors per tile: the tile's unit-major arrays (3 floats per Gaussian
 * dim, one per category) fill about TILE_BYTES, so that all samples read it
 * from cache; memory traffic falls from m*n to n per pass, which is what
 * makes the full set (n = 737,280) affordable. */
#define TILE_BYTES (256u * 1024u)

static size_t tile_len(const post *p)
{
    size_t per = sizeof(float) * (3u * (size_t)p->D + (size_t)p->Ks);
    size_t t = TILE_BYTES / (per ? per : 1) / BLK * BLK;
    return t < BLK ? BLK : t;
}

/* Entropies of p's aggregate posterior with the samples sidx[0..m) (NULL:
 * 0..m-1) of (z, c): h (U) += w * H_u, *hj += w * H (hj may be NULL);
 * lqj (m) (may be NULL, needs hj) gets each sample's log q(z_s).
 * The posteriors are walked in tiles, each against every sample; per sample
 * the blocks are folded in index order whatever the tile, so the numbers are
 * those of a loop over samples. State: (m, U + 1) running maxima and sums. */
static int entropies_acc(const post *p, const float *z, const int *c, const size_t *sidx,
                         size_t m, double w, double *h, double *hj, double *lqj, err *e)
{
    const int U = p->D + p->nd;
    const size_t U1 = (size_t)U + 1;
    float *mm = malloc(sizeof(float) * U1 * (m ? m : 1));
    double *ss = malloc(sizeof(double) * U1 * (m ? m : 1));
    double *acc = calloc(U1, sizeof(double));
    int rc = 0;
    if (!mm || !ss || !acc) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for the entropy estimate");
        goto done;
    }
    for (size_t i = 0; i < U1 * m; i++) {
        mm[i] = -INFINITY;
        ss[i] = 0.0;
    }
    const size_t tile = tile_len(p);
    for (size_t b0 = 0; b0 < p->np; b0 += tile) {
        size_t b1 = p->np - b0 < tile ? p->np : b0 + tile;
        for (size_t t = 0; t < m; t++) {
            size_t i = sidx ? sidx[t] : t;
            fold_blocks(p, z + i * (size_t)p->D, c ? c + i * (size_t)p->nd : NULL, b0, b1,
                        hj != NULL, mm + t * U1, ss + t * U1);
        }
    }
    const double logn = log((double)p->n);
    for (size_t t = 0; t < m; t++) {
        const float *mt = mm + t * U1;
        const double *st = ss + t * U1;
        for (int u = 0; u < U; u++)
            acc[u] -= (double)mt[u] + log(st[u]) - logn;
        if (hj) {
            double l = (double)mt[U] + log(st[U]) - logn;
            acc[U] -= l;
            if (lqj)
                lqj[t] = l;
        }
    }
    for (int u = 0; u < U; u++)
        h[u] += w * acc[u] / (double)m;
    if (hj)
        *hj += w * acc[U] / (double)m;
done:
    free(mm);
    free(ss);
    free(acc);
    return rc;
}

void metrics_sample_posterior(const metrics_posterior *q, rng *r, float *z, int *c)
{
    int Ks = 0;
    for (int i = 0; i < q->n_discrete; i++)
        Ks += q->discrete[i];
    for (size_t n = 0; n < q->n; n++) {
        for (int j = 0; j < q->D; j++) {
            size_t o = n * (size_t)q->D + (size_t)j;
            z[o] = q->mu[o] + expf(0.5f * q->lv[o]) * (float)rng_normal(r);
        }
        /* c ~ Cat(alpha): the first category whose cumulative probability
         * exceeds u (the last one with alpha > 0 if rounding leaves a gap) */
        for (int i = 0, off = 0; i < q->n_discrete; off += q->discrete[i++]) {
            const float *a = q->alpha + n * (size_t)Ks + (size_t)off;
            double u = rng_uniform(r), cum = 0.0;
            int pick = -1, last = 0;
            for (int k = 0; k < q->discrete[i]; k++) {
                if (a[k] > 0.0f)
                    last = k;
                cum += (double)a[k];
                if (pick < 0 && u < cum)
                    pick = k;
            }
            c[n * (size_t)q->n_discrete + (size_t)i] = pick >= 0 ? pick : last;
        }
    }
}

int metrics_entropies(const metrics_posterior *q, const float *z, const int *c, size_t m,
                      double *h_units, double *h_joint, err *e)
{
    const int U = q->D + q->n_discrete;
    if (q->n == 0 || m == 0) {
        for (int u = 0; u < U; u++)
            h_units[u] = NAN;
        if (h_joint)
            *h_joint = NAN;
        return 0;
    }
    post p;
    int rc = post_alloc(&p, q, q->n, e);
    if (rc < 0)
        return rc;
    post_fill(&p, q, NULL, q->n);
    double *h = calloc((size_t)U + 1, sizeof *h), hj = 0.0;
    if (!h) {
        post_free(&p);
        return err_set(e, ERR_NOMEM, "metrics: out of memory for the entropy estimate");
    }
    rc = entropies_acc(&p, z, c, NULL, m, 1.0, h, h_joint ? &hj : NULL, NULL, e);
    if (rc == 0) {
        memcpy(h_units, h, sizeof(double) * (size_t)U);
        if (h_joint)
            *h_joint = hj;
    }
    free(h);
    post_free(&p);
    return rc;
}

/* The decomposition from the marginal entropies h (U) and hj of the samples
 * sel[0..m) (NULL: 0..m-1): the per-sample terms on the same samples, the
 * analytic KL over all n items. */
static void decompose_finish(const metrics_posterior *q, const float *z, const int *c,
                             const size_t *sel, size_t m, const double *h, double hj,
                             metrics_decomposition *out)
{
    const int D = q->D, U = D + q->n_discrete;
    int Ks = 0;
    for (int i = 0; i < q->n_discrete; i++)
        Ks += q->discrete[i];
    /* Per-sample terms on the same m samples as the entropies:
     *   log q(z_s|x_s) = sum_j log N(z_sj; mu_sj, exp(lv_sj)) + sum_i log alpha_s[c_si]
     *   log p(z_s)     = sum_j log N(z_sj; 0, 1)              - sum_i log K_i */
    double lqx = 0.0, lp = 0.0;
    for (size_t t = 0; t < m; t++) {
        size_t s = sel ? sel[t] : t;
        for (int j = 0; j < D; j++) {
            double zz = z[s * D + j], mu = q->mu[s * D + j], lv = q->lv[s * D + j];
            lqx += -0.5 * (LOG_2PI + lv + (zz - mu) * (zz - mu) * exp(-lv));
            lp += -0.5 * (LOG_2PI + zz * zz);
        }
        for (int i = 0, off = 0; i < q->n_discrete; off += q->discrete[i++]) {
            float a = q->alpha[s * (size_t)Ks + (size_t)off + (size_t)c[s * q->n_discrete + i]];
            lqx += log((double)(a > ALPHA_MIN ? a : ALPHA_MIN));
            lp -= log((double)q->discrete[i]);
        }
    }
    lqx /= (double)m;
    lp /= (double)m;
    /* the analytic mean KL over all n items (docs/architecture.md section 4) */
    double kl = 0.0;
    for (size_t n = 0; n < q->n; n++) {
        for (int j = 0; j < D; j++) {
            double mu = q->mu[n * D + j], lv = q->lv[n * D + j];
            kl += 0.5 * (mu * mu + exp(lv) - lv - 1.0);
        }
        for (int i = 0, off = 0; i < q->n_discrete; off += q->discrete[i++]) {
            const float *a = q->alpha + n * (size_t)Ks + (size_t)off;
            kl += log((double)q->discrete[i]);
            for (int k = 0; k < q->discrete[i]; k++)
                if (a[k] > 0.0f)
                    kl += (double)a[k] * log((double)a[k]);
        }
    }
    double sum_h = 0.0;
    for (int u = 0; u < U; u++)
        sum_h += h[u];
    metrics_decomposition d;
    d.h_joint = hj;
    d.h_cond = -lqx;
    d.mi = lqx + hj;     /* E[log q(z|x) - log q(z)] */
    d.tc = sum_h - hj;   /* E[log q(z) - sum_u log q(z_u)] */
    d.dwkl = -sum_h - lp; /* E[sum_u log q(z_u) - log p(z)] */
    d.kl_mc = lqx - lp;  /* = mi + tc + dwkl */
    d.kl = kl / (double)q->n;
    *out = d;
}

/* The first ms entries of idx (n) become a uniform random subset of them, in
 * random order (a partial Fisher-Yates shuffle: torch.randperm(n)[:ms] of
 * estimate_entropies). r NULL: left as they are. */
static void pick_samples(size_t *idx, size_t n, size_t ms, rng *r)
{
    if (!r)
        return;
    for (size_t t = 0; t < ms && t + 1 < n; t++) {
        size_t j = t + (size_t)rng_below(r, (uint64_t)(n - t));
        size_t x = idx[t];
        idx[t] = idx[j];
        idx[j] = x;
    }
}

/* H(z_u | v_k) = sum_v (n_v/n) H(z_u | v_k = v) for every unit u and factor
 * k -> hc (U, K): each group's entropies with min(S, n_v) of its members'
 * samples (the first ones, or a random subset drawn from r) against the
 * group's own posteriors. p: scratch sized for n posteriors. */
static int cond_entropies(const metrics_posterior *q, post *p, const float *z, const int *c,
                          const int *f, int K, const int *sizes, size_t S, rng *r, double *hc,
                          err *e)
{
    const int U = q->D + q->n_discrete;
    const size_t n = q->n;
    int max_size = 1, rc = 0;
    for (int k = 0; k < K; k++)
        max_size = sizes[k] > max_size ? sizes[k] : max_size;
    size_t *order = malloc(sizeof(size_t) * n);
    size_t *start = malloc(sizeof(size_t) * ((size_t)max_size + 1));
    double *hk = malloc(sizeof(double) * (size_t)U);
    if (!order || !start || !hk) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for the mutual information");
        goto done;
    }
    for (int k = 0; k < K && rc == 0; k++) {
        /* counting sort of the items by f[:, k], stable: each group keeps the
         * item order, so in a random draw its first members are a random subset */
        memset(start, 0, sizeof(size_t) * ((size_t)sizes[k] + 1));
        for (size_t i = 0; i < n; i++)
            start[f[i * K + k] + 1]++;
        for (int v = 0; v < sizes[k]; v++)
            start[v + 1] += start[v];
        for (size_t i = 0; i < n; i++)
            order[start[f[i * K + k]]++] = i;
        /* start[v] is now the end of group v */
        memset(hk, 0, sizeof(double) * (size_t)U);
        size_t g0 = 0;
        for (int v = 0; v < sizes[k] && rc == 0; v++) {
            size_t g1 = start[v], nv = g1 - g0;
            if (nv > 0) {
                size_t ms = nv < S ? nv : S;
                pick_samples(order + g0, nv, ms, r);
                post_fill(p, q, order + g0, nv);
                rc = entropies_acc(p, z, c, order + g0, ms, (double)nv / (double)n, hk, NULL,
                                   NULL, e);
            }
            g0 = g1;
        }
        for (int u = 0; u < U; u++)
            hc[u * K + k] = hk[u];
    }
done:
    free(order);
    free(start);
    free(hk);
    return rc;
}

int metrics_chen(const metrics_posterior *q, const float *z, const int *c, const int *f,
                 int K, const int *sizes, size_t S, rng *r, metrics_decomposition *dc,
                 double *mi, err *e)
{
    const int U = q->D + q->n_discrete;
    const size_t n = q->n, ms = n < S ? n : S;
    if (n == 0 || ms == 0) {
        if (mi)
            for (int i = 0; i < U * K; i++)
                mi[i] = NAN;
        if (dc)
            dc->mi = dc->tc = dc->dwkl = dc->kl_mc = dc->kl = dc->h_joint = dc->h_cond = NAN;
        return 0;
    }
    post p;
    int rc = post_alloc(&p, q, n, e);
    if (rc < 0)
        return rc;
    size_t *sel = r ? malloc(sizeof(size_t) * n) : NULL;
    double *h = calloc((size_t)U + 1, sizeof(double)), hj = 0.0;
    double *hc = malloc(sizeof(double) * (size_t)(U > 0 ? U : 1) * (size_t)(K > 0 ? K : 1));
    if ((r && !sel) || !h || !hc) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for Chen et al.'s estimators");
        goto done;
    }
    if (sel) {
        for (size_t i = 0; i < n; i++)
            sel[i] = i;
        pick_samples(sel, n, ms, r);
    }
    /* H(z), H(z_u): one pass of the ms marginal samples against all n */
    post_fill(&p, q, NULL, n);
    if ((rc = entropies_acc(&p, z, c, sel, ms, 1.0, h, dc ? &hj : NULL, NULL, e)) < 0)
        goto done;
    metrics_decomposition d;
    if (dc)
        decompose_finish(q, z, c, sel, ms, h, hj, &d);
    if (mi) {
        if ((rc = cond_entropies(q, &p, z, c, f, K, sizes, S, r, hc, e)) < 0)
            goto done;
        for (int u = 0; u < U; u++)
            for (int k = 0; k < K; k++)
                mi[u * K + k] = h[u] - hc[u * K + k];
    }
    if (dc)
        *dc = d;
done:
    post_free(&p);
    free(sel);
    free(h);
    free(hc);
    return rc;
}

int metrics_tc_decompose(const metrics_posterior *q, const float *z, const int *c, size_t m,
                         metrics_decomposition *out, err *e)
{
    return metrics_chen(q, z, c, NULL, 0, NULL, m, NULL, out, NULL, e);
}

int metrics_mi_chen(const metrics_posterior *q, const float *z, const int *c, const int *f,
                    int K, const int *sizes, size_t max_samples, double *mi, err *e)
{
    return metrics_chen(q, z, c, f, K, sizes, max_samples, NULL, NULL, mi, e);
}
