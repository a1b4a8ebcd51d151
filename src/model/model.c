/* The method table and what every method shares: creation of the networks
 * and buffers, the optimisation step around the method's loss, and the
 * encode/decode interface the metrics use. */
#include "model_impl.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Adding a method: one file defining a model_method, one row here. */
static const model_method *const methods[] = {
    &model_vae,      &model_betavae,  &model_annealedvae, &model_betatcvae, &model_factorvae,
    &model_dipvae1,  &model_dipvae2,  &model_jointvae,    &model_dsd,
};
enum { N_METHODS = sizeof methods / sizeof methods[0] };

static const model_method *find(const char *name)
{
    for (int i = 0; i < N_METHODS; i++)
        if (strcmp(methods[i]->name, name) == 0)
            return methods[i];
    return NULL;
}

const char *const *model_params(const char *method)
{
    const model_method *mm = find(method);
    return mm ? mm->params : NULL;
}

int model_exists(const char *method) { return find(method) != NULL; }

int model_key_set(const run_config *c, const char *name)
{
    const run_key *k = run_key_find(name);
    return k && (c->set >> (size_t)(k - run_keys) & 1);
}

int model_beta64(run_config *c, double dflt, err *e)
{
    if (isnan(c->beta64)) {
        if (isnan(c->beta))
            c->beta = dflt;
        return 0;
    }
    if (model_key_set(c, "beta"))
        return err_set(e, ERR_INPUT, "beta64: set beta or beta64, not both (beta64 %g means beta "
                                     "%g x the image's values / 4096)",
                       c->beta64, c->beta64);
    data_factor_desc dd;
    int rc = data_describe_name(c->name[0] ? c->name : "dsprites", &dd, e);
    if (rc < 0)
        return rc;
    c->beta = c->beta64 * (double)dd.channels * (double)c->image_size * (double)c->image_size /
              4096.0;
    return 0;
}

int model_takes(run_config *c, err *e)
{
    const model_method *mm = find(c->model);
    if (!mm)
        return err_set(e, ERR_INPUT, "model: unknown model '%s'", c->model);
    c->takes = 0;
    for (const char *const *p = mm->params; *p; p++) {
        const run_key *k = run_key_find(*p);
        assert(k && "a method's schema names a key of the key table");
        c->takes |= 1ull << (size_t)(k - run_keys);
    }
    return 0;
}

int model_resolve(run_config *c, err *e)
{
    /* A method's resolve may rename the model (betavae with c_max is
     * annealedvae): the configuration is then resolved once more, as the
     * method it names now. */
    for (int pass = 0;; pass++) {
        int rc = model_takes(c, e);
        if (rc < 0)
            return rc;
        const model_method *mm = find(c->model);
        for (size_t i = 0; i < run_n_keys; i++)
            if ((c->set >> i & 1) && !run_key_applies(c, &run_keys[i]))
                return err_set(e, ERR_INPUT, "%s: model %s does not take this parameter",
                               run_keys[i].name, c->model);
        if ((rc = mm->resolve(c, e)) < 0 || find(c->model) == mm)
            return rc;
        assert(pass == 0 && "a renamed method resolves as itself");
    }
}

size_t model_arena_state_size(const nn_arena *a, int optimizer)
{
    size_t floats = a->n * (optimizer ? 3 : 1);
    return sizeof(float) * floats + (optimizer ? sizeof a->t : 0);
}

/* Block layout: param (n floats) [, m (n), v (n), t (long)]. */
void model_arena_state_get(const nn_arena *a, int optimizer, void *out)
{
    char *p = out;
    memcpy(p, a->param, sizeof(float) * a->n);
    if (!optimizer)
        return;
    p += sizeof(float) * a->n;
    memcpy(p, a->m, sizeof(float) * a->n);
    p += sizeof(float) * a->n;
    memcpy(p, a->v, sizeof(float) * a->n);
    p += sizeof(float) * a->n;
    memcpy(p, &a->t, sizeof a->t);
}

void model_arena_state_set(nn_arena *a, int optimizer, const void *in)
{
    const char *p = in;
    memcpy(a->param, p, sizeof(float) * a->n);
    if (!optimizer)
        return;
    p += sizeof(float) * a->n;
    memcpy(a->m, p, sizeof(float) * a->n);
    p += sizeof(float) * a->n;
    memcpy(a->v, p, sizeof(float) * a->n);
    p += sizeof(float) * a->n;
    memcpy(&a->t, p, sizeof a->t);
}

/* The networks' block, then the method's own state (factorvae's
 * discriminator) when it has one. */
size_t model_state_size(const model *m, int optimizer)
{
    size_t extra = m->method->state_size ? m->method->state_size(m, optimizer) : 0;
    return model_arena_state_size(&m->arena, optimizer) + extra;
}

void model_state_get(const model *m, int optimizer, void *out)
{
    model_arena_state_get(&m->arena, optimizer, out);
    if (m->method->state_size)
        m->method->state_get(m, optimizer,
                             (char *)out + model_arena_state_size(&m->arena, optimizer));
}

int model_state_set(model *m, int optimizer, const void *in, size_t n, err *e)
{
    if (n != model_state_size(m, optimizer))
        return err_set(e, ERR_INPUT, "model state of %zu bytes, expected %zu for this configuration",
                       n, model_state_size(m, optimizer));
    model_arena_state_set(&m->arena, optimizer, in);
    if (m->method->state_size)
        m->method->state_set(m, optimizer,
                             (const char *)in + model_arena_state_size(&m->arena, optimizer));
    return 0;
}

static float *alloc_floats(size_t n, int *fail)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p)
        *fail = 1;
    return p;
}

int model_create(model **out, const run_config *c, size_t n_data, err *e)
{
    const model_method *mm = find(c->model);
    if (!mm)
        return err_set(e, ERR_INPUT, "model: unknown model '%s'", c->model);
    if (!mm->step)
        return err_set(e, ERR_INPUT, "model: %s cannot be trained yet", c->model);
    model *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(e, ERR_NOMEM, "out of memory for the model");
    m->method = mm;
    m->cfg = *c;
    m->B = c->batch_size;
    m->S = c->image_size;
    m->n_data = n_data;
    mm->widths(c, &m->enc_out, &m->code_dim, &m->D, &m->K);
    nn_arena_init(&m->arena);
    data_factor_desc fd;
    int rc = data_describe_name(c->name, &fd, e);
    if (rc < 0)
        goto fail;
    m->C = fd.channels;
    m->P = m->C * m->S * m->S;
    rc = net_build_encoder(&m->enc, &m->arena, c->arch, m->C, m->S, m->enc_out, e);
    if (rc == 0)
        rc = net_build_decoder(&m->dec, &m->arena, c->arch, m->C, m->S, m->code_dim, e);
    if (rc == 0)
        rc = nn_arena_alloc(&m->arena, e);
    if (rc == 0)
        rc = net_cache_create(&m->ce, &m->enc, m->B, e);
    if (rc == 0)
        rc = net_cache_create(&m->cd, &m->dec, m->B, e);
    if (rc < 0)
        goto fail;
    rng r;
    rng_seed(&r, (uint64_t)c->seed, RNG_INIT);
    net_init(&m->enc, &m->arena, &r);
    net_init(&m->dec, &m->arena, &r);

    size_t B = (size_t)m->B, D = (size_t)m->D;
    int nomem = 0;
    m->x = alloc_floats(B * m->P, &nomem);
    m->f = calloc(B * DATA_MAX_K, sizeof(int));
    nomem |= !m->f;
    m->mu = alloc_floats(B * D, &nomem);
    m->lv = alloc_floats(B * D, &nomem);
    m->dmu = alloc_floats(B * D, &nomem);
    m->dlv = alloc_floats(B * D, &nomem);
    m->eps = alloc_floats(B * D, &nomem);
    m->z = alloc_floats(B * D, &nomem);
    m->dz = alloc_floats(B * D, &nomem);
    m->code = alloc_floats(B * m->code_dim, &nomem);
    m->dcode = alloc_floats(B * m->code_dim, &nomem);
    m->dh = alloc_floats(B * m->enc_out, &nomem);
    m->dlogits = alloc_floats(B * m->P, &nomem);
    if (nomem) {
        rc = err_set(e, ERR_NOMEM, "out of memory for the model's buffers");
        goto fail;
    }
    if (mm->init && (rc = mm->init(m, e)) < 0)
        goto fail;
    *out = m;
    return 0;
fail:
    model_destroy(m);
    return rc;
}

void model_destroy(model *m)
{
    if (!m)
        return;
    if (m->method->fini)
        m->method->fini(m);
    net_cache_free(&m->ce);
    net_cache_free(&m->cd);
    nn_arena_free(&m->arena);
    float *bufs[] = {m->x, m->mu, m->lv, m->dmu, m->dlv, m->eps, m->z, m->dz,
                     m->code, m->dcode, m->dh, m->dlogits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(m->f);
    free(m);
}

void model_get_info(const model *m, model_info *info)
{
    memset(info, 0, sizeof *info);
    const run_config *c = &m->cfg;
    info->method = m->method->name;
    info->D = m->D;
    info->stochastic = m->method->stochastic;
    info->code_dim = m->code_dim;
    info->S = m->S;
    info->C = m->C;
    info->n_terms = m->method->n_terms;
    info->terms = m->method->terms;
    if (m->K) {
        info->n_discrete = c->n_discrete;
        memcpy(info->discrete, c->discrete, sizeof info->discrete);
    }
    if (strcmp(c->model, "dsd") == 0) {
        info->n_chunks = c->n_chunks;
        memcpy(info->chunks, c->chunks, sizeof info->chunks);
    }
}

int model_step(model *m, const data_source *d, rng *data_rng, rng *noise_rng, long t,
               double *terms, err *e)
{
    int n = m->method->step(m, d, data_rng, noise_rng, t, terms);
    /* terms[0] is the loss; a term that does not apply this step is NaN */
    if (!isfinite(terms[0])) {
        nn_arena_zero_grad(&m->arena);
        if (m->method->discard)
            m->method->discard(m);
        return err_set(e, ERR_NUMERIC, "step %ld: the loss is %g", t, terms[0]);
    }
    if (n < 0) {
        nn_arena_zero_grad(&m->arena);
        if (m->method->discard)
            m->method->discard(m);
        return err_set(e, n, "step %ld: the loss could not be computed", t);
    }
    /* Adam also zeroes the gradients for the next step. */
    nn_adam_step(&m->arena, (float)m->cfg.lr, 0.9f, 0.999f, 1e-8f);
    if (m->method->update)
        m->method->update(m);
    return 0;
}

/* Softmax of each discrete variable's logits: logits, alpha (K) for one item. */
static void softmax_blocks(const run_config *c, const float *logits, float *alpha)
{
    for (int i = 0, off = 0; i < c->n_discrete; off += c->discrete[i++]) {
        int K = c->discrete[i];
        float mx = logits[off];
        for (int k = 1; k < K; k++)
            mx = fmaxf(mx, logits[off + k]);
        double s = 0;
        for (int k = 0; k < K; k++)
            s += exp((double)logits[off + k] - mx);
        for (int k = 0; k < K; k++)
            alpha[off + k] = (float)(exp((double)logits[off + k] - mx) / s);
    }
}

void model_encode(model *m, const float *x, size_t n, float *mu, float *lv, float *alpha)
{
    size_t D = (size_t)m->D, K = (size_t)m->K;
    for (size_t i0 = 0; i0 < n; i0 += (size_t)m->B) {
        int b = (int)(n - i0 < (size_t)m->B ? n - i0 : (size_t)m->B);
        const float *h = net_forward(&m->enc, &m->ce, &m->arena, x + i0 * m->P, b);
        for (int i = 0; i < b; i++) {
            const float *hi = h + (size_t)i * m->enc_out;
            size_t row = i0 + (size_t)i;
            if (mu)
                memcpy(mu + row * D, hi, D * sizeof(float));
            if (lv) {
                if (m->method->stochastic)
                    memcpy(lv + row * D, hi + D, D * sizeof(float));
                else
                    memset(lv + row * D, 0, D * sizeof(float));
            }
            if (alpha && K)
                softmax_blocks(&m->cfg, hi + 2 * D, alpha + row * K);
        }
    }
}

void model_decode(model *m, const float *code, size_t n, float *logits)
{
    for (size_t i0 = 0; i0 < n; i0 += (size_t)m->B) {
        int b = (int)(n - i0 < (size_t)m->B ? n - i0 : (size_t)m->B);
        const float *y = net_forward(&m->dec, &m->cd, &m->arena, code + i0 * m->code_dim, b);
        memcpy(logits + i0 * m->P, y, (size_t)b * m->P * sizeof(float));
    }
}

void model_eval_code(const model *m, const float *mu, const float *alpha, size_t n, float *code)
{
    size_t D = (size_t)m->D, K = (size_t)m->K, W = (size_t)m->code_dim;
    const run_config *c = &m->cfg;
    for (size_t r = 0; r < n; r++) {
        float *out = code + r * W;
        memcpy(out, mu + r * D, D * sizeof(float));
        for (int i = 0, off = 0; i < c->n_discrete && K; off += c->discrete[i++]) {
            const float *a = alpha + r * K + off;
            int best = 0;
            for (int k = 1; k < c->discrete[i]; k++)
                if (a[k] > a[best])
                    best = k;
            for (int k = 0; k < c->discrete[i]; k++)
                out[D + (size_t)off + (size_t)k] = k == best ? 1.0f : 0.0f;
        }
    }
}
