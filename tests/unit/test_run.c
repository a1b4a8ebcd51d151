/* run and model: the key table, one training end to end, the overfit test,
 * reproducibility, result serialisation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "untangle/model.h"
#include "untangle/run.h"

static void set(run_config *c, const char *k, const char *v)
{
    err e;
    err_clear(&e);
    if (run_config_set(c, k, v, &e) < 0)
        fail_msg("%s=%s: %s", k, v, e.msg);
}

static void test_keys_parse_and_reject(void **state)
{
    (void)state;
    run_config c;
    run_config_defaults(&c);
    err e;
    set(&c, "beta", "4");
    assert_true(c.beta == 4.0);
    set(&c, "steps", "1e3");
    assert_int_equal(c.steps, 1000);
    set(&c, "discrete", "[3, 4]");
    assert_int_equal(c.n_discrete, 2);
    assert_int_equal(c.discrete[1], 4);
    static const struct {
        const char *key, *value, *msg;
    } bad[] = {
        {"betta", "4", "unknown key 'betta'"},
        {"beta", "-1", "beta: -1 is out of range"},
        {"beta", "four", "beta: expected a number"},
        {"steps", "1.5", "steps: expected an integer"},
        {"lambda", "0", "lambda: 0 is out of range"},
        {"image_size", "48", "image_size: 48 is not supported"},
        {"arch", "resnet", "arch: 'resnet' is not one of mlp|conv|dlib"},
        {"discrete", "[3,", "discrete: expected a list"},
        {"discrete", "[1]", "discrete: value 1 is out of range"},
        {"lr", "nan", "lr: expected a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_config d = c;
        err_clear(&e);
        assert_int_equal(run_config_set(&d, bad[i].key, bad[i].value, &e), ERR_INPUT);
        if (!strstr(e.msg, bad[i].msg))
            fail_msg("%s=%s: got '%s', want '%s'", bad[i].key, bad[i].value, e.msg, bad[i].msg);
        assert_memory_equal(&d, &c, sizeof c); /* nothing written on error */
    }
}

static void test_resolve_rejects_foreign_params(void **state)
{
    (void)state;
    run_config c;
    err e;
    run_config_defaults(&c);
    set(&c, "model", "betavae");
    set(&c, "lambda", "0.5");
    err_clear(&e);
    assert_int_equal(model_resolve(&c, &e), ERR_INPUT);
    assert_non_null(strstr(e.msg, "lambda: model betavae does not take"));

    run_config_defaults(&c);
    set(&c, "model", "dsd");
    set(&c, "chunks", "[2,2,2,2,2]");
    set(&c, "latent_dim", "8");
    err_clear(&e);
    assert_int_equal(model_resolve(&c, &e), ERR_INPUT);
    assert_non_null(strstr(e.msg, "chunks"));

    run_config_defaults(&c);
    set(&c, "model", "betavae");
    assert_int_equal(model_resolve(&c, &e), 0);
    assert_true(c.beta == 4.0); /* the default */
    assert_true(isnan(c.c_max));
}

static void test_run_id_ignores_order_and_reporting(void **state)
{
    (void)state;
    run_config a, b;
    run_config_defaults(&a);
    run_config_defaults(&b);
    set(&a, "model", "betavae");
    set(&a, "beta", "2");
    set(&b, "beta", "2");
    set(&b, "model", "betavae");
    set(&b, "log_every", "7");
    set(&b, "eval_every", "100");
    err e;
    assert_int_equal(model_resolve(&a, &e), 0);
    assert_int_equal(model_resolve(&b, &e), 0);
    char ia[17], ib[17];
    run_config_id(&a, ia);
    run_config_id(&b, ib);
    assert_string_equal(ia, ib);
    set(&b, "seed", "1");
    run_config_id(&b, ib);
    assert_string_not_equal(ia, ib);
}

static run_config small(const char *model)
{
    run_config c;
    run_config_defaults(&c);
    set(&c, "model", model);
    set(&c, "image_size", "32");
    set(&c, "steps", "60");
    set(&c, "log_every", "20");
    /* small batches and evaluation: these tests are about what a run does,
     * not what it learns (the overfit test sets its own batch) */
    set(&c, "batch_size", "16");
    set(&c, "images", "300");
    set(&c, "samples", "200");
    set(&c, "pairs", "20");
    err e;
    if (model_resolve(&c, &e) < 0)
        fail_msg("%s", e.msg);
    return c;
}

/* betavae on 64 fixed 32x32 images: recon must fall below 10 % of its start. */
static void test_overfit_fixed_batch(void **state)
{
    (void)state;
    err e;
    err_clear(&e);
    data_source *all = NULL, *d = NULL;
    assert_int_equal(data_open_builtin(&all, 32, &e), 0);
    uint32_t idx[64];
    rng r;
    rng_seed(&r, 7, RNG_TEST);
    for (int i = 0; i < 64; i++)
        idx[i] = (uint32_t)rng_below(&r, DATA_N);
    assert_int_equal(data_open_subset(&d, all, idx, 64, &e), 0);
    run_config c = small("betavae");
    c.beta = 0.1; /* a small KL weight: the test is about fitting the pixels */
    c.batch_size = 64; /* the whole set each step */
    c.steps = 400;
    c.log_every = 400;
    model *m = NULL;
    assert_int_equal(model_create(&m, &c, data_count(d), &e), 0);
    rng dr, nr;
    rng_seed(&dr, 1, RNG_DATA);
    rng_seed(&nr, 1, RNG_NOISE);
    double terms[MODEL_MAX_TERMS], first = 0, last = 0;
    for (long t = 1; t <= c.steps; t++) {
        assert_int_equal(model_step(m, d, &dr, &nr, t, terms, &e), 0);
        if (t == 1)
            first = terms[1];
        last = terms[1];
    }
    printf("overfit: recon %.2f -> %.2f (%.1f %%)\n", first, last, 100 * last / first);
    assert_true(last < 0.1 * first);
    model_destroy(m);
    data_close(d);
    data_close(all);
}

static void run_once(const run_config *c, run_result *r)
{
    err e;
    err_clear(&e);
    run_result_init(r);
    assert_int_equal(run_execute(c, NULL, 1, NULL, r, &e), 0);
    if (r->status != RUN_OK)
        fail_msg("run failed: %s", r->error);
}

static void test_training_is_reproducible(void **state)
{
    (void)state;
    run_config c = small("betavae");
    run_result a, b;
    run_once(&c, &a);
    run_once(&c, &b);
    assert_int_equal(a.steps, 60);
    assert_true(a.n_curve > 0);
    for (int i = 0; i < RUN_N_METRICS; i++)
        if (!(isnan(a.metric[i]) && isnan(b.metric[i])))
            assert_memory_equal(&a.metric[i], &b.metric[i], sizeof(double));
    for (size_t i = 0; i < a.n_curve; i++)
        assert_memory_equal(&a.curve[i].value, &b.curve[i].value, sizeof(double));
    assert_true(isfinite(a.metric[RUN_M_RECON]));
    /* another seed, other numbers */
    c.seed = 1;
    run_result_free(&b);
    run_once(&c, &b);
    assert_true(a.metric[RUN_M_LOSS] != b.metric[RUN_M_LOSS]);
    run_result_free(&a);
    run_result_free(&b);
}

/* The value of the curve point (step, name); NaN when there is none. */
static double curve_at(const run_result *r, long step, const char *name)
{
    for (size_t i = 0; i < r->n_curve; i++)
        if (r->curve[i].step == step && strcmp(r->curve[i].name, name) == 0)
            return r->curve[i].value;
    return NAN;
}

/* eval_every: evaluations during training become curve points and change
 * nothing else (same model, same final metrics, same loss curves). */
static void test_eval_every_adds_learning_curves_only(void **state)
{
    (void)state;
    run_config c = small("betatcvae");
    run_result a, b;
    run_once(&c, &a);
    c.eval_every = 20;
    run_once(&c, &b);
    for (int i = 0; i < RUN_N_METRICS; i++)
        if (!(isnan(a.metric[i]) && isnan(b.metric[i])))
            assert_memory_equal(&a.metric[i], &b.metric[i], sizeof(double));
    size_t n_eval = 0;
    for (size_t i = 0; i < b.n_curve; i++) {
        const run_curve_point *p = &b.curve[i];
        if (strchr(p->name, '.')) {
            n_eval++;
            assert_true(p->step == 20 || p->step == 40 || p->step == 60);
            continue;
        }
        double v = curve_at(&a, p->step, p->name); /* a training term */
        assert_memory_equal(&v, &p->value, sizeof v);
    }
    assert_int_equal(b.n_curve - n_eval, a.n_curve);
    /* the last point is the run's own evaluation; the earlier ones differ */
    assert_true(curve_at(&b, 60, "eval.mig") == b.metric[RUN_M_MIG]);
    assert_true(curve_at(&b, 60, "eval.recon") == b.metric[RUN_M_RECON]);
    assert_true(curve_at(&b, 20, "eval.recon") != curve_at(&b, 60, "eval.recon"));
    for (long s = 20; s <= 60; s += 20) {
        double top = 0;
        for (int u = 0; u < b.n_units && s == 60; u++)
            top = fmax(top, b.mi[u * b.n_factors + 3]);
        double mi = curve_at(&b, s, "mi.posX");
        assert_true(mi >= 0 && isfinite(curve_at(&b, s, "gap.orientation")) &&
                    isfinite(curve_at(&b, s, "eval.tc")));
        if (s == 60)
            assert_true(mi == top);
    }
    assert_true(isnan(curve_at(&b, 60, "eval.chunk_mig"))); /* dsd's only */
    run_result_free(&a);
    run_result_free(&b);
}

static void test_divergence_is_reported(void **state)
{
    (void)state;
    run_config c = small("vae");
    c.lr = 1e30; /* parameters explode within a few steps */
    run_result r;
    err e;
    run_result_init(&r);
    assert_int_equal(run_execute(&c, NULL, 1, NULL, &r, &e), 0);
    assert_int_equal(r.status, RUN_DIVERGED);
    assert_true(r.steps < 10);
    assert_non_null(strstr(r.error, "loss"));
    run_result_free(&r);
}

static void test_bad_data_file(void **state)
{
    (void)state;
    run_config c = small("vae");
    set(&c, "path", "/nonexistent/dsprites.h5");
    run_result r;
    err e;
    err_clear(&e);
    run_result_init(&r);
    assert_int_equal(run_execute(&c, NULL, 1, NULL, &r, &e), ERR_INPUT);
    assert_int_equal(r.status, RUN_FAILED);
    assert_non_null(strstr(e.msg, "/nonexistent/dsprites.h5"));
    run_result_free(&r);
}

static void test_result_pack_round_trip(void **state)
{
    (void)state;
    run_result r, back;
    err e;
    run_result_init(&r);
    run_result_init(&back);
    r.status = RUN_OK;
    r.steps = 12;
    r.metric[RUN_M_MIG] = 0.25;
    r.metric[RUN_M_DISC_ACC] = 0.875;
    r.n_units = 3;
    r.mi = calloc(3 * DATA_K, sizeof(float));
    r.mi[7] = 1.5f;
    r.trav_h = 2;
    r.trav_w = 3;
    r.traversal = calloc(6, 1);
    r.traversal[5] = 200;
    assert_int_equal(run_result_add_curve(&r, 10, "loss", 3.5, &e), 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(run_result_pack(&r, &buf, &len, &e), 0);
    assert_int_equal(run_result_unpack(&back, buf, len, &e), 0);
    assert_int_equal(back.steps, 12);
    assert_true(back.metric[RUN_M_MIG] == 0.25);
    assert_true(back.metric[RUN_M_DISC_ACC] == 0.875);
    assert_true(isnan(back.metric[RUN_M_TC]));
    assert_true(back.mi[7] == 1.5f);
    assert_int_equal(back.traversal[5], 200);
    assert_int_equal(back.n_curve, 1);
    assert_string_equal(back.curve[0].name, "loss");
    /* truncated messages are refused, not read past their end */
    assert_int_equal(run_result_unpack(&back, buf, len - 1, &e), ERR_INTERNAL);
    free(buf);
    run_result_free(&r);
    run_result_free(&back);
}

/* A message of the first result format (magic "UNTR": RUN_N_METRICS_V1
 * metrics, no chunk gaps), as the journals of earlier files hold it, still
 * unpacks: its metrics in place, the later ones NaN. */
static void test_result_unpack_first_format(void **state)
{
    (void)state;
    uint8_t buf[1024], *p = buf;
#define PUT(v) (memcpy(p, &(v), sizeof(v)), p += sizeof(v))
    uint32_t magic = 0x554e5452u;
    int status = RUN_OK, zero = 0;
    char error[256] = "";
    long steps = 7;
    double times[4] = {1, 2, 3, 4}, metric[RUN_N_METRICS_V1], fac[5]; /* dSprites' 5 */
    size_t n_curve = 0;
    for (int i = 0; i < RUN_N_METRICS_V1; i++)
        metric[i] = 0.5 + i;
    for (int k = 0; k < 5; k++)
        fac[k] = 0.1 * k;
    PUT(magic);
    PUT(status);
    PUT(error);
    PUT(steps);
    PUT(times);
    PUT(metric);
    PUT(zero); /* n_units */
    PUT(fac);  /* mig_factor */
    PUT(fac);  /* swap_factor */
    PUT(zero); /* trav_h */
    PUT(zero); /* trav_w */
    PUT(n_curve);
#undef PUT
    run_result r;
    err e;
    run_result_init(&r);
    assert_int_equal(run_result_unpack(&r, buf, (size_t)(p - buf), &e), 0);
    assert_int_equal(r.steps, 7);
    assert_true(r.metric[RUN_M_LOSS] == 0.5 + RUN_M_LOSS);
    assert_true(r.swap_factor[4] == 0.1 * 4);
    assert_true(isnan(r.metric[RUN_M_CHUNK_MIG]) && isnan(r.metric[RUN_M_EVAL_IMAGES]));
    assert_true(isnan(r.metric[RUN_M_DISC_ACC]));
    assert_true(isnan(r.chunk_factor[0]));
    assert_int_equal(r.n_factors, 5);
    run_result_free(&r);
}

/* Messages of the formats before disc_acc ("UNT4": RUN_N_METRICS_V4
 * metrics, then K; "UNT3": the same metrics, no K, dSprites' five factors),
 * as the journals of earlier files hold them, still unpack: their metrics in
 * place, disc_acc NaN. */
static void test_result_unpack_before_disc_acc(void **state)
{
    (void)state;
    for (int v4 = 0; v4 < 2; v4++) {
        uint8_t buf[1024], *p = buf;
#define PUT(v) (memcpy(p, &(v), sizeof(v)), p += sizeof(v))
        uint32_t magic = v4 ? 0x554e5434u : 0x554e5433u;
        int status = RUN_OK, zero = 0, K = 5;
        char error[256] = "";
        long steps = 9;
        double times[4] = {1, 2, 3, 4}, metric[RUN_N_METRICS_V4], fac[5];
        size_t n_curve = 0;
        for (int i = 0; i < RUN_N_METRICS_V4; i++)
            metric[i] = 0.5 + i;
        for (int k = 0; k < 5; k++)
            fac[k] = 0.1 * k;
        PUT(magic);
        PUT(status);
        PUT(error);
        PUT(steps);
        PUT(times);
        PUT(metric);
        if (v4)
            PUT(K);
        PUT(zero); /* n_units */
        PUT(fac);  /* mig_factor */
        PUT(fac);  /* swap_factor */
        PUT(fac);  /* chunk_factor */
        PUT(zero); /* trav_h */
        PUT(zero); /* trav_w */
        PUT(n_curve);
#undef PUT
        run_result r;
        err e;
        run_result_init(&r);
        assert_int_equal(run_result_unpack(&r, buf, (size_t)(p - buf), &e), 0);
        assert_int_equal(r.steps, 9);
        assert_true(r.metric[RUN_M_MI_SCORE] == 0.5 + RUN_M_MI_SCORE);
        assert_true(r.metric[RUN_M_CHUNK_MIG] == 0.5 + RUN_M_CHUNK_MIG);
        assert_true(isnan(r.metric[RUN_M_DISC_ACC]));
        assert_true(r.chunk_factor[4] == 0.1 * 4);
        assert_int_equal(r.n_factors, 5);
        run_result_free(&r);
    }
}

/* A result of six factors (shapes3d) with an mi matrix survives pack and
 * unpack: K, every per-factor value and the (units, K) matrix. */
static void test_result_pack_six_factors(void **state)
{
    (void)state;
    run_result r, back;
    err e;
    run_result_init(&r);
    run_result_init(&back);
    r.status = RUN_OK;
    r.n_factors = 6;
    r.n_units = 3;
    r.mi = malloc(sizeof(float) * 3 * 6);
    assert_non_null(r.mi);
    for (int i = 0; i < 18; i++)
        r.mi[i] = 0.25f * (float)i;
    for (int k = 0; k < 6; k++) {
        r.mig_factor[k] = 0.1 * k;
        r.swap_factor[k] = 0.2 * k;
        r.chunk_factor[k] = 0.3 * k;
    }
    uint8_t *p = NULL;
    size_t len = 0;
    assert_int_equal(run_result_pack(&r, &p, &len, &e), 0);
    assert_int_equal(run_result_unpack(&back, p, len, &e), 0);
    assert_int_equal(back.n_factors, 6);
    assert_int_equal(back.n_units, 3);
    assert_memory_equal(back.mi, r.mi, sizeof(float) * 18);
    assert_true(back.mig_factor[5] == 0.5 && back.swap_factor[5] == 0.2 * 5 &&
                back.chunk_factor[5] == 0.3 * 5);
    assert_true(isnan(back.mig_factor[6])); /* beyond K: untouched */
    /* a count of factors beyond RUN_MAX_FACTORS is refused */
    int bad = RUN_MAX_FACTORS + 1;
    memcpy(p + 4 + sizeof(int) + 256 + sizeof(long) + 4 * sizeof(double) +
               RUN_N_METRICS * sizeof(double),
           &bad, sizeof bad);
    assert_true(run_result_unpack(&back, p, len, &e) < 0);
    free(p);
    run_result_free(&r);
    run_result_free(&back);
}

/* ---- checkpoints ------------------------------------------------------------- */

/* Stops the run after `after` polls (steps). */
typedef struct stopper {
    long polls, after;
    int notes;
    char last_note[1400];
} stopper;

static int stop_after(void *ctx)
{
    stopper *s = ctx;
    return ++s->polls > s->after;
}

static void keep_note(void *ctx, const char *msg)
{
    stopper *s = ctx;
    s->notes++;
    snprintf(s->last_note, sizeof s->last_note, "%s", msg);
}

/* Every number of two results equal bit for bit (timings aside). */
static void assert_same_result(const run_result *a, const run_result *b)
{
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->steps, b->steps);
    assert_memory_equal(a->metric, b->metric, sizeof a->metric);
    assert_memory_equal(a->mig_factor, b->mig_factor, sizeof a->mig_factor);
    assert_memory_equal(a->swap_factor, b->swap_factor, sizeof a->swap_factor);
    assert_int_equal(a->n_units, b->n_units);
    assert_memory_equal(a->mi, b->mi, sizeof(float) * (size_t)a->n_units * DATA_K);
    assert_int_equal(a->n_curve, b->n_curve);
    for (size_t i = 0; i < a->n_curve; i++) {
        assert_int_equal(a->curve[i].step, b->curve[i].step);
        assert_string_equal(a->curve[i].name, b->curve[i].name);
        assert_memory_equal(&a->curve[i].value, &b->curve[i].value, sizeof(double));
    }
    assert_int_equal(a->trav_h, b->trav_h);
    assert_memory_equal(a->traversal, b->traversal, (size_t)a->trav_h * a->trav_w);
}

static char tmpdir[64];

static void ckpt_path(char *out, size_t n, const char *name)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/untangle_test_run_XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
    }
    snprintf(out, n, "%s/%s", tmpdir, name);
}

/* A run stopped (and checkpointed) twice and continued ends bit-identical to
 * the same run done in one go, for a method with each kind of state
 * (factorvae: a discriminator with its own Adam, outside the networks). */
static void test_checkpoint_continue_is_bit_identical(void **state)
{
    (void)state;
    static const char *const models[] = {"betatcvae", "jointvae", "dsd", "factorvae"};
    for (size_t k = 0; k < sizeof models / sizeof models[0]; k++) {
        run_config c = small(models[k]);
        set(&c, "arch", "dlib"); /* checkpoints of ~5 MB instead of the mlp's ~80 */
        c.log_every = 7; /* stops fall inside a log window */
        err e;
        err_clear(&e);
        assert_int_equal(model_resolve(&c, &e), 0);
        run_result whole, part;
        run_result_init(&whole);
        run_result_init(&part);
        assert_int_equal(run_execute(&c, NULL, 1, NULL, &whole, &e), 0);
        assert_int_equal(whole.status, RUN_OK);

        char path[128], model_path[128];
        ckpt_path(path, sizeof path, "a.ckpt");
        ckpt_path(model_path, sizeof model_path, "a.model");
        stopper s = {0, 17, 0, ""};
        run_hooks h = {.ctx = &s, .should_stop = stop_after, .note = keep_note,
                       .ckpt_path = path, .model_path = model_path};
        assert_int_equal(run_execute(&c, NULL, 1, &h, &part, &e), 0);
        assert_int_equal(part.status, RUN_INTERRUPTED);
        assert_int_equal(part.steps, 17);
        run_result_free(&part);
        s.polls = 0;
        s.after = 23; /* continues at 17, stops at 40 */
        assert_int_equal(run_execute(&c, NULL, 1, &h, &part, &e), 0);
        assert_int_equal(part.status, RUN_INTERRUPTED);
        assert_int_equal(part.steps, 40);
        run_result_free(&part);
        s.after = 1000;
        assert_int_equal(run_execute(&c, NULL, 1, &h, &part, &e), 0);
        assert_int_equal(s.notes, 0);
        assert_same_result(&whole, &part);
        /* an ok run leaves its model, not its checkpoint */
        assert_int_equal(access(path, F_OK), -1);
        uint8_t *p = NULL;
        size_t len = 0;
        char id[17];
        run_config_id(&c, id);
        assert_int_equal(run_file_read(model_path, RUN_FILE_MODEL, id, &p, &len, &e), 1);
        assert_true(len > 0);
        free(p);
        run_file_remove(model_path);
        run_result_free(&whole);
        run_result_free(&part);
    }
}

/* A run with evaluations during training, stopped and continued, keeps the
 * seconds of the evaluations before the stop in eval_s, not in train_s: the
 * evaluations (on 5,000 images) cost far more than the training (10 steps
 * of batch 16 between two), so train_s stays under half of eval_s only when
 * each is counted where it belongs. */
static void test_checkpoint_keeps_eval_seconds(void **state)
{
    (void)state;
    run_config c = small("betavae");
    set(&c, "arch", "dlib");
    set(&c, "steps", "40");
    set(&c, "eval_every", "10");
    set(&c, "images", "5000");
    err e;
    err_clear(&e);
    assert_int_equal(model_resolve(&c, &e), 0);
    char path[128];
    ckpt_path(path, sizeof path, "ev.ckpt");
    stopper s = {0, 20, 0, ""};
    run_hooks h = {.ctx = &s, .should_stop = stop_after, .note = keep_note, .ckpt_path = path};
    run_result first, rest;
    run_result_init(&first);
    run_result_init(&rest);
    assert_int_equal(run_execute(&c, NULL, 1, &h, &first, &e), 0);
    assert_int_equal(first.status, RUN_INTERRUPTED);
    assert_int_equal(first.steps, 20); /* after the evaluations at 10 and 20 */
    s.polls = 0;
    s.after = 1000;
    assert_int_equal(run_execute(&c, NULL, 1, &h, &rest, &e), 0);
    assert_int_equal(rest.status, RUN_OK);
    /* a note per evaluation, at 10, 20 and 30: the second process continued
     * from the checkpoint (from zero it would note 10, 20 and 30 again) */
    assert_int_equal(s.notes, 3);
    printf("[ eval_s   ] stopped at 20: train %.3f s, eval %.3f s; continued to 40: "
           "train %.3f s, eval %.3f s\n",
           first.train_s, first.eval_s, rest.train_s, rest.eval_s);
    assert_true(first.train_s < 0.5 * first.eval_s);
    assert_true(rest.eval_s > first.eval_s);
    assert_true(rest.train_s < 0.5 * rest.eval_s);
    run_result_free(&first);
    run_result_free(&rest);

    /* a checkpoint of the first format (magic "UNTS", no eval_s after
     * train_s) is still continued from */
    s.polls = 0;
    s.after = 20;
    s.notes = 0;
    assert_int_equal(run_execute(&c, NULL, 1, &h, &first, &e), 0);
    char id[17];
    run_config_id(&c, id);
    uint8_t *p = NULL;
    size_t len = 0;
    assert_int_equal(run_file_read(path, RUN_FILE_CKPT, id, &p, &len, &e), 1);
    const uint32_t magic_1 = 0x53544e55u;
    memcpy(p, &magic_1, sizeof magic_1);
    memmove(p + 24, p + 32, len - 32); /* u32 u32 i64 f64 | f64 eval_s */
    assert_int_equal(run_file_write(path, RUN_FILE_CKPT, id, p, len - 8, &e), 0);
    free(p);
    s.after = 1000;
    assert_int_equal(run_execute(&c, NULL, 1, &h, &rest, &e), 0);
    assert_int_equal(rest.status, RUN_OK);
    assert_int_equal(s.notes, 3);
    run_result_free(&first);
    run_result_free(&rest);
}

/* Damaged or foreign checkpoints are noted on one line and the run starts
 * from zero (or from PATH.prev), never fails; a link planted at the
 * temporary name is replaced, not followed. */
static void test_damaged_checkpoints(void **state)
{
    (void)state;
    run_config c = small("betavae"), other = small("betavae");
    /* checkpoints at step 20 (10 for "prev"), then one after every step to
     * the end: step 21's meets the planted link (fsync'ed: no more than that;
     * dlib's checkpoints are ~5 MB, the mlp's ~80) */
    set(&c, "steps", "22");
    set(&other, "steps", "22");
    set(&c, "arch", "dlib");
    set(&other, "arch", "dlib");
    set(&other, "seed", "5");
    err e;
    err_clear(&e);
    assert_int_equal(model_resolve(&c, &e), 0);
    assert_int_equal(model_resolve(&other, &e), 0);
    run_result whole, r;
    run_result_init(&whole);
    run_result_init(&r);
    assert_int_equal(run_execute(&c, NULL, 0, NULL, &whole, &e), 0);
    char path[128], prev[160], tmp[160], victim[128];
    ckpt_path(path, sizeof path, "d.ckpt");
    ckpt_path(victim, sizeof victim, "victim");
    snprintf(prev, sizeof prev, "%s.prev", path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    static const char *const cases[] = {"truncated", "flipped", "foreign", "garbage", "prev"};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        /* a checkpoint at step 20 (of the foreign run for "foreign") */
        stopper s = {0, 20, 0, ""};
        run_hooks h = {.ctx = &s, .should_stop = stop_after, .note = keep_note,
                       .ckpt_path = path};
        run_file_remove(path);
        run_result_free(&r);
        assert_int_equal(run_execute(strcmp(cases[k], "foreign") ? &c : &other, NULL, 0, &h, &r,
                                     &e), 0);
        assert_int_equal(r.status, RUN_INTERRUPTED);
        FILE *f = fopen(path, "r+b");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        if (!strcmp(cases[k], "truncated")) {
            assert_int_equal(ftruncate(fileno(f), size / 2), 0);
        } else if (!strcmp(cases[k], "flipped") || !strcmp(cases[k], "prev")) {
            fseek(f, size / 3, SEEK_SET);
            int ch = fgetc(f);
            fseek(f, size / 3, SEEK_SET);
            fputc(ch ^ 0x10, f);
        } else if (!strcmp(cases[k], "garbage")) {
            fseek(f, 0, SEEK_SET);
            fputs("not a checkpoint at all", f);
        }
        fclose(f);
        if (!strcmp(cases[k], "prev")) {
            /* a good older checkpoint (step 10) beside the damaged newest */
            stopper s2 = {0, 10, 0, ""};
            run_hooks h2 = {.ctx = &s2, .should_stop = stop_after, .ckpt_path = prev};
            run_file_remove(prev);
            run_result_free(&r);
            assert_int_equal(run_execute(&c, NULL, 0, &h2, &r, &e), 0);
            assert_int_equal(r.steps, 10);
        }
        /* a link planted at the temporary name must not be followed */
        FILE *v = fopen(victim, "w");
        fputs("precious", v);
        fclose(v);
        unlink(tmp);
        assert_int_equal(symlink(victim, tmp), 0);
        s.polls = 0;
        s.after = 1000;
        h.ckpt_every = 1e-9; /* a checkpoint after every step */
        run_result_free(&r);
        assert_int_equal(run_execute(&c, NULL, 0, &h, &r, &e), 0);
        printf("%s: %s\n", cases[k], s.last_note);
        assert_int_equal(s.notes, 1);
        assert_non_null(strstr(s.last_note, !strcmp(cases[k], "prev") ? "continuing from"
                                                                    : "starting from step 0"));
        assert_same_result(&whole, &r);
        v = fopen(victim, "r");
        char buf[16] = "";
        assert_non_null(fgets(buf, sizeof buf, v));
        fclose(v);
        assert_string_equal(buf, "precious");
    }
    run_file_remove(path);
    unlink(victim);
    run_result_free(&whole);
    run_result_free(&r);
    rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_parse_and_reject),
        cmocka_unit_test(test_resolve_rejects_foreign_params),
        cmocka_unit_test(test_run_id_ignores_order_and_reporting),
        cmocka_unit_test(test_eval_every_adds_learning_curves_only),
        cmocka_unit_test(test_result_pack_round_trip),
        cmocka_unit_test(test_result_unpack_first_format),
        cmocka_unit_test(test_result_unpack_before_disc_acc),
        cmocka_unit_test(test_result_pack_six_factors),
        cmocka_unit_test(test_divergence_is_reported),
        cmocka_unit_test(test_bad_data_file),
        cmocka_unit_test(test_training_is_reproducible),
        cmocka_unit_test(test_overfit_fixed_batch),
        cmocka_unit_test(test_checkpoint_continue_is_bit_identical),
        cmocka_unit_test(test_checkpoint_keeps_eval_seconds),
        cmocka_unit_test(test_damaged_checkpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
