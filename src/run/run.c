/* One training run: data, model, the step loop with progress and divergence
 * detection, then the evaluation. */
#include "untangle/metrics.h"
#include "untangle/model.h"
#include "untangle/run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void run_result_init(run_result *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < RUN_N_METRICS; i++)
        r->metric[i] = NAN;
    for (int k = 0; k < DATA_K; k++)
        r->mig_factor[k] = r->swap_factor[k] = NAN;
    r->wall_s = r->train_s = r->eval_s = r->imgs_per_s = NAN;
}

void run_result_free(run_result *r)
{
    if (!r)
        return;
    free(r->mi);
    free(r->traversal);
    free(r->curve);
    run_result_init(r);
}

int run_result_add_curve(run_result *r, long step, const char *name, double value, err *e)
{
    if (r->n_curve == r->cap_curve) {
        size_t cap = r->cap_curve ? 2 * r->cap_curve : 64;
        run_curve_point *p = realloc(r->curve, cap * sizeof *p);
        if (!p)
            return err_set(e, ERR_NOMEM, "out of memory for the training curve");
        r->curve = p;
        r->cap_curve = cap;
    }
    run_curve_point *p = &r->curve[r->n_curve++];
    memset(p, 0, sizeof *p);
    p->step = step;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->value = value;
    return 0;
}

/* ---- serialisation: a flat little buffer, same-architecture peers ---------- */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
    int fail;
} buf;

static void put(buf *b, const void *src, size_t n)
{
    if (b->fail)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->fail = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

#define RESULT_MAGIC 0x554e5452u /* "UNTR" */

int run_result_pack(const run_result *r, uint8_t **out, size_t *len, err *e)
{
    buf b = {0};
    uint32_t magic = RESULT_MAGIC;
    put(&b, &magic, sizeof magic);
    put(&b, &r->status, sizeof r->status);
    put(&b, r->error, sizeof r->error);
    put(&b, &r->steps, sizeof r->steps);
    put(&b, &r->wall_s, sizeof(double) * 4); /* wall_s, train_s, eval_s, imgs_per_s */
    put(&b, r->metric, sizeof r->metric);
    put(&b, &r->n_units, sizeof r->n_units);
    if (r->n_units > 0)
        put(&b, r->mi, sizeof(float) * (size_t)r->n_units * DATA_K);
    put(&b, r->mig_factor, sizeof r->mig_factor);
    put(&b, r->swap_factor, sizeof r->swap_factor);
    int th = r->traversal ? r->trav_h : 0, tw = r->traversal ? r->trav_w : 0;
    put(&b, &th, sizeof th);
    put(&b, &tw, sizeof tw);
    if (th > 0)
        put(&b, r->traversal, (size_t)th * tw);
    put(&b, &r->n_curve, sizeof r->n_curve);
    if (r->n_curve)
        put(&b, r->curve, sizeof *r->curve * r->n_curve);
    if (b.fail) {
        free(b.p);
        return err_set(e, ERR_NOMEM, "out of memory packing a run result");
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

typedef struct rd {
    const uint8_t *p;
    size_t len, at;
    int fail;
} rd;

static void get(rd *r, void *dst, size_t n)
{
    if (r->fail || r->len - r->at < n) {
        r->fail = 1;
        return;
    }
    memcpy(dst, r->p + r->at, n);
    r->at += n;
}

int run_result_unpack(run_result *r, const uint8_t *p, size_t len, err *e)
{
    rd in = {p, len, 0, 0};
    uint32_t magic = 0;
    get(&in, &magic, sizeof magic);
    if (in.fail || magic != RESULT_MAGIC)
        return err_set(e, ERR_INTERNAL, "run result message: bad magic");
    run_result_free(r);
    get(&in, &r->status, sizeof r->status);
    get(&in, r->error, sizeof r->error);
    r->error[sizeof r->error - 1] = '\0';
    get(&in, &r->steps, sizeof r->steps);
    get(&in, &r->wall_s, sizeof(double) * 4);
    get(&in, r->metric, sizeof r->metric);
    get(&in, &r->n_units, sizeof r->n_units);
    if (!in.fail && (r->n_units < 0 || r->n_units > 100000))
        in.fail = 1;
    if (!in.fail && r->n_units > 0) {
        r->mi = malloc(sizeof(float) * (size_t)r->n_units * DATA_K);
        if (!r->mi)
            in.fail = 1;
        else
            get(&in, r->mi, sizeof(float) * (size_t)r->n_units * DATA_K);
    }
    get(&in, r->mig_factor, sizeof r->mig_factor);
    get(&in, r->swap_factor, sizeof r->swap_factor);
    get(&in, &r->trav_h, sizeof r->trav_h);
    get(&in, &r->trav_w, sizeof r->trav_w);
    if (!in.fail && (r->trav_h < 0 || r->trav_w < 0 || (size_t)r->trav_h * r->trav_w > len))
        in.fail = 1;
    if (!in.fail && r->trav_h > 0) {
        r->traversal = malloc((size_t)r->trav_h * r->trav_w);
        if (!r->traversal)
            in.fail = 1;
        else
            get(&in, r->traversal, (size_t)r->trav_h * r->trav_w);
    }
    size_t nc = 0;
    get(&in, &nc, sizeof nc);
    if (!in.fail && nc > len / sizeof *r->curve)
        in.fail = 1;
    if (!in.fail && nc) {
        r->curve = malloc(sizeof *r->curve * nc);
        if (!r->curve)
            in.fail = 1;
        else {
            get(&in, r->curve, sizeof *r->curve * nc);
            r->n_curve = r->cap_curve = nc;
        }
    }
    if (in.fail || in.at != len) {
        run_result_free(r);
        return err_set(e, ERR_INTERNAL, "run result message: truncated or malformed (%zu bytes)",
                       len);
    }
    return 0;
}

/* ---- the run ------------------------------------------------------------------ */

/* Copy msg into r->error, truncated to its fixed size (it becomes a
 * fixed-length string column). */
static void set_error(run_result *r, const char *msg)
{
    size_t n = strnlen(msg, sizeof r->error - 1);
    memcpy(r->error, msg, n);
    r->error[n] = '\0';
}

static void fail(run_result *r, int status, const err *e)
{
    r->status = status;
    set_error(r, e->msg);
}

int run_execute(const run_config *c, const data_source *d, int eval, const run_hooks *h,
                run_result *r, err *e)
{
    double t0 = now_s();
    data_source *own = NULL;
    model *m = NULL;
    double *sum = NULL;
    int rc = 0;
    r->status = RUN_FAILED;
    if (!d) {
        rc = c->path[0] ? data_open_file(&own, c->path, c->image_size, e)
                        : data_open_builtin(&own, c->image_size, e);
        if (rc < 0) {
            fail(r, RUN_FAILED, e);
            goto done;
        }
        d = own;
    } else if (data_size(d) != c->image_size) {
        rc = err_set(e, ERR_INPUT, "image_size: %d but the data has %dx%d images",
                     c->image_size, data_size(d), data_size(d));
        fail(r, RUN_FAILED, e);
        goto done;
    }
    if (c->steps == 0 && !eval) {
        /* nothing to train or measure: a row with its timings (the
         * scheduler's overhead benchmark runs such sweeps) */
        r->status = RUN_OK;
        r->train_s = r->eval_s = 0;
        goto done;
    }
    if ((rc = model_create(&m, c, data_count(d), e)) < 0) {
        fail(r, RUN_FAILED, e);
        goto done;
    }
    model_info info;
    model_get_info(m, &info);
    rng data_rng, noise_rng;
    rng_seed(&data_rng, (uint64_t)c->seed, RNG_DATA);
    rng_seed(&noise_rng, (uint64_t)c->seed, RNG_NOISE);

    /* terms averaged over each log window, for progress and the curves */
    double terms[MODEL_MAX_TERMS];
    sum = calloc((size_t)info.n_terms, sizeof *sum);
    long *cnt = calloc((size_t)info.n_terms, sizeof *cnt);
    if (!sum || !cnt) {
        free(cnt);
        rc = err_set(e, ERR_NOMEM, "out of memory");
        fail(r, RUN_FAILED, e);
        goto done;
    }
    double t_train = now_s(), t_window = t_train;
    long step = 0, window = 0;
    r->status = RUN_OK;
    for (step = 1; step <= c->steps; step++) {
        if (h && h->should_stop && h->should_stop(h->ctx)) {
            r->status = RUN_INTERRUPTED;
            snprintf(r->error, sizeof r->error, "interrupted at step %ld", step);
            break;
        }
        err se;
        err_clear(&se);
        if (model_step(m, d, &data_rng, &noise_rng, step, terms, &se) < 0) {
            r->status = se.code == ERR_NUMERIC ? RUN_DIVERGED : RUN_FAILED;
            set_error(r, se.msg);
            break;
        }
        for (int i = 0; i < info.n_terms; i++)
            if (isfinite(terms[i])) {
                sum[i] += terms[i];
                cnt[i]++;
            }
        window++;
        if (step % c->log_every == 0 || step == c->steps) {
            double t = now_s();
            double ips = (double)window * c->batch_size / (t - t_window);
            for (int i = 0; i < info.n_terms; i++) {
                terms[i] = cnt[i] ? sum[i] / (double)cnt[i] : NAN;
                if (cnt[i] && run_result_add_curve(r, step, info.terms[i], terms[i], e) < 0) {
                    rc = e->code;
                    fail(r, RUN_FAILED, e);
                    break;
                }
                sum[i] = 0;
                cnt[i] = 0;
            }
            if (rc < 0)
                break;
            r->metric[RUN_M_LOSS] = terms[0];
            if (h && h->progress)
                h->progress(h->ctx, step, c->steps, info.n_terms, info.terms, terms, ips);
            window = 0;
            t_window = t;
        }
    }
    free(cnt);
    r->steps = step - 1;
    double t_eval = now_s();
    r->train_s = t_eval - t_train;
    r->imgs_per_s = r->train_s > 0 ? (double)r->steps * c->batch_size / r->train_s : NAN;
    if (r->status == RUN_OK && eval) {
        if ((rc = metrics_evaluate(m, d, c, r, e)) < 0)
            fail(r, RUN_FAILED, e);
    }
    r->eval_s = now_s() - t_eval;
    rc = rc < 0 ? rc : 0;
done:
    r->wall_s = now_s() - t0;
    free(sum);
    model_destroy(m);
    data_close(own);
    return rc;
}
