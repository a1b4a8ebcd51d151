/* dsd: Dual Swap Disentangling (Feng et al. 2018, NeurIPS). A deterministic
 * autoencoder c = E(x), x' = G(c) whose code is cut into one chunk per factor.
 * A step draws B/2 pairs (B images):
 *   - labeled pair (a, b) sharing factor k (probability `supervision`),
 *     primary stage: swap chunk k between E(a) and E(b), decode both
 *     hybrids; each must still reconstruct its own input.
 *   - unlabeled pair with a random chunk k, dual stage: swap chunk k,
 *     decode the hybrids, encode them again, swap chunk k back, decode; the
 *     outputs must reconstruct the original inputs.
 * loss = recon(x, G(E(x))) + w_swap*(primary + dual), every term a Bernoulli
 * NLL with logits (docs/architecture.md section 4), each stage a mean over its images.
 *
 * One encoder and one decoder run several times per step, each run on its own
 * net_cache, and the backward visits every path (gradients accumulate):
 *   x --E/ce--> c --G/cd--> recon
 *               c --swap--> hyb --G/cdh--> lh: rows of labeled pairs -> primary
 *                                          rows of unlabeled pairs:
 *   sigmoid(lh) --E/ce2--> c2 --swap--> back --G/cd2--> dual
 * Rows: pair p is rows 2p (a) and 2p+1 (b); labeled pairs first, so the
 * primary stage is rows [0, 2*nl) and the dual stage rows [2*nl, B). */
#include "model_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const params[] = {"latent_dim", "chunks", "supervision", "w_swap", NULL};
static const char *const terms[] = {"loss", "recon", "primary", "dual"};

static int resolve(run_config *c, err *e)
{
    /* one chunk per factor of the data set (data.name) */
    data_factor_desc fd;
    int rc = data_describe_name(c->name, &fd, e);
    if (rc < 0)
        return rc;
    if (c->n_chunks == 0) {
        c->n_chunks = fd.K;
        for (int i = 0; i < fd.K; i++)
            c->chunks[i] = 2;
    }
    if (c->n_chunks != fd.K)
        return err_set(e, ERR_INPUT, "chunks: needs one chunk per factor of %s (%d), got %d",
                       fd.name, fd.K, c->n_chunks);
    int sum = 0;
    for (int i = 0; i < c->n_chunks; i++)
        sum += c->chunks[i];
    if (model_key_set(c, "latent_dim") && c->latent_dim != sum)
        return err_set(e, ERR_INPUT, "chunks: sizes sum to %d but latent_dim is %d", sum,
                       c->latent_dim);
    c->latent_dim = sum;
    if (c->batch_size % 2)
        return err_set(e, ERR_INPUT, "batch_size: dsd trains on pairs of images and needs an even "
                                     "batch size, got %d", c->batch_size);
    if (isnan(c->supervision))
        c->supervision = 1;
    if (isnan(c->w_swap))
        c->w_swap = 1;
    return 0;
}

static void widths(const run_config *c, int *enc_out, int *code_dim, int *D, int *K)
{
    *D = c->latent_dim;
    *K = 0;
    *enc_out = c->latent_dim;
    *code_dim = c->latent_dim;
}

int dsd_sample_pairs(const data_source *d, rng *r, int npairs, double supervision, float *x,
                     int *f, int *k)
{
    // x (2*npairs, C*S*S), f (2*npairs, K) or NULL, k (npairs)
    const size_t P = (size_t)data_channels(d) * (size_t)data_size(d) * (size_t)data_size(d);
    data_factor_desc fd;
    data_describe(d, &fd);
    const int K = fd.K;
    int nl = 0;
    for (int p = 0; p < npairs; p++)
        nl += rng_uniform(r) < supervision;
    for (int p = 0; p < npairs; p++) {
        float *xa = x + (size_t)(2 * p) * P, *xb = xa + P;
        int *fa = f ? f + (size_t)(2 * p) * K : NULL, *fb = fa ? fa + K : NULL;
        int kk = (int)rng_below(r, (uint64_t)K);
        if (p < nl) {
            /* the pair shares factor kk's value; the others are independent
             * draws and coincide only by chance. Canonical index: mixed radix. */
            int ca[DATA_MAX_K], cb[DATA_MAX_K];
            uint32_t ia = 0, ib = 0;
            for (int j = 0; j < K; j++)
                ca[j] = (int)rng_below(r, (uint64_t)fd.sizes[j]);
            for (int j = 0; j < K; j++)
                cb[j] = j == kk ? ca[j] : (int)rng_below(r, (uint64_t)fd.sizes[j]);
            for (int j = 0; j < K; j++) {
                ia = ia * (uint32_t)fd.sizes[j] + (uint32_t)ca[j];
                ib = ib * (uint32_t)fd.sizes[j] + (uint32_t)cb[j];
            }
            /* a variant's colour or noise: from r, as any training image */
            data_get_rng(d, ia, r, xa, fa);
            data_get_rng(d, ib, r, xb, fb);
        } else {
            data_sample(d, r, 2, xa, fa, NULL);
        }
        k[p] = kk;
    }
    return nl;
}

typedef struct dsd_state {
    int off[DATA_MAX_K], len[DATA_MAX_K]; /* chunk j = code columns [off[j], off[j] + len[j]) */
    int *k;          /* (B/2) the chunk pair p swaps */
    net_cache cdh;   /* decoder on the hybrid codes, batch B */
    net_cache ce2;   /* encoder on the decoded hybrids (dual rows), batch B */
    net_cache cd2;   /* decoder on the swapped-back codes (dual rows), batch B */
    float *hyb;      /* (B, D) codes with chunk k swapped inside each pair */
    float *xt;       /* (B, P) sigmoid of the hybrids' logits (dual rows) */
    float *back;     /* (B, D) re-encoded hybrids, chunk k swapped back (dual rows) */
    float *dlh;      /* (B, P) gradient of the hybrids' logits */
    float *dl2;      /* (B, P) gradient of the dual outputs' logits */
    float *dxt;      /* (B, P) gradient of xt */
    float *dhyb;     /* (B, D) gradient of hyb */
    float *dback;    /* (B, D) gradient of back */
    float *dc2;      /* (B, D) gradient of the re-encoded codes */
} dsd_state;

static int init(model *m, err *e)
{
    dsd_state *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory for dsd");
    m->priv = s;
    for (int j = 0, o = 0; j < m->cfg.n_chunks && j < DATA_MAX_K; o += m->cfg.chunks[j++]) {
        s->off[j] = o;
        s->len[j] = m->cfg.chunks[j];
    }
    int rc;
    if ((rc = net_cache_create(&s->cdh, &m->dec, m->B, e)) < 0 ||
        (rc = net_cache_create(&s->ce2, &m->enc, m->B, e)) < 0 ||
        (rc = net_cache_create(&s->cd2, &m->dec, m->B, e)) < 0)
        return rc;
    size_t bd = (size_t)m->B * m->D, bp = (size_t)m->B * m->P;
    s->k = malloc((size_t)(m->B / 2 + 1) * sizeof(int));
    s->hyb = malloc(bd * sizeof(float));
    s->back = malloc(bd * sizeof(float));
    s->dhyb = malloc(bd * sizeof(float));
    s->dback = malloc(bd * sizeof(float));
    s->dc2 = malloc(bd * sizeof(float));
    s->xt = malloc(bp * sizeof(float));
    s->dlh = malloc(bp * sizeof(float));
    s->dl2 = malloc(bp * sizeof(float));
    s->dxt = malloc(bp * sizeof(float));
    if (!s->k || !s->hyb || !s->back || !s->dhyb || !s->dback || !s->dc2 || !s->xt ||
        !s->dlh || !s->dl2 || !s->dxt)
        return err_set(e, ERR_NOMEM, "out of memory for dsd's buffers");
    return 0;
}

static void fini(model *m)
{
    dsd_state *s = m->priv;
    if (!s)
        return;
    net_cache_free(&s->cdh);
    net_cache_free(&s->ce2);
    net_cache_free(&s->cd2);
    float *bufs[] = {s->hyb, s->back, s->dhyb, s->dback, s->dc2, s->xt, s->dlh, s->dl2, s->dxt};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(s->k);
    free(s);
    m->priv = NULL;
}

/* dst (2*npairs, D) = (acc ? dst : 0) + src with chunk k[p] exchanged between
 * rows 2p and 2p+1. The swap is a permutation and its own inverse, so the same
 * call maps a gradient back through it. */
static void swap_chunks(float *dst, const float *src, int npairs, const int *k,
                        const dsd_state *s, int D, int acc)
{
    for (int p = 0; p < npairs; p++) {
        const int a = 2 * p, b = 2 * p + 1, lo = s->off[k[p]], hi = lo + s->len[k[p]];
        for (int j = 0; j < D; j++) {
            int in = j >= lo && j < hi;
            float va = src[(size_t)(in ? b : a) * D + j], vb = src[(size_t)(in ? a : b) * D + j];
            float *da = dst + (size_t)a * D + j, *db = dst + (size_t)b * D + j;
            *da = acc ? *da + va : va;
            *db = acc ? *db + vb : vb;
        }
    }
}

static int step(model *m, const data_source *d, rng *dr, rng *nr, long t, double *out)
{
    (void)nr; /* deterministic autoencoder: no sampling noise */
    (void)t;
    dsd_state *s = m->priv;
    const int B = m->B, D = m->D, P = m->P, np = B / 2;
    const float w = (float)m->cfg.w_swap;
    const int nl = dsd_sample_pairs(d, dr, np, m->cfg.supervision, m->x, m->f, s->k);
    const int r0 = 2 * nl, U = B - r0; /* dual rows [r0, B) */
    const size_t bd = (size_t)B * D * sizeof(float), bp = (size_t)B * P * sizeof(float);

    /* ---- forward ---- */
    const float *c = net_forward(&m->enc, &m->ce, &m->arena, m->x, B); /* (B, D) */
    memcpy(m->code, c, bd);
    m->logits = net_forward(&m->dec, &m->cd, &m->arena, m->code, B); /* (B, P) */
    double recon = nn_bce_logits_forward(NULL, m->logits, m->x, B, P);
    memset(m->dlogits, 0, bp);
    nn_bce_logits_backward(m->dlogits, m->logits, m->x, B, P, 1.0f / (float)B);

    swap_chunks(s->hyb, m->code, np, s->k, s, D, 0);
    const float *lh = net_forward(&m->dec, &s->cdh, &m->arena, s->hyb, B); /* (B, P) */
    memset(s->dlh, 0, bp);
    double primary = NAN, dual = NAN;
    if (nl > 0) {
        primary = nn_bce_logits_forward(NULL, lh, m->x, r0, P);
        nn_bce_logits_backward(s->dlh, lh, m->x, r0, P, w / (float)r0);
    }
    if (U > 0) {
        /* the decoded hybrids are images: xt = sigmoid(logits) */
        const float *lu = lh + (size_t)r0 * P;
        float *xt = s->xt + (size_t)r0 * P;
        for (size_t n = 0; n < (size_t)U * P; n++)
            xt[n] = 1.0f / (1.0f + expf(-lu[n]));
        const float *c2 = net_forward(&m->enc, &s->ce2, &m->arena, xt, U); /* (U, D) */
        swap_chunks(s->back, c2, U / 2, s->k + nl, s, D, 0);
        const float *l2 = net_forward(&m->dec, &s->cd2, &m->arena, s->back, U); /* (U, P) */
        dual = nn_bce_logits_forward(NULL, l2, m->x + (size_t)r0 * P, U, P);
        memset(s->dl2, 0, (size_t)U * P * sizeof(float));
        nn_bce_logits_backward(s->dl2, l2, m->x + (size_t)r0 * P, U, P, w / (float)U);
    }

    /* ---- backward, last path first ---- */
    memset(m->dh, 0, bd); /* gradient of c = E(x), (B, D) */
    if (U > 0) {
        memset(s->dback, 0, (size_t)U * D * sizeof(float));
        net_backward(&m->dec, &s->cd2, &m->arena, s->dl2, s->dback, U);
        swap_chunks(s->dc2, s->dback, U / 2, s->k + nl, s, D, 0);
        memset(s->dxt, 0, (size_t)U * P * sizeof(float));
        net_backward(&m->enc, &s->ce2, &m->arena, s->dc2, s->dxt, U);
        /* xt = sigmoid(l): dl = dxt * xt * (1 - xt) */
        const float *xt = s->xt + (size_t)r0 * P;
        float *dl = s->dlh + (size_t)r0 * P;
        for (size_t n = 0; n < (size_t)U * P; n++)
            dl[n] += s->dxt[n] * xt[n] * (1.0f - xt[n]);
    }
    memset(s->dhyb, 0, bd);
    net_backward(&m->dec, &s->cdh, &m->arena, s->dlh, s->dhyb, B);
    swap_chunks(m->dh, s->dhyb, np, s->k, s, D, 1);
    net_backward(&m->dec, &m->cd, &m->arena, m->dlogits, m->dh, B);
    net_backward(&m->enc, &m->ce, &m->arena, m->dh, NULL, B);

    out[0] = recon + w * ((nl > 0 ? primary : 0.0) + (U > 0 ? dual : 0.0));
    out[1] = recon;
    out[2] = primary;
    out[3] = dual;
    return 0;
}

const model_method model_dsd = {
    .name = "dsd",
    .params = params,
    .terms = terms,
    .n_terms = 4,
    .stochastic = 0,
    .resolve = resolve,
    .widths = widths,
    .init = init,
    .fini = fini,
    .step = step,
};
