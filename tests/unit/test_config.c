/* config: grid expansion, run ids, the list table, the fixed-section diff,
 * file handling, limits, and a table of bad inputs each located to the exact
 * line:col of the offending node. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "untangle/config.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------- */

static config_sweep *load(const char *yaml)
{
    config_sweep *s = NULL;
    err e;
    int rc = config_load_text(&s, yaml, strlen(yaml), "t.yaml", 0, &e);
    if (rc != 0)
        print_error("unexpected error: %s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

/* Load a bad input: the error must be ERR_INPUT and *out untouched. The
 * message is copied into msg. */
static void load_bad(const char *yaml, size_t len, size_t max_runs, char *msg, size_t n)
{
    config_sweep *sentinel = (config_sweep *)&sentinel, *s = sentinel;
    err e;
    int rc = config_load_text(&s, yaml, len, "t.yaml", max_runs, &e);
    assert_int_equal(rc, ERR_INPUT);
    assert_int_equal(e.code, ERR_INPUT);
    assert_ptr_equal(s, sentinel); /* nothing written on error */
    snprintf(msg, n, "%s", e.msg);
}

static const char *key_text(const run_config *c, const char *key, char *buf, size_t n)
{
    run_config_format(c, run_key_find(key), buf, n);
    return buf;
}

/* The runs' values of key, joined by spaces. */
static void column(const config_sweep *s, const char *key, char *out, size_t n)
{
    size_t used = 0;
    char v[64];
    out[0] = '\0';
    for (size_t i = 0; i < s->n_runs && used < n; i++)
        used += (size_t)snprintf(out + used, n - used, "%s%s", i ? " " : "",
                                 key_text(&s->runs[i], key, v, sizeof v));
}

#define ASSERT_COLUMN(s, key, expect)                                                           \
    do {                                                                                        \
        char col_[4096];                                                                        \
        column((s), (key), col_, sizeof col_);                                                  \
        assert_string_equal(col_, (expect));                                                    \
    } while (0)

/* ---- grid expansion ---------------------------------------------------------- */

static void test_product_last_axis_fastest(void **state)
{
    (void)state;
    config_sweep *s = load("grid:\n"
                           "  - model: betavae\n"
                           "    latent_dim: [4, 8]\n"
                           "    beta: [1, 2, 3]\n");
    assert_int_equal(s->n_runs, 6);
    ASSERT_COLUMN(s, "latent_dim", "4 4 4 8 8 8");
    ASSERT_COLUMN(s, "beta", "1 2 3 1 2 3");
    ASSERT_COLUMN(s, "seed", "0 0 0 0 0 0"); /* default seeds: [0] */
    config_free(s);
    /* file order decides: beta first now varies slowest */
    s = load("grid:\n"
             "  - model: betavae\n"
             "    beta: [1, 2, 3]\n"
             "    latent_dim: [4, 8]\n");
    ASSERT_COLUMN(s, "beta", "1 1 2 2 3 3");
    ASSERT_COLUMN(s, "latent_dim", "4 8 4 8 4 8");
    config_free(s);
}

static void test_union_of_blocks(void **state)
{
    (void)state;
    config_sweep *s = load("grid:\n"
                           "  - model: betatcvae\n"
                           "    beta: [6, 10]\n"
                           "  - model: vae\n"
                           "  - model: betavae\n"
                           "    beta: [1, 2]\n");
    assert_int_equal(s->n_runs, 5);
    ASSERT_COLUMN(s, "model", "betatcvae betatcvae vae betavae betavae");
    ASSERT_COLUMN(s, "beta", "6 10 nan 1 2");
    /* resolved: betatcvae's defaults filled in */
    assert_true(s->runs[0].alpha == 1 && s->runs[0].gamma == 1);
    assert_string_equal(s->runs[0].estimator, "mws");
    config_free(s);
}

static void test_zip(void **state)
{
    (void)state;
    config_sweep *s = load("grid:\n"
                           "  - model: jointvae\n"
                           "    latent_dim: [4, 6]\n"
                           "    zip:\n"
                           "      gamma: [30, 150]\n"
                           "      c_z_max: [5, 40]\n"
                           "    lambda: [0.5, 0.67]\n");
    /* zip is one axis of 2 at its position: 2 x 2 x 2, lambda fastest */
    assert_int_equal(s->n_runs, 8);
    ASSERT_COLUMN(s, "latent_dim", "4 4 4 4 6 6 6 6");
    ASSERT_COLUMN(s, "gamma", "30 30 150 150 30 30 150 150");
    ASSERT_COLUMN(s, "c_z_max", "5 5 40 40 5 5 40 40");
    ASSERT_COLUMN(s, "lambda", "0.5 0.67000000000000004 0.5 0.67000000000000004 0.5 "
                               "0.67000000000000004 0.5 0.67000000000000004");
    config_free(s);
}

static void test_seeds_list_count_innermost(void **state)
{
    (void)state;
    config_sweep *s = load("grid:\n"
                           "  - model: betavae\n"
                           "    beta: [1, 2]\n"
                           "seeds: [7, 3]\n");
    assert_int_equal(s->n_runs, 4);
    ASSERT_COLUMN(s, "beta", "1 1 2 2");
    ASSERT_COLUMN(s, "seed", "7 3 7 3"); /* innermost, in the list's order */
    config_free(s);
    s = load("seeds: 3\n"
             "grid:\n"
             "  - model: vae\n"
             "  - model: betavae\n");
    assert_int_equal(s->n_runs, 6);
    ASSERT_COLUMN(s, "seed", "0 1 2 0 1 2"); /* crossed with every block */
    ASSERT_COLUMN(s, "model", "vae vae vae betavae betavae betavae");
    config_free(s);
    /* without seeds, a block may set seed itself, even as an axis */
    s = load("grid:\n"
             "  - model: vae\n"
             "    seed: [5, 6]\n"
             "    latent_dim: [2, 3]\n");
    ASSERT_COLUMN(s, "seed", "5 5 6 6");
    config_free(s);
}

static void test_grid_overrides_fixed_sections(void **state)
{
    (void)state;
    config_sweep *s = load("data: {image_size: 64}\n"
                           "train: {arch: mlp, steps: 100, lr: 0.01}\n"
                           "eval: {images: 500, samples: 100, pairs: 10}\n"
                           "grid:\n"
                           "  - model: vae\n"
                           "    steps: [10, 20]\n"
                           "    image_size: 32\n"
                           "  - model: betavae\n"
                           "    arch: conv\n"
                           "    pairs: 3\n");
    assert_int_equal(s->n_runs, 3);
    ASSERT_COLUMN(s, "steps", "10 20 100");
    ASSERT_COLUMN(s, "image_size", "32 32 64");
    ASSERT_COLUMN(s, "arch", "mlp mlp conv");
    ASSERT_COLUMN(s, "pairs", "10 10 3");
    ASSERT_COLUMN(s, "lr", "0.01 0.01 0.01");
    ASSERT_COLUMN(s, "images", "500 500 500");
    /* the base holds the fixed sections only */
    assert_int_equal(s->base.steps, 100);
    assert_int_equal(s->base.image_size, 64);
    assert_string_equal(s->base.arch, "mlp");
    config_free(s);
}

static void test_single_mapping_grid(void **state)
{
    (void)state;
    config_sweep *s = load("grid: {model: vae, latent_dim: [2, 3, 5]}\n");
    assert_int_equal(s->n_runs, 3);
    ASSERT_COLUMN(s, "latent_dim", "2 3 5");
    config_free(s);
}

static void test_list_valued_keys(void **state)
{
    (void)state;
    config_sweep *s = load("grid:\n"
                           "  - model: jointvae\n"
                           "    discrete: [[3]]\n"
                           "  - model: jointvae\n"
                           "    discrete: [[3, 4], [10]]\n"
                           "  - model: dsd\n"
                           "    chunks: [[1,1,1,1,1],[2,2,2,2,2]]\n");
    assert_int_equal(s->n_runs, 5);
    ASSERT_COLUMN(s, "discrete", "[3] [3, 4] [10] [] []");
    ASSERT_COLUMN(s, "chunks", "[] [] [] [1, 1, 1, 1, 1] [2, 2, 2, 2, 2]");
    ASSERT_COLUMN(s, "latent_dim", "6 6 6 5 10"); /* dsd: the chunks' sum */
    config_free(s);
}

static void test_sweep_fields(void **state)
{
    (void)state;
    const char *y = "name: my-study\ngrid: {model: vae}\n";
    config_sweep *s = load(y);
    assert_string_equal(s->name, "my-study");
    assert_string_equal(s->path, "t.yaml");
    assert_int_equal(s->text_len, strlen(y));
    assert_string_equal(s->text, y);
    assert_int_equal(s->n_runs, 1);
    assert_int_equal(s->n_vary, 0);
    char id[17];
    run_config_id(&s->runs[0], id);
    assert_string_equal(s->run_ids[0], id);
    uint64_t h1 = s->hash;
    config_free(s);
    s = load("name: my-study\ngrid: {model: vae}\n# edited\n");
    assert_true(s->hash != h1);
    config_free(s);
    /* without name: the file's base name */
    err e;
    assert_int_equal(config_load_text(&s, "grid: {model: vae}", 18, "sweeps/quick.yaml", 0, &e), 0);
    assert_string_equal(s->name, "quick");
    config_free(s);
    config_free(NULL);
}

static void test_aliases_share_values(void **state)
{
    (void)state;
    config_sweep *s = load("grid:\n"
                           "  - model: betavae\n"
                           "    latent_dim: &dims [4, 6]\n"
                           "  - model: betatcvae\n"
                           "    latent_dim: *dims\n");
    ASSERT_COLUMN(s, "latent_dim", "4 6 4 6");
    config_free(s);
}

/* ---- run ids ------------------------------------------------------------------ */

static void test_run_ids_survive_reordering(void **state)
{
    (void)state;
    config_sweep *a = load("name: x\n"
                           "data: {name: dsprites, image_size: 32}\n"
                           "train: {arch: mlp, steps: 50, batch_size: 16, lr: 0.001}\n"
                           "eval: {images: 100, samples: 50, pairs: 5}\n"
                           "grid:\n"
                           "  - model: betavae\n"
                           "    latent_dim: 4\n"
                           "    beta: [1, 2]\n"
                           "  - model: jointvae\n"
                           "    zip: {gamma: [30, 150], c_z_max: [5, 40]}\n"
                           "    lambda: 0.5\n"
                           "seeds: 2\n");
    config_sweep *b = load("seeds: [0, 1]\n"
                           "grid:\n"
                           "  - lambda: 0.5\n"
                           "    zip: {c_z_max: [5, 40], gamma: [30, 150]}\n"
                           "    model: jointvae\n"
                           "  - beta: [1, 2]\n"
                           "    model: betavae\n"
                           "    latent_dim: 4\n"
                           "eval: {pairs: 5, samples: 50, images: 100}\n"
                           "train: {lr: 1e-3, batch_size: 16, steps: 50, arch: mlp}\n"
                           "data: {image_size: 32, name: dsprites}\n"
                           "name: x\n");
    assert_int_equal(a->n_runs, 8);
    assert_int_equal(b->n_runs, 8);
    /* same set of ids; the blocks swapped places, so compare as sets */
    for (size_t i = 0; i < a->n_runs; i++) {
        int found = 0;
        for (size_t j = 0; j < b->n_runs; j++)
            found |= strcmp(a->run_ids[i], b->run_ids[j]) == 0;
        assert_true(found);
    }
    /* within a block the order is the same, so ids match position by position */
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(a->run_ids[i], b->run_ids[i + 4]);
    config_free(a);
    config_free(b);
}

static void test_run_ids_survive_axis_growth(void **state)
{
    (void)state;
    config_sweep *a = load("grid:\n  - model: betavae\n    beta: [1, 2]\nseeds: 2\n");
    config_sweep *b = load("grid:\n  - model: betavae\n    beta: [0.5, 1, 2, 4]\nseeds: 3\n");
    assert_int_equal(a->n_runs, 4);
    assert_int_equal(b->n_runs, 12);
    /* a's (beta, seed) = (1,0) (1,1) (2,0) (2,1) are b's runs 3, 4, 6, 7 */
    const size_t where[] = {3, 4, 6, 7};
    for (size_t i = 0; i < 4; i++) {
        assert_true(a->runs[i].beta == b->runs[where[i]].beta);
        assert_string_equal(a->run_ids[i], b->run_ids[where[i]]);
    }
    config_free(a);
    config_free(b);
}

static void test_run_ids_distinct(void **state)
{
    (void)state;
    config_sweep *s = load("grid:\n"
                           "  - model: betavae\n    beta: [1, 2, 4]\n"
                           "  - model: betatcvae\n    beta: [1, 2, 4]\n"
                           "seeds: 4\n");
    for (size_t i = 0; i < s->n_runs; i++) {
        assert_int_equal(strlen(s->run_ids[i]), 16);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s->run_ids[i], s->run_ids[j]);
    }
    config_free(s);
}

/* The eval keys added with full-set mode (encode, hist_images,
 * unsup_images) leave a run's id as it was while they hold the value every
 * earlier run had, so that files written before them keep their ids; any
 * other value is a different run. */
static void test_run_ids_of_later_keys(void **state)
{
    (void)state;
    config_sweep *a = load("grid: {model: vae}\n");
    config_sweep *b = load("eval: {encode: sample, hist_images: 10000, unsup_images: 10000}\n"
                           "grid: {model: vae}\n");
    config_sweep *c = load("eval: {encode: full}\ngrid: {model: vae}\n");
    config_sweep *d = load("eval: {hist_images: 5000}\ngrid: {model: vae}\n");
    assert_string_equal(a->run_ids[0], b->run_ids[0]);
    assert_string_equal(a->run_ids[0], "f1cc743dbda66980"); /* the id before these keys */
    assert_string_not_equal(a->run_ids[0], c->run_ids[0]);
    assert_string_not_equal(a->run_ids[0], d->run_ids[0]);
    assert_string_equal(c->runs[0].encode, "full");
    config_free(a);
    config_free(b);
    config_free(c);
    config_free(d);
}

/* ---- list table and fixed-section diff ------------------------------------- */

static char *list_text(const config_sweep *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(config_write_list(s, f), 0);
    fclose(f);
    return buf;
}

/* annealedvae was the capacity form of betavae until 2026-11-29: written
 * either way, the run is annealedvae and keeps the id it had as betavae
 * (the ids below are those of sweeps/locatello2019.yaml's AnnealedVAE runs
 * 300 and 599 before the method had its own name); plain betavae's ids do
 * not move; the list counts runs per method. */
static void test_annealedvae_alias(void **state)
{
    (void)state;
    static const char *const fixed = "data:  {name: dsprites, image_size: 64}\n"
                                     "train: {arch: conv, steps: 300000, batch_size: 64, "
                                     "lr: 1.0e-4, log_every: 1000}\n"
                                     "eval:  {encode: full, samples: 2000, pairs: 200}\n";
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%sgrid:\n  - model: betavae\n    latent_dim: 10\n"
             "    beta: 1\n  - model: betavae\n    latent_dim: 10\n    gamma: 1000\n"
             "    anneal_steps: 100000\n    c_max: [5, 100]\nseeds: [0, 49]\n", fixed);
    config_sweep *a = load(yaml);
    snprintf(yaml, sizeof yaml, "%sgrid:\n  - model: annealedvae\n    c_max: [5, 100]\n"
             "seeds: [0, 49]\n", fixed);
    config_sweep *b = load(yaml);
    assert_int_equal(a->n_runs, 6);
    assert_string_equal(a->run_ids[0], "4bbe205a865a454a"); /* betavae beta 1, seed 0 */
    assert_string_equal(a->run_ids[2], "6e888c7399cc9cc9"); /* c_max 5, seed 0 */
    assert_string_equal(a->run_ids[5], "932e28e86955995a"); /* c_max 100, seed 49 */
    for (size_t i = 2; i < 6; i++) {
        assert_string_equal(a->runs[i].model, "annealedvae");
        assert_true(isnan(a->runs[i].beta));
        assert_string_equal(a->run_ids[i], b->run_ids[i - 2]);
    }
    char *t = list_text(a);
    assert_non_null(strstr(t, "6 runs (betavae 2, annealedvae 4)\n"));
    /* betavae shows no capacity keys (c_max "-"); beta, set once, and
     * annealedvae's constant gamma are no columns */
    assert_non_null(strstr(t, "model        c_max  seed\n"));
    assert_non_null(strstr(t, "  betavae      -      0\n"));
    assert_non_null(strstr(t, "  annealedvae  100    49\n"));
    free(t);
    config_free(a);
    config_free(b);
}

/* The methods of disentanglement_lib's study resolve with its defaults. */
static void test_locatello_methods(void **state)
{
    (void)state;
    config_sweep *s = load("grid:\n  - model: factorvae\n    gamma: [10, 100]\n"
                           "  - model: dipvae1\n    lambda_od: 5\n"
                           "  - model: dipvae2\n    lambda_od: 5\n"
                           "  - model: annealedvae\n");
    assert_int_equal(s->n_runs, 5);
    assert_true(s->runs[0].gamma == 10 && s->runs[1].gamma == 100);
    assert_true(isnan(s->runs[0].lambda_od) && isnan(s->runs[0].beta));
    assert_true(s->runs[2].lambda_od == 5 && s->runs[2].lambda_d == 50);
    assert_true(s->runs[3].lambda_od == 5 && s->runs[3].lambda_d == 5);
    assert_true(s->runs[4].c_max == 25 && s->runs[4].gamma == 1000 &&
                s->runs[4].anneal_steps == 100000);
    char *t = list_text(s);
    assert_non_null(strstr(t, "5 runs (factorvae 2, dipvae1 1, dipvae2 1, annealedvae 1)\n"));
    free(t);
    config_free(s);
}

/* beta64 states beta at 64x64 with one channel: the run's beta follows the
 * image's values (32x32: a quarter; three channels: three times), and a run
 * that does not set it keeps its id. */
static void test_beta64(void **state)
{
    (void)state;
    config_sweep *s = load("data: {image_size: 32}\n"
                           "grid:\n  - model: betavae\n    beta64: [4, 8]\n"
                           "  - model: betatcvae\n    beta64: 6\n");
    assert_int_equal(s->n_runs, 3);
    assert_true(s->runs[0].beta == 1 && s->runs[1].beta == 2 && s->runs[2].beta == 1.5);
    assert_true(s->runs[0].beta64 == 4);
    config_free(s);
    s = load("data: {name: color_dsprites, image_size: 64}\ngrid:\n  - model: betavae\n"
             "    beta64: 4\n");
    assert_true(s->runs[0].beta == 12);
    config_free(s);
    /* the same beta set directly: another configuration, another id; with
     * beta64 unset the id is the one every earlier file has */
    config_sweep *a = load("data: {image_size: 32}\ngrid:\n  - model: betavae\n    beta: 1\n");
    config_sweep *b = load("data: {image_size: 32}\ngrid:\n  - model: betavae\n    beta64: 4\n");
    assert_string_not_equal(a->run_ids[0], b->run_ids[0]);
    assert_true(isnan(a->runs[0].beta64));
    config_free(a);
    config_free(b);
}

static void test_write_list(void **state)
{
    (void)state;
    config_sweep *s = load("grid:\n"
                           "  - model: betavae\n"
                           "    beta: [1, 16]\n"
                           "  - model: jointvae\n"
                           "    gamma: 150\n"
                           "seeds: 2\n");
    char *t = list_text(s);
    /* columns: index, run_id, then the varying keys in key-table order
     * (latent_dim: jointvae's default is 6); gamma is set only for jointvae
     * and constant there, so it is not a column */
    char expect[2048];
    snprintf(expect, sizeof expect,
             "index  run_id            model     latent_dim  beta  seed\n"
             "0      %s  betavae   10          1     0\n"
             "1      %s  betavae   10          1     1\n"
             "2      %s  betavae   10          16    0\n"
             "3      %s  betavae   10          16    1\n"
             "4      %s  jointvae  6           -     0\n"
             "5      %s  jointvae  6           -     1\n"
             "6 runs (betavae 4, jointvae 2)\n",
             s->run_ids[0], s->run_ids[1], s->run_ids[2], s->run_ids[3], s->run_ids[4],
             s->run_ids[5]);
    assert_string_equal(t, expect);
    free(t);
    assert_int_equal(s->n_vary, 4);
    config_free(s);

    /* one run: no varying key, no trailing blanks */
    s = load("grid: {model: dsd, supervision: 0.1}\n");
    t = list_text(s);
    snprintf(expect, sizeof expect, "index  run_id\n0      %s\n1 run (dsd 1)\n", s->run_ids[0]);
    assert_string_equal(t, expect);
    free(t);
    config_free(s);

    /* shortest round-trip numbers and compact lists */
    s = load("grid:\n  - model: dsd\n    supervision: [0.1, 0.25]\n"
             "    chunks: [[1,1,1,1,1], [2,2,2,2,2]]\n");
    t = list_text(s);
    assert_non_null(strstr(t, "latent_dim  chunks       supervision\n"));
    assert_non_null(strstr(t, "5           [1,1,1,1,1]  0.1\n"));
    assert_non_null(strstr(t, "10          [2,2,2,2,2]  0.25\n"));
    free(t);
    config_free(s);

    /* a failing stream is reported */
    FILE *ro = fopen("/dev/null", "r");
    assert_non_null(ro);
    s = load("grid: {model: vae}\n");
    assert_int_equal(config_write_list(s, ro), ERR_IO);
    fclose(ro);
    config_free(s);
}

static void test_fixed_diff(void **state)
{
    (void)state;
    const char *base = "data: {image_size: 32}\n"
                       "train: {steps: 100, lr: 0.001}\n"
                       "eval: {images: 1000}\n"
                       "grid: {model: betavae, beta: [1, 2]}\n";
    config_sweep *a = load(base), *b = load(base);
    char key[32] = "untouched";
    assert_int_equal(config_fixed_diff(a, b, key, sizeof key), 0);
    config_free(b);
    /* grid and seeds may change (resume adds runs); key order does not matter */
    b = load("eval: {images: 1000}\n"
             "train: {lr: 1e-3, steps: 100}\n"
             "data: {image_size: 32}\n"
             "grid: {model: betavae, beta: [1, 2, 4]}\nseeds: 3\n");
    assert_int_equal(config_fixed_diff(a, b, key, sizeof key), 0);
    config_free(b);
    b = load("data: {image_size: 32}\n"
             "train: {steps: 200, lr: 0.001}\n"
             "eval: {images: 999}\n"
             "grid: {model: betavae, beta: [1, 2]}\n");
    assert_int_equal(config_fixed_diff(a, b, key, sizeof key), 1);
    assert_string_equal(key, "steps"); /* the first in key-table order */
    config_free(b);
    b = load("data: {image_size: 32}\n"
             "train: {steps: 100, lr: 0.001}\n"
             "grid: {model: betavae, beta: [1, 2]}\n"); /* eval's default images */
    assert_int_equal(config_fixed_diff(a, b, key, sizeof key), 1);
    assert_string_equal(key, "images");
    assert_int_equal(config_fixed_diff(a, b, NULL, 0), 1);
    config_free(b);
    config_free(a);
}

/* ---- files and limits -------------------------------------------------------- */

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *y = "name: f\ngrid: {model: vae, latent_dim: [2, 3]}\n";
    assert_int_equal(write(fd, y, strlen(y)), (ssize_t)strlen(y));
    close(fd);
    config_sweep *s = NULL;
    err e;
    assert_int_equal(config_load(&s, path, 0, &e), 0);
    assert_int_equal(s->n_runs, 2);
    assert_string_equal(s->path, path);
    assert_string_equal(s->text, y);
    config_free(s);
    /* errors name the file */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "grid: {model: vae, beta: 2}\n", 28), 28);
    close(fd);
    s = NULL;
    assert_int_equal(config_load(&s, path, 0, &e), ERR_INPUT);
    assert_null(s);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s:1:20: beta: model vae", path);
    assert_memory_equal(e.msg, prefix, strlen(prefix));
    unlink(path);
    /* a missing file, a directory: path and strerror, no line */
    assert_int_equal(config_load(&s, path, 0, &e), ERR_INPUT);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "No such file or directory"));
    assert_int_equal(config_load(&s, "/tmp", 0, &e), ERR_INPUT);
    assert_non_null(strstr(e.msg, "'/tmp'"));
    assert_non_null(strstr(e.msg, "Is a directory"));
    assert_null(s);
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void test_limits(void **state)
{
    (void)state;
    char msg[1024];
    /* billion laughs: nine levels of ten aliases each */
    char bomb[4096];
    size_t n = (size_t)snprintf(bomb, sizeof bomb, "a0: &a0 [lol]\n");
    for (int l = 1; l < 10; l++) {
        n += (size_t)snprintf(bomb + n, sizeof bomb - n, "a%d: &a%d [", l, l);
        for (int k = 0; k < 10; k++)
            n += (size_t)snprintf(bomb + n, sizeof bomb - n, "%s*a%d", k ? ", " : "", l - 1);
        n += (size_t)snprintf(bomb + n, sizeof bomb - n, "]\n");
    }
    double t0 = seconds();
    load_bad(bomb, n, 0, msg, sizeof msg);
    assert_true(seconds() - t0 < 0.5);
    assert_non_null(strstr(msg, "more than 64 aliases"));
    assert_memory_equal(msg, "t.yaml:8:", 9); /* the 65th alias is on line 8 */

    /* 10,000-deep flow and block nesting */
    size_t deep = 10000;
    char *d = malloc(4 * deep + 16);
    assert_non_null(d);
    n = 0;
    for (size_t i = 0; i < deep; i++)
        d[n++] = '[';
    for (size_t i = 0; i < deep; i++)
        d[n++] = ']';
    t0 = seconds();
    load_bad(d, n, 0, msg, sizeof msg);
    assert_true(seconds() - t0 < 0.5);
    assert_memory_equal(msg, "t.yaml:1:17: nesting deeper than 16 levels", 42);
    n = 0;
    for (size_t i = 0; i < deep; i++) { /* "- - - - ... 1" */
        d[n++] = '-';
        d[n++] = ' ';
    }
    d[n++] = '1';
    t0 = seconds();
    load_bad(d, n, 0, msg, sizeof msg);
    assert_true(seconds() - t0 < 0.5);
    assert_non_null(strstr(msg, "nesting deeper than 16 levels"));
    free(d);

    /* larger than 1 MiB: refused as a whole, without a line */
    size_t big = (size_t)CONFIG_MAX_BYTES + 1;
    char *b = malloc(big);
    assert_non_null(b);
    memset(b, '#', big);
    load_bad(b, big, 0, msg, sizeof msg);
    assert_non_null(strstr(msg, "t.yaml: 1048577 bytes, more than the limit"));
    /* exactly the limit is read (a comment: then an empty file) */
    load_bad(b, big - 1, 0, msg, sizeof msg);
    assert_non_null(strstr(msg, "t.yaml:1:1: empty file"));
    free(b);

    /* the run count is checked before expanding, with saturation */
    const char *huge = "grid:\n  - model: betavae\n"
                       "    beta: [1,2,3,4,5,6,7,8,9,10]\n    latent_dim: [1,2,3,4,5,6,7,8,9,10]\n"
                       "    lr: [0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1]\n"
                       "    steps: [1,2,3,4,5,6,7,8,9,10]\n"
                       "    batch_size: [2,3,4,5,6,7,8,9,10,11]\n"
                       "    images: [1,2,3,4,5,6,7,8,9,10]\n    samples: [1,2,3,4,5,6,7,8,9,10]\n"
                       "    pairs: [1,2,3,4,5,6,7,8,9,10]\n    log_every: [1,2,3,4,5,6,7,8,9,10]\n"
                       "seeds: 100000000000\n";
    t0 = seconds();
    load_bad(huge, strlen(huge), 0, msg, sizeof msg);
    assert_true(seconds() - t0 < 0.5);
    assert_non_null(strstr(msg, "t.yaml:1:1: grid: expands to more than 2^64 runs, over the limit "
                                "of 100000 (--max-runs raises the limit)"));
    config_sweep *s = NULL;
    err e;
    const char *ok = "grid: {model: betavae, beta: [1, 2, 3]}\nseeds: 2\n";
    assert_int_equal(config_load_text(&s, ok, strlen(ok), "t.yaml", 6, &e), 0);
    config_free(s);
    load_bad(ok, strlen(ok), 5, msg, sizeof msg);
    assert_string_equal(msg, "t.yaml:1:1: grid: expands to 6 runs, over the limit of 5 "
                             "(--max-runs raises the limit)\n  grid: {model: betavae, beta: [1, 2, "
                             "3]}\n  ^");
}

static void test_caret_and_window(void **state)
{
    (void)state;
    char msg[1024];
    const char *y = "grid:  # a comment\n\n  - model: betavae\n    beta: [1, x2]\n";
    load_bad(y, strlen(y), 0, msg, sizeof msg);
    assert_string_equal(msg, "t.yaml:4:15: beta: expected a number, got 'x2'\n"
                             "      beta: [1, x2]\n"
                             "                ^");
    /* a tab before the column is echoed in the caret line */
    y = "grid: {model: vae,\tlatent_dim: 0}\n";
    load_bad(y, strlen(y), 0, msg, sizeof msg);
    assert_string_equal(msg, "t.yaml:1:32: latent_dim: 0 is out of range (must be 1..1024)\n"
                             "  grid: {model: vae,\tlatent_dim: 0}\n"
                             "                    \t            ^");
    /* columns count characters, not bytes (libyaml's marks) */
    y = "data: {path: \"\xc3\xa9\xc3\xa9/x.h5\", image_size: 48}\ngrid: {model: vae}\n";
    load_bad(y, strlen(y), 0, msg, sizeof msg);
    assert_string_equal(msg, "t.yaml:1:37: image_size: 48 is not supported (must be 64 or 32)\n"
                             "  data: {path: \"\xc3\xa9\xc3\xa9/x.h5\", image_size: 48}\n"
                             "                                      ^");
    /* CRLF line ends count as one break */
    y = "name: x\r\ngrid:\r\n  - model: vae\r\n    beta: 1\r\n";
    load_bad(y, strlen(y), 0, msg, sizeof msg);
    assert_string_equal(msg, "t.yaml:4:5: beta: model vae does not take this parameter (it takes "
                             "latent_dim)\n      beta: 1\n      ^");
    /* a long line is shown as a window around the column */
    char line[600];
    size_t n = (size_t)snprintf(line, sizeof line, "grid: {model: betavae, beta: [");
    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%d, ", i + 1);
    n += (size_t)snprintf(line + n, sizeof line - n, "bad");
    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, ", %d", 100 + i);
    n += (size_t)snprintf(line + n, sizeof line - n, "]}\n");
    load_bad(line, n, 0, msg, sizeof msg);
    const char *caret = strrchr(msg, '\n') + 1, *src = strchr(msg, '\n') + 1;
    assert_true(strlen(caret) <= 110);
    assert_memory_equal(src, "  ...", 5);
    size_t at = strlen(caret) - 1; /* the caret's offset in its line */
    assert_memory_equal(src + at, "bad", 3);
}

/* ---- bad inputs ---------------------------------------------------------------- */

typedef struct bad_case {
    const char *name;
    const char *yaml;
    size_t max_runs;  /* 0: the default */
    const char *loc;  /* "line:col" */
    const char *text; /* must appear in the message */
} bad_case;

#define G "grid:\n  - model: betavae\n"

static const bad_case bad_cases[] = {
    {"syntax: indentation", "grid:\n  - model: vae\n   beta: 4\n", 0, "3:4",
     "YAML syntax error: did not find expected '-' indicator"},
    {"syntax: unclosed flow", "grid: [model: vae\n", 0, "2:1", "did not find expected ',' or ']'"},
    {"syntax: tab indent", "grid:\n\t- model: vae\n", 0, "2:1",
     "found character that cannot start any token"},
    {"unknown top key", "nmae: x\ngrid: {model: vae}\n", 0, "1:1",
     "unknown key 'nmae' at the top level (did you mean 'name'?)"},
    {"unknown block key", G "    betta: 4\n", 0, "3:5",
     "unknown key 'betta' in a grid block (did you mean 'beta'?)"},
    {"unknown train key", "train: {stepz: 5}\ngrid: {model: vae}\n", 0, "1:9",
     "unknown key 'stepz' in train"},
    {"unknown zip key", "grid:\n  - model: jointvae\n    zip: {gama: [1]}\n", 0, "3:11",
     "unknown key 'gama'"},
    {"train key in data", "data: {steps: 10}\ngrid: {model: vae}\n", 0, "1:8",
     "steps: a train key, not a data key"},
    {"model key in train", "train:\n  beta: 4\ngrid: {model: vae}\n", 0, "2:3",
     "beta: a model parameter, not a train key"},
    {"seed in train", "train:\n  seed: 4\ngrid: {model: vae}\n", 0, "2:3", "seed: not a train key"},
    {"model key at top", "beta: 4\ngrid: {model: vae}\n", 0, "1:1", "beta: not a top-level key"},
    {"train key at top", "steps: 100\ngrid: {model: vae}\n", 0, "1:1",
     "steps: a train key: put it under 'train:'"},
    {"mapping for a value", "grid:\n  - model: {a: 1}\n", 0, "2:12",
     "model: expected a value or a list of values, got a mapping"},
    {"section not a mapping", "train: 5\ngrid: {model: vae}\n", 0, "1:8",
     "train: expected a mapping of train keys"},
    {"axis in a section", "train: {steps: [1, 2]}\ngrid: {model: vae}\n", 0, "1:16",
     "steps: expected a single value in train, got a list"},
    {"name not a scalar", "name: [a]\ngrid: {model: vae}\n", 0, "1:7",
     "name: expected a single value"},
    {"out of range", G "    beta: -1\n", 0, "3:11", "beta: -1 is out of range"},
    {"out of range in axis", G "    beta: [1, -2]\n", 0, "3:15", "beta: -2 is out of range"},
    {"not a number", "train:\n  lr: abc\ngrid: {model: vae}\n", 0, "2:7",
     "lr: expected a number, got 'abc'"},
    {"quoted not an integer", "grid:\n  - model: !!str vae\n    latent_dim: \"x\"\n", 0, "3:17",
     "latent_dim: expected an integer, got 'x'"},
    {"image size", "data: {image_size: 48}\ngrid: {model: vae}\n", 0, "1:20",
     "image_size: 48 is not supported"},
    {"block steps range", "grid:\n  - model: vae\n    steps: -5\n", 0, "3:12",
     "steps: -5 is out of range"},
    {"bad choice in axis", "grid:\n  - model: betatcvae\n    estimator: [mss, xyz]\n", 0, "3:22",
     "estimator: 'xyz' is not one of mss|mws"},
    {"unknown model", "grid:\n  - model: vea\n", 0, "2:12", "model: 'vea' is not one of"},
    {"missing value", G "    beta:\n", 0, "3:10", "beta: missing value"},
    {"zip unequal",
     "grid:\n  - model: jointvae\n    zip:\n      gamma: [1, 2]\n      c_z_max: [1, 2, 3]\n", 0,
     "5:16", "zip: c_z_max has 3 values but gamma has 2"},
    {"zip scalar", "grid:\n  - model: jointvae\n    zip: {gamma: 1}\n", 0, "3:18",
     "zip: gamma must be a list"},
    {"zip not a mapping", "grid:\n  - model: jointvae\n    zip: [1, 2]\n", 0, "3:10",
     "zip: expected a mapping of equal-length lists, got a list"},
    {"zip empty", "grid:\n  - model: jointvae\n    zip: {}\n", 0, "3:5", "zip: empty"},
    {"empty grid", "grid: []\n", 0, "1:7", "grid: empty"},
    {"null grid", "name: x\ngrid:\n", 0, "2:6", "grid: empty"},
    {"grid scalar", "grid: 5\n", 0, "1:7", "grid: expected a list of blocks or one block"},
    {"missing grid", "name: x\n", 0, "1:1", "missing 'grid'"},
    {"empty block", "grid:\n  - {}\n", 0, "2:5", "grid: empty block"},
    {"block scalar", "grid:\n  - vae\n", 0, "2:5", "grid: a block is a mapping of keys"},
    {"block without model", "grid:\n  - beta: 4\n", 0, "2:5", "grid: block without 'model'"},
    {"not taken", "grid:\n  - model: vae\n    beta: 4\n", 0, "3:5",
     "beta: model vae does not take this parameter (it takes latent_dim)"},
    {"not taken by one of an axis", "grid:\n  - model: [betavae, vae]\n    beta: 4\n", 0, "3:5",
     "beta: model vae does not take this parameter"},
    {"not taken via alias", G "    beta: &b [1, 2]\n  - model: vae\n    beta: *b\n", 0, "5:5",
     "beta: model vae does not take"},
    {"duplicate block key", "grid:\n  - model: vae\n    latent_dim: 3\n    latent_dim: 4\n", 0,
     "4:5", "latent_dim: duplicate key in this grid block"},
    {"data set in a grid block", "grid:\n  - model: vae\n    name: [dsprites, shapes3d]\n", 0,
     "3:5", "name: the data set is fixed for a sweep"},
    {"unknown data set", "data: {name: mnist}\ngrid:\n  - model: vae\n", 0, "1:14",
     "name: 'mnist' is not one of dsprites|color_dsprites|noisy_dsprites|shapes3d"},
    {"duplicate key via zip", "grid:\n  - model: jointvae\n    gamma: 3\n    zip: {gamma: [1]}\n",
     0, "4:11", "gamma: duplicate key"},
    {"duplicate top key", "grid: {model: vae}\ngrid: {model: vae}\n", 0, "2:1",
     "grid: duplicate key"},
    {"duplicate section key", "train: {steps: 1, steps: 2}\ngrid: {model: vae}\n", 0, "1:19",
     "steps: duplicate key in train"},
    {"empty file", "", 0, "1:1", "empty file"},
    {"comments only", "# nothing here\n\n", 0, "1:1", "empty file"},
    {"root is a list", "- a\n- b\n", 0, "1:1", "at the top level, got a list"},
    {"two documents", "grid: {model: vae}\n---\ngrid: {model: vae}\n", 0, "2:1",
     "a second YAML document"},
    {"flat list discrete", "grid:\n  - model: jointvae\n    discrete: [3]\n", 0, "3:15",
     "discrete: a list value is written as a list of lists: [[3]] is one value"},
    {"flat list chunks", "grid:\n  - model: dsd\n    chunks: [2, 2, 2, 2, 2]\n", 0, "3:13",
     "chunks: a list value is written as a list of lists"},
    {"empty list value", "grid:\n  - model: jointvae\n    discrete: [[]]\n", 0, "3:16",
     "discrete: empty list"},
    {"list value too long",
     "grid:\n  - model: jointvae\n    discrete: [[2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2]]\n", 0, "3:16",
     "discrete: more than 16 values"},
    {"axis of lists", G "    beta: [[1]]\n", 0, "3:12",
     "beta: an axis lists single values, got a list"},
    {"empty axis", G "    beta: []\n", 0, "3:11", "beta: empty list"},
    {"seeds negative", "seeds: [0, -1]\ngrid: {model: vae}\n", 0, "1:12",
     "seeds: '-1' is not a non-negative integer"},
    {"seeds count 0", "seeds: 0\ngrid: {model: vae}\n", 0, "1:8",
     "seeds: a count must be at least 1"},
    {"seeds mapping", "seeds: {a: 1}\ngrid: {model: vae}\n", 0, "1:8",
     "seeds: expected a count or a list"},
    {"seeds repeated", "seeds: [1, 2, 1]\ngrid: {model: vae}\n", 0, "1:15",
     "seeds: 1 appears twice"},
    {"seeds: first repeat", "seeds: [5, 3, 5, 3]\ngrid: {model: vae}\n", 0, "1:15",
     "seeds: 5 appears twice"},
    {"seed beside seeds", "grid:\n  - model: vae\n    seed: 3\nseeds: 2\n", 0, "3:5",
     "seed: set in a grid block while the top-level 'seeds' is given"},
    {"undefined alias", "grid: {model: *nope}\n", 0, "1:15", "alias *nope"},
    {"self alias", "grid: &a [*a]\n", 0, "1:11", "alias *a"},
    {"too deep", "grid: [[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]\n", 0, "1:22",
     "nesting deeper than 16 levels"},
    {"too many runs", "grid:\n  - model: betavae\n    beta: [1, 2, 3, 4]\nseeds: 3\n", 10, "1:1",
     "grid: expands to 12 runs, over the limit of 10 (--max-runs raises the limit)"},
    {"repeated run", G "    beta: [1, 1]\n", 0, "2:5", "grid: run 1 repeats run 0"},
    {"repeated run across blocks", G "    beta: [1, 2]\n  - model: betavae\n    beta: 2\n", 0,
     "4:5", "grid: run 2 repeats run 1"},
    {"resolve: gamma without c_max", G "    gamma: 10\n", 0, "3:5", "gamma: only used with c_max"},
    {"lambda_od for betavae", G "    lambda_od: 10\n", 0, "3:5",
     "lambda_od: model betavae does not take this parameter"},
    {"beta for annealedvae", "grid:\n  - model: annealedvae\n    beta: 4\n", 0, "3:5",
     "beta: model annealedvae does not take this parameter"},
    {"beta with c_max", G "    beta: 4\n    c_max: 5\n", 0, "3:5",
     "beta: betavae with c_max is annealedvae"},
    {"beta and beta64", G "    beta: 4\n    beta64: 4\n", 0, "4:5",
     "beta64: set beta or beta64, not both"},
    {"beta64 for vae", "grid:\n  - model: vae\n    beta64: 4\n", 0, "3:5",
     "beta64: model vae does not take this parameter"},
    {"negative lambda_d", "grid:\n  - model: dipvae1\n    lambda_d: -1\n", 0, "3:15",
     "lambda_d: -1 is out of range"},
    {"resolve: chunks vs latent_dim",
     "grid:\n  - model: dsd\n    latent_dim: 8\n    chunks: [[2, 2, 2, 2, 2]]\n", 0, "4:5",
     "chunks: sizes sum to 10 but latent_dim is 8"},
    {"invalid UTF-8", "grid: {model: \xff}\n", 0, "1:15",
     "invalid input: invalid leading UTF-8 octet"},
    {"complex key", "grid:\n  - ? [a]\n    : 1\n", 0, "2:7", "expected a key name, got a list"},
    {"NUL in a value", "name: \"a\\0b\"\ngrid: {model: vae}\n", 0, "1:7",
     "a value contains a NUL character"},
    {"name too long",
     "name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ngrid: {model: vae}\n",
     0, "1:7", "name: longer than 127 characters"},
};

static void test_bad_inputs(void **state)
{
    (void)state;
    size_t n = sizeof bad_cases / sizeof bad_cases[0];
    assert_true(n >= 30);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        const bad_case *c = &bad_cases[i];
        config_sweep *sentinel = (config_sweep *)&sentinel, *s = sentinel;
        err e;
        int rc = config_load_text(&s, c->yaml, strlen(c->yaml), "t.yaml", c->max_runs, &e);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "t.yaml:%s: ", c->loc);
        const char *nl = strchr(e.msg, '\n');
        int ok = rc == ERR_INPUT && s == sentinel && strncmp(e.msg, prefix, strlen(prefix)) == 0 &&
                 strstr(e.msg, c->text) != NULL && nl && strchr(nl + 1, '\n') &&
                 e.msg[strlen(e.msg) - 1] == '^'; /* the source line and the caret */
        if (!ok) {
            print_error("case '%s': rc %d, want %s and '%s', got:\n%s\n", c->name, rc, prefix,
                        c->text, rc ? e.msg : "(loaded)");
            failed++;
            if (s != sentinel)
                config_free(s);
        }
    }
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_product_last_axis_fastest),
        cmocka_unit_test(test_union_of_blocks),
        cmocka_unit_test(test_zip),
        cmocka_unit_test(test_seeds_list_count_innermost),
        cmocka_unit_test(test_grid_overrides_fixed_sections),
        cmocka_unit_test(test_single_mapping_grid),
        cmocka_unit_test(test_list_valued_keys),
        cmocka_unit_test(test_sweep_fields),
        cmocka_unit_test(test_aliases_share_values),
        cmocka_unit_test(test_run_ids_survive_reordering),
        cmocka_unit_test(test_run_ids_survive_axis_growth),
        cmocka_unit_test(test_run_ids_distinct),
        cmocka_unit_test(test_run_ids_of_later_keys),
        cmocka_unit_test(test_annealedvae_alias),
        cmocka_unit_test(test_locatello_methods),
        cmocka_unit_test(test_beta64),
        cmocka_unit_test(test_write_list),
        cmocka_unit_test(test_fixed_diff),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_caret_and_window),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
