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

_Static_assert((int)DATA_K == (int)RUN_N_FACTORS,
               "spec.h sizes run_result by the data's factor count");

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
        if ((rc = run_evaluate(m, d, c, r, e)) < 0)
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
