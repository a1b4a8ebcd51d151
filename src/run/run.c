/* One training run: data, model, the step loop with progress and divergence
 * detection, then the evaluation. */
#include "untangle/metrics.h"
#include "untangle/model.h"
#include "untangle/run.h"

#include "../util/bytes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert((int)DATA_MAX_K == (int)RUN_MAX_FACTORS,
               "spec.h sizes run_result by the data sets' most factors");

/* 0 when d is the data set c names at c's image size. */
static int data_matches(const run_config *c, const data_source *d, err *e)
{
    data_factor_desc fd;
    data_describe(d, &fd);
    if (strcmp(fd.name, c->name) != 0)
        return err_set(e, ERR_INPUT, "data.name: %s but the data is %s", c->name, fd.name);
    if (data_size(d) != c->image_size)
        return err_set(e, ERR_INPUT, "image_size: %d but the data has %dx%d images",
                       c->image_size, data_size(d), data_size(d));
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the training loop's state and its checkpoint ---------------------------- */

/* Everything a checkpoint holds besides the model and the curves so far. */
typedef struct train_state {
    long step;                      /* steps done */
    double train_s;                 /* seconds of training of the earlier processes
                                       (train() adds this one's at its end) */
    double eval_s;                  /* seconds of their evaluations during training */
    rng data_rng, noise_rng;
    int n_terms;
    double sum[MODEL_MAX_TERMS];    /* the open log window: sums and counts of */
    long cnt[MODEL_MAX_TERMS];      /* the finite values of each loss term */
    double last_ckpt;               /* now_s() of the last checkpoint (not saved) */
} train_state;

#define CKPT_MAGIC 0x56544e55u /* "UNTV": the training-state payload */
#define CKPT_MAGIC_1 0x53544e55u /* "UNTS": the first one, without eval_s (read) */

/* Payload: u32 magic, u32 n_terms, i64 step, f64 train_s, f64 eval_s, the
 * two rngs, f64 sum[n_terms], i64 cnt[n_terms], f64 loss, u64 n_curve + the
 * points, u64 state bytes + model_state_get(optimizer = 1). train_s and
 * eval_s: the seconds of training and of the evaluations during training
 * up to this checkpoint, over every process the run was continued in (this
 * process's: since t_start, of which evals_s went to evaluations). */
static int ckpt_save(const run_hooks *h, const run_config *c, const train_state *ts,
                     double t_start, double evals_s, const run_result *r, const model *m)
{
    const double train_s = ts->train_s + now_s() - t_start - evals_s,
                 eval_s = ts->eval_s + evals_s;
    bytes b = {0};
    bytes_u32(&b, CKPT_MAGIC);
    bytes_u32(&b, (uint32_t)ts->n_terms);
    bytes_put(&b, &ts->step, sizeof ts->step);
    bytes_put(&b, &train_s, sizeof train_s);
    bytes_put(&b, &eval_s, sizeof eval_s);
    bytes_put(&b, &ts->data_rng, sizeof ts->data_rng);
    bytes_put(&b, &ts->noise_rng, sizeof ts->noise_rng);
    bytes_put(&b, ts->sum, sizeof(double) * (size_t)ts->n_terms);
    bytes_put(&b, ts->cnt, sizeof(long) * (size_t)ts->n_terms);
    bytes_put(&b, &r->metric[RUN_M_LOSS], sizeof(double));
    bytes_u64(&b, r->n_curve);
    bytes_put(&b, r->curve, sizeof *r->curve * r->n_curve);
    size_t n = model_state_size(m, 1);
    bytes_u64(&b, n);
    uint8_t *state = malloc(n ? n : 1);
    int got = state != NULL;
    if (got) {
        model_state_get(m, 1, state);
        bytes_put(&b, state, n);
        free(state);
    }
    err e;
    err_clear(&e);
    char id[17];
    run_config_id(c, id);
    int rc = b.fail || !got
                 ? err_set(&e, ERR_NOMEM, "out of memory for a checkpoint")
                 : run_file_write(h->ckpt_path, RUN_FILE_CKPT, id, b.p, b.len, &e);
    bytes_free(&b);
    if (rc < 0 && h->note) {
        char msg[1200];
        snprintf(msg, sizeof msg, "checkpoint not written (training goes on): %s", e.msg);
        h->note(h->ctx, msg);
    }
    return rc;
}

/* Continue from the run's checkpoint when there is a valid one: 1 continued,
 * 0 starting from zero (no checkpoint, or a damaged one: noted). */
static int ckpt_load(const run_hooks *h, const run_config *c, train_state *ts, run_result *r,
                     model *m)
{
    char id[17], msg[1400];
    run_config_id(c, id);
    uint8_t *p = NULL;
    size_t len = 0;
    err e;
    err_clear(&e);
    int rc = run_file_read(h->ckpt_path, RUN_FILE_CKPT, id, &p, &len, &e);
    if (rc != 0 && e.code && h->note) {
        snprintf(msg, sizeof msg, "%s%s", e.msg, rc < 0 ? "; starting from step 0" : "");
        h->note(h->ctx, msg);
    }
    if (rc <= 0)
        return 0;
    cursor in = {p, len, 0, 0};
    train_state t = *ts;
    uint32_t magic = cursor_u32(&in), n_terms = cursor_u32(&in);
    int ok = !in.fail && (magic == CKPT_MAGIC || magic == CKPT_MAGIC_1) &&
             (int)n_terms == ts->n_terms;
    cursor_get(&in, &t.step, sizeof t.step);
    cursor_get(&in, &t.train_s, sizeof t.train_s);
    t.eval_s = 0.0;
    if (magic == CKPT_MAGIC)
        cursor_get(&in, &t.eval_s, sizeof t.eval_s);
    cursor_get(&in, &t.data_rng, sizeof t.data_rng);
    cursor_get(&in, &t.noise_rng, sizeof t.noise_rng);
    if (ok) {
        cursor_get(&in, t.sum, sizeof(double) * n_terms);
        cursor_get(&in, t.cnt, sizeof(long) * n_terms);
    }
    double loss = NAN;
    cursor_get(&in, &loss, sizeof loss);
    uint64_t n_curve = cursor_u64(&in);
    ok = ok && !in.fail && t.step >= 0 && t.step <= c->steps &&
         n_curve <= (len - in.at) / sizeof *r->curve;
    for (uint64_t i = 0; ok && i < n_curve; i++) {
        run_curve_point pt;
        cursor_get(&in, &pt, sizeof pt);
        pt.name[sizeof pt.name - 1] = '\0';
        ok = !in.fail && run_result_add_curve(r, pt.step, pt.name, pt.value, NULL) == 0;
    }
    uint64_t n = cursor_u64(&in);
    ok = ok && !in.fail && n == len - in.at &&
         model_state_set(m, 1, p + in.at, (size_t)n, &e) == 0;
    free(p);
    if (!ok) {
        free(r->curve);
        r->curve = NULL;
        r->n_curve = r->cap_curve = 0;
        if (h->note) {
            snprintf(msg, sizeof msg, "%s: malformed checkpoint; starting from step 0",
                     h->ckpt_path);
            h->note(h->ctx, msg);
        }
        return 0;
    }
    r->metric[RUN_M_LOSS] = loss;
    *ts = t;
    return 1;
}

/* The final parameters and the configuration (the canonical "key=value"
 * lines of the keys that apply) of an ok run. Payload: u64 text bytes +
 * text, u64 state bytes + model_state_get(optimizer = 0). */
static int model_save(const run_hooks *h, const run_config *c, const model *m, err *e)
{
    char id[17], line[1300], val[1200];
    run_config_id(c, id);
    bytes text = {0};
    for (size_t i = 0; i < run_n_keys; i++)
        if (run_key_applies(c, &run_keys[i])) {
            run_config_format(c, &run_keys[i], val, sizeof val);
            snprintf(line, sizeof line, "%s=%s\n", run_keys[i].name, val);
            bytes_put(&text, line, strlen(line));
        }
    size_t n = model_state_size(m, 0);
    uint8_t *state = malloc(n ? n : 1);
    bytes b = {0};
    if (state) {
        model_state_get(m, 0, state);
        bytes_u64(&b, text.len);
        bytes_put(&b, text.p, text.len);
        bytes_u64(&b, n);
        bytes_put(&b, state, n);
    }
    int rc = !state || b.fail || text.fail
                 ? err_set(e, ERR_NOMEM, "out of memory saving the model")
                 : run_file_write(h->model_path, RUN_FILE_MODEL, id, b.p, b.len, e);
    free(state);
    bytes_free(&b);
    bytes_free(&text);
    return rc;
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

/* Close the log window at step: its means become curve points, the loss
 * metric and a progress line. 0 or ERR_NOMEM. */
static int close_window(const run_config *c, const model_info *info, train_state *ts,
                        const run_hooks *h, double ips, run_result *r, err *e)
{
    double terms[MODEL_MAX_TERMS];
    for (int i = 0; i < info->n_terms; i++) {
        terms[i] = ts->cnt[i] ? ts->sum[i] / (double)ts->cnt[i] : NAN;
        if (ts->cnt[i] && run_result_add_curve(r, ts->step, info->terms[i], terms[i], e) < 0)
            return e->code;
        ts->sum[i] = 0;
        ts->cnt[i] = 0;
    }
    r->metric[RUN_M_LOSS] = terms[0];
    if (h && h->progress)
        h->progress(h->ctx, ts->step, c->steps, info->n_terms, info->terms, terms, ips);
    return 0;
}

/* The metrics a learning curve follows (eval.<metric> curve points). */
static const int curve_metrics[] = {RUN_M_RECON, RUN_M_KL,        RUN_M_TC,        RUN_M_MIG,
                                    RUN_M_MIG_HIST, RUN_M_SWAP_ACC, RUN_M_CHUNK_MIG, RUN_M_DISC_ACC};

/* The evaluation ev of the model at step as curve points of r: eval.<metric>
 * for curve_metrics, and per factor of d mi.<factor> (the most mutual
 * information any unit holds about it, nats) and gap.<factor> (Chen et al.'s
 * normalised gap); NaN values are left out. 0 or ERR_NOMEM. */
static int eval_curve(const data_source *d, long step, const run_result *ev, run_result *r,
                      err *e)
{
    char name[sizeof r->curve[0].name];
    for (size_t i = 0; i < sizeof curve_metrics / sizeof curve_metrics[0]; i++) {
        double v = ev->metric[curve_metrics[i]];
        snprintf(name, sizeof name, "eval.%s", run_metric_names[curve_metrics[i]]);
        if (!isnan(v) && run_result_add_curve(r, step, name, v, e) < 0)
            return e->code;
    }
    data_factor_desc fd;
    data_describe(d, &fd);
    for (int k = 0; k < ev->n_factors && k < fd.K; k++) {
        double top = NAN;
        for (int u = 0; ev->mi && u < ev->n_units; u++)
            if (isnan(top) || ev->mi[u * ev->n_factors + k] > top)
                top = ev->mi[u * ev->n_factors + k];
        snprintf(name, sizeof name, "mi.%s", fd.names[k]);
        if (!isnan(top) && run_result_add_curve(r, step, name, top, e) < 0)
            return e->code;
        snprintf(name, sizeof name, "gap.%s", fd.names[k]);
        if (!isnan(ev->mig_factor[k]) &&
            run_result_add_curve(r, step, name, ev->mig_factor[k], e) < 0)
            return e->code;
    }
    return 0;
}

/* Evaluate m at ts->step (eval_every) into curve points of r, and tell h. */
static int eval_during(const run_config *c, const data_source *d, model *m,
                       const run_hooks *h, const train_state *ts, run_result *r, err *e)
{
    run_result ev;
    run_result_init(&ev);
    int rc = run_evaluate(m, d, c, &ev, e);
    if (rc == 0)
        rc = eval_curve(d, ts->step, &ev, r, e);
    if (rc == 0 && h && h->note) {
        char msg[160];
        snprintf(msg, sizeof msg, "step %ld of %ld: evaluated: recon %.2f, kl %.2f, mig %.3f",
                 ts->step, c->steps, ev.metric[RUN_M_RECON], ev.metric[RUN_M_KL],
                 ev.metric[RUN_M_MIG]);
        h->note(h->ctx, msg);
    }
    run_result_free(&ev);
    return rc;
}

/* Train from ts->step to c->steps: r->status OK, DIVERGED, FAILED or
 * INTERRUPTED (a stop asked through h, after a checkpoint). The evaluations
 * every c->eval_every steps count as evaluation, not training: their seconds
 * (this process's) go to *eval_s, and the checkpoints keep the two apart.
 * 0 or ERR_NOMEM. */
static int train(const run_config *c, const data_source *d, model *m, const run_hooks *h,
                 train_state *ts, run_result *r, double *eval_s, err *e)
{
    model_info info;
    model_get_info(m, &info);
    const int ckpt = h && h->ckpt_path;
    double terms[MODEL_MAX_TERMS];
    double t_start = now_s(), t_window = t_start;
    long window = 0;
    r->status = RUN_OK;
    while (ts->step < c->steps) {
        if (h && h->should_stop && h->should_stop(h->ctx)) {
            if (ckpt)
                ckpt_save(h, c, ts, t_start, *eval_s, r, m);
            r->status = RUN_INTERRUPTED;
            snprintf(r->error, sizeof r->error, "interrupted after step %ld of %ld%s", ts->step,
                     c->steps, ckpt ? " (checkpointed)" : "");
            break;
        }
        err se;
        err_clear(&se);
        if (model_step(m, d, &ts->data_rng, &ts->noise_rng, ts->step + 1, terms, &se) < 0) {
            r->status = se.code == ERR_NUMERIC ? RUN_DIVERGED : RUN_FAILED;
            set_error(r, se.msg);
            break;
        }
        ts->step++;
        for (int i = 0; i < info.n_terms; i++)
            if (isfinite(terms[i])) {
                ts->sum[i] += terms[i];
                ts->cnt[i]++;
            }
        window++;
        if (ts->step % c->log_every == 0 || ts->step == c->steps) {
            double t = now_s();
            int rc = close_window(c, &info, ts, h, (double)window * c->batch_size / (t - t_window),
                                  r, e);
            if (rc < 0) {
                fail(r, RUN_FAILED, e);
                return rc;
            }
            window = 0;
            t_window = t;
        }
        if (c->eval_every > 0 && ts->step % c->eval_every == 0 && ts->step < c->steps) {
            double t = now_s();
            int rc = eval_during(c, d, m, h, ts, r, e);
            if (rc < 0) {
                fail(r, RUN_FAILED, e);
                return rc;
            }
            t_window = now_s();
            *eval_s += t_window - t;
        }
        if (ckpt && h->ckpt_every > 0 && ts->step < c->steps &&
            now_s() - ts->last_ckpt >= h->ckpt_every) {
            ckpt_save(h, c, ts, t_start, *eval_s, r, m);
            ts->last_ckpt = now_s();
        }
    }
    ts->train_s += now_s() - t_start - *eval_s;
    return 0;
}

int run_execute(const run_config *c, const data_source *d, int eval, const run_hooks *h,
                run_result *r, err *e)
{
    double t0 = now_s();
    data_source *own = NULL;
    model *m = NULL;
    int rc = 0;
    r->status = RUN_FAILED;
    if (!d) {
        rc = data_open(&own, c->name, c->path, c->image_size, e);
        if (rc < 0) {
            fail(r, RUN_FAILED, e);
            goto done;
        }
        d = own;
    } else if ((rc = data_matches(c, d, e)) < 0) {
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
    train_state ts;
    memset(&ts, 0, sizeof ts);
    ts.n_terms = info.n_terms;
    rng_seed(&ts.data_rng, (uint64_t)c->seed, RNG_DATA);
    rng_seed(&ts.noise_rng, (uint64_t)c->seed, RNG_NOISE);
    ts.last_ckpt = now_s();
    if (h && h->ckpt_path)
        ckpt_load(h, c, &ts, r, m);
    const long first = ts.step;
    const double before = ts.train_s;
    double evals_s = 0; /* of this process's evaluations during training */
    if ((rc = train(c, d, m, h, &ts, r, &evals_s, e)) < 0)
        goto done;
    r->steps = ts.step;
    r->train_s = ts.train_s; /* of every process the run was continued in */
    r->imgs_per_s = ts.train_s > before
                        ? (double)(ts.step - first) * c->batch_size / (ts.train_s - before)
                        : NAN;
    double t_eval = now_s();
    if (r->status == RUN_OK && eval) {
        if ((rc = run_evaluate(m, d, c, r, e)) < 0 ||
            (c->eval_every > 0 && (rc = eval_curve(d, ts.step, r, r, e)) < 0))
            fail(r, RUN_FAILED, e);
    }
    if (r->status == RUN_OK && h && h->model_path && (rc = model_save(h, c, m, e)) < 0)
        fail(r, RUN_FAILED, e);
    if (h && h->ckpt_path && r->status != RUN_INTERRUPTED)
        run_file_remove(h->ckpt_path);
    r->eval_s = now_s() - t_eval + ts.eval_s + evals_s;
    rc = rc < 0 ? rc : 0;
done:
    r->wall_s = now_s() - t0;
    model_destroy(m);
    data_close(own);
    return rc;
}

/* ---- a saved model evaluated again ------------------------------------------- */

int run_reevaluate(const run_config *c, const data_source *d, const char *model_path,
                   const char *run_id, run_codes_sink sink, void *ctx, run_result *r, err *e)
{
    double t0 = now_s();
    data_source *own = NULL;
    model *m = NULL;
    uint8_t *p = NULL;
    size_t len = 0;
    int rc = 0;
    r->status = RUN_FAILED;
    /* the saved model first: a run without one costs no data or network */
    int got = run_file_read(model_path, RUN_FILE_MODEL, run_id, &p, &len, e);
    if (got == 0)
        rc = err_set(e, ERR_INPUT, "no saved model %s (trained with --no-save-models, or "
                     "removed)", model_path);
    else if (got < 0)
        rc = err_prefix(e, "saved model unusable: ");
    if (rc < 0)
        goto done;
    cursor in = {p, len, 0, 0};
    uint64_t text_len = cursor_u64(&in);
    if (!in.fail && text_len <= len - in.at)
        in.at += (size_t)text_len; /* the configuration: the run id already vouches for it */
    uint64_t n = cursor_u64(&in);
    if (in.fail || n != len - in.at) {
        rc = err_set(e, ERR_INPUT, "%s: malformed saved model", model_path);
        goto done;
    }
    if (!d) {
        rc = data_open(&own, c->name, c->path, c->image_size, e);
        if (rc < 0)
            goto done;
        d = own;
    } else if ((rc = data_matches(c, d, e)) < 0) {
        goto done;
    }
    if ((rc = model_create(&m, c, data_count(d), e)) < 0 ||
        (rc = model_state_set(m, 0, p + in.at, (size_t)n, e)) < 0) {
        err_prefix(e, "%s: ", model_path);
        goto done;
    }
    r->steps = c->steps;
    r->train_s = 0;
    r->imgs_per_s = NAN;
    double t_eval = now_s();
    if ((rc = run_evaluate_codes(m, d, c, sink, ctx, r, e)) == 0)
        r->status = RUN_OK;
    r->eval_s = now_s() - t_eval;
done:
    if (rc < 0)
        fail(r, RUN_FAILED, e);
    r->wall_s = now_s() - t0;
    free(p);
    model_destroy(m);
    data_close(own);
    return rc;
}
