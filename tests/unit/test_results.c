/* Tests of the results module: create, append (NaN metrics, curves, detail),
 * close, reopen and the attempts list; the C reader gives back identical
 * values; h5py + pandas read /runs (tests/py/read_results.py); recovery from a
 * torn journal, a damaged or truncated HDF5 file, trailing all-zero rows and
 * missing rows; a file without its journal; an orphan journal; the YAML
 * history; merge (best attempt, missing indices, another sweep refused); and
 * the error messages. The kill test is tests/it/it_results_kill.sh. Correctness
 * only, no timing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "untangle/data.h"
#include "untangle/model.h"
#include "untangle/results.h"

/* ---- fixtures ------------------------------------------------------------------ */

static const char *const YAML_A = "name: test-sweep\ngrid:\n  - model: betavae\n    beta: [1, 4]\n";
static const char *const YAML_B =
    "name: test-sweep\ngrid:\n  - model: betavae\n    beta: [1, 4, 8]\n";

static results_meta meta_of(const char *name, const char *yaml, uint64_t hash)
{
    results_meta m = {
        .sweep_name = name,
        .sweep_yaml = yaml,
        .sweep_hash = hash,
        .untangle_version = "0.1.0-test",
        .library_versions = "HDF5 1.10.8; OpenBLAS test; Open MPI test; libyaml test",
    };
    return m;
}

typedef struct att {
    results_row row;
    run_config c;
    run_result r;
} att;

static void set_key(run_config *c, const char *k, const char *v)
{
    err e;
    err_clear(&e);
    int rc = run_config_set(c, k, v, &e);
    if (rc != 0)
        print_error("run_config_set %s=%s: %s\n", k, v, e.msg);
    assert_int_equal(rc, 0);
}

/* A deterministic attempt: model by index, status as given; ok runs have
 * metrics (mig_hist NaN for odd indices), curves, mi and a traversal;
 * failed ones an error and NaN everywhere. */
static void make_att(att *a, long index, int attempt, int status)
{
    static const char *const models[] = {"betavae", "jointvae", "betatcvae", "dsd", "vae"};
    memset(&a->row, 0, sizeof a->row);
    a->row.index = index;
    a->row.attempt = attempt;
    a->row.rank = (int)(index % 3) + 1;
    snprintf(a->row.host, sizeof a->row.host, "node%02ld.cluster", index % 7);
    run_config_defaults(&a->c);
    const char *model = models[index % 5];
    set_key(&a->c, "model", model);
    set_key(&a->c, "image_size", "32");
    set_key(&a->c, "steps", "1500");
    char seed[32];
    snprintf(seed, sizeof seed, "%ld", index);
    set_key(&a->c, "seed", seed);
    if (strcmp(model, "betavae") == 0)
        set_key(&a->c, "beta", index % 2 ? "4" : "1.5");
    else if (strcmp(model, "jointvae") == 0)
        set_key(&a->c, "discrete", "[3, 4]");
    else if (strcmp(model, "betatcvae") == 0)
        set_key(&a->c, "estimator", "mws");
    else if (strcmp(model, "dsd") == 0)
        set_key(&a->c, "chunks", "[2, 2, 1, 3, 2]");
    err e;
    err_clear(&e);
    int rc = model_resolve(&a->c, &e);
    if (rc)
        print_error("resolve: %s\n", e.msg);
    assert_int_equal(rc, 0);
    run_config_id(&a->c, a->row.run_id);

    run_result *r = &a->r;
    run_result_init(r);
    r->status = status;
    r->wall_s = 10.0 + (double)index + 0.25 * attempt;
    r->train_s = 8.0 + (double)index;
    r->steps = status == RUN_OK ? 1500 : 12;
    for (int t = 0; t < 4; t++)
        assert_int_equal(run_result_add_curve(r, 200L * (t + 1), t % 2 ? "kl" : "loss",
                                              1.0 / (t + 1 + (double)index), &e), 0);
    if (status != RUN_OK) {
        snprintf(r->error, sizeof r->error, "loss went NaN at step %ld (attempt %d)", r->steps,
                 attempt);
        return;
    }
    r->eval_s = 1.5;
    r->imgs_per_s = 1234.5 + (double)index;
    for (int m = 0; m < RUN_N_METRICS; m++)
        r->metric[m] = 0.1 * m + (double)index / 7.0;
    if (index % 2)
        r->metric[RUN_M_MIG_HIST] = NAN;
    r->metric[RUN_M_SWAP_ACC] = strcmp(model, "dsd") == 0 ? 0.75 : NAN;
    for (int k = 0; k < DATA_K; k++) {
        r->mig_factor[k] = 0.01 * k + 0.001 * (double)index;
        r->swap_factor[k] = k == 2 ? NAN : 0.5 + 0.1 * k;
    }
    r->n_units = a->c.latent_dim + a->c.n_discrete;
    r->mi = malloc(sizeof(float) * (size_t)r->n_units * DATA_K);
    assert_non_null(r->mi);
    for (int i = 0; i < r->n_units * DATA_K; i++)
        r->mi[i] = (float)(i * 0.03125 + (double)index);
    r->trav_h = 2 * 8;
    r->trav_w = 3 * 8;
    r->traversal = malloc((size_t)r->trav_h * (size_t)r->trav_w);
    assert_non_null(r->traversal);
    for (int i = 0; i < r->trav_h * r->trav_w; i++)
        r->traversal[i] = (uint8_t)(i * 7 + index);
}

static void free_atts(att *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        run_result_free(&a[i].r);
}

static void append_ok(results *f, const att *a)
{
    err e;
    err_clear(&e);
    int rc = results_append(f, &a->row, &a->c, &a->r, &e);
    if (rc)
        print_error("results_append: %s\n", e.msg);
    assert_int_equal(rc, 0);
}

static results *create_ok(const char *path, const results_meta *m)
{
    results *f = NULL;
    err e;
    err_clear(&e);
    int rc = results_create(&f, path, m, &e);
    if (rc)
        print_error("results_create: %s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(results_recovery(f), "");
    return f;
}

static results *open_ok(const char *path, const results_meta *m)
{
    results *f = NULL;
    err e;
    err_clear(&e);
    int rc = results_open(&f, path, m, &e);
    if (rc)
        print_error("results_open: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return f;
}

static void close_ok(results *f)
{
    err e;
    err_clear(&e);
    int rc = results_close(f, &e);
    if (rc)
        print_error("results_close: %s\n", e.msg);
    assert_int_equal(rc, 0);
}

/* A fresh directory under /tmp; removed by rm_dir. */
static void make_dir(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/untangle_test_results_XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void rm_dir(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static off_t file_size(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return st.st_size;
}

/* n bytes of path from byte at replaced by b (damage, as a disk's). */
static void overwrite(const char *path, off_t at, const void *b, size_t n)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, b, n, at), (ssize_t)n);
    close(fd);
}

static void copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* ---- comparisons ------------------------------------------------------------------- */

static void assert_same_bits(const char *what, const double *a, const double *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof a[i]) != 0) {
            print_error("%s[%zu]: got %.17g, want %.17g\n", what, i, b[i], a[i]);
            fail();
        }
}

static void assert_same_att(const att *want, const results_row *row, const run_config *c,
                            const run_result *r)
{
    assert_int_equal(row->index, want->row.index);
    assert_int_equal(row->attempt, want->row.attempt);
    assert_int_equal(row->rank, want->row.rank);
    assert_string_equal(row->run_id, want->row.run_id);
    assert_string_equal(row->host, want->row.host);
    char a[1200], b[1200];
    for (size_t i = 0; i < run_n_keys; i++) {
        run_config_format(&want->c, &run_keys[i], a, sizeof a);
        run_config_format(c, &run_keys[i], b, sizeof b);
        if (strcmp(a, b) != 0) {
            print_error("key %s: got '%s', want '%s'\n", run_keys[i].name, b, a);
            fail();
        }
    }
    char id[17];
    run_config read = *c; /* read back without the method's schema: ask the model */
    assert_int_equal(model_takes(&read, NULL), 0);
    run_config_id(&read, id);
    assert_string_equal(id, want->row.run_id);
    const run_result *w = &want->r;
    assert_int_equal(r->status, w->status);
    assert_string_equal(r->error, w->error);
    assert_int_equal(r->steps, w->steps);
    assert_same_bits("timings", &w->wall_s, &r->wall_s, 1);
    assert_same_bits("train_s", &w->train_s, &r->train_s, 1);
    assert_same_bits("eval_s", &w->eval_s, &r->eval_s, 1);
    assert_same_bits("imgs_per_s", &w->imgs_per_s, &r->imgs_per_s, 1);
    assert_same_bits("metric", w->metric, r->metric, RUN_N_METRICS);
    assert_same_bits("mig_factor", w->mig_factor, r->mig_factor, DATA_K);
    assert_same_bits("swap_factor", w->swap_factor, r->swap_factor, DATA_K);
    assert_int_equal(r->n_units, w->n_units);
    if (w->n_units)
        assert_memory_equal(r->mi, w->mi, sizeof(float) * (size_t)w->n_units * DATA_K);
    assert_int_equal(r->traversal != NULL, w->traversal != NULL);
    if (w->traversal) {
        assert_int_equal(r->trav_h, w->trav_h);
        assert_int_equal(r->trav_w, w->trav_w);
        assert_memory_equal(r->traversal, w->traversal, (size_t)w->trav_h * (size_t)w->trav_w);
    }
    assert_int_equal(r->n_curve, w->n_curve);
    for (size_t i = 0; i < w->n_curve; i++) {
        assert_int_equal(r->curve[i].step, w->curve[i].step);
        assert_string_equal(r->curve[i].name, w->curve[i].name);
        assert_same_bits("curve", &w->curve[i].value, &r->curve[i].value, 1);
    }
}

/* The file read with the C reader holds exactly want[0..n-1], in order, and
 * skipped rows as given. */
static void assert_file_holds(const char *path, const att *want, size_t n, size_t skipped)
{
    results_reader *rd = NULL;
    err e;
    err_clear(&e);
    int rc = results_reader_open(&rd, path, &e);
    if (rc)
        print_error("results_reader_open: %s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(results_reader_count(rd), n);
    assert_int_equal(results_reader_skipped(rd), skipped);
    run_result r;
    run_result_init(&r);
    for (size_t i = 0; i < n; i++) {
        results_row row;
        run_config c;
        assert_int_equal(results_reader_row(rd, i, &row, &c, &r, &e), 0);
        assert_same_att(&want[i], &row, &c, &r);
    }
    run_result_free(&r);
    results_reader_close(rd);
}

static void assert_attempts(const results *f, const att *want, size_t n)
{
    size_t na = 0;
    const results_attempt *a = results_attempts(f, &na);
    assert_int_equal(na, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(a[i].index, want[i].row.index);
        assert_int_equal(a[i].attempt, want[i].row.attempt);
        assert_int_equal(a[i].status, want[i].r.status);
        assert_string_equal(a[i].run_id, want[i].row.run_id);
        assert_string_equal(a[i].model, want[i].c.model);
        assert_string_equal(a[i].arch, want[i].c.arch);
        assert_true(a[i].wall_s == want[i].r.wall_s);
    }
}

/* A file of n attempts: index i, attempt 1, ok except index 1 (failed). */
static void make_file(const char *path, att *a, size_t n)
{
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    results *f = create_ok(path, &m);
    for (size_t i = 0; i < n; i++) {
        make_att(&a[i], (long)i, 1, i == 1 ? RUN_FAILED : RUN_OK);
        append_ok(f, &a[i]);
    }
    close_ok(f);
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_create_append_reopen(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[6];
    make_att(&a[0], 0, 1, RUN_OK);
    make_att(&a[1], 1, 1, RUN_FAILED);
    make_att(&a[2], 1, 2, RUN_OK);
    make_att(&a[3], 2, 1, RUN_DIVERGED);
    make_att(&a[4], 3, 1, RUN_OK);
    make_att(&a[5], 4, 1, RUN_TIMEOUT);
    a[5].r.n_curve = 0; /* a run killed before its first log line */

    results *f = create_ok(path, &m);
    assert_string_equal(results_sweep_name(f), "test-sweep");
    assert_true(results_sweep_hash(f) == 0x1234abcdULL);
    assert_string_equal(results_sweep_yaml(f), YAML_A);
    for (int i = 0; i < 4; i++)
        append_ok(f, &a[i]);
    assert_attempts(f, a, 4);
    close_ok(f);
    assert_file_holds(path, a, 4, 0);

    /* reopen: nothing to repair, attempts from the journal, append more */
    f = open_ok(path, &m);
    assert_string_equal(results_recovery(f), "");
    assert_attempts(f, a, 4);
    append_ok(f, &a[4]);
    append_ok(f, &a[5]);
    assert_attempts(f, a, 6);
    close_ok(f);
    assert_file_holds(path, a, 6, 0);
    f = open_ok(path, NULL);
    assert_string_equal(results_recovery(f), "");
    assert_attempts(f, a, 6);
    close_ok(f);
    char damaged[160];
    snprintf(damaged, sizeof damaged, "%s.damaged-1", path);
    assert_false(exists(damaged));
    free_atts(a, 6);
    rm_dir(dir);
}

static int have_h5py(void)
{
    return system("/usr/bin/python3 -c 'import h5py, pandas, numpy' >/dev/null 2>&1") == 0;
}

static void json_num(FILE *j, const char *key, double v)
{
    if (isnan(v))
        fprintf(j, ", \"%s\": null", key);
    else
        fprintf(j, ", \"%s\": %.17g", key, v);
}

static void test_python_reader(void **state)
{
    (void)state;
    if (!have_h5py()) {
        print_message("skipped: /usr/bin/python3 cannot import h5py, pandas and numpy\n");
        skip();
    }
    char dir[64], path[128], exp[160], cmd[512];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(exp, sizeof exp, "%s/expect.json", dir);
    att a[5];
    make_file(path, a, 5);
    /* plus two all-zero rows at the end: the reader must skip them */
    hid_t fl = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = H5Dopen2(fl, "runs", H5P_DEFAULT);
    hsize_t n = 7;
    assert_true(H5Dset_extent(ds, &n) >= 0);
    H5Dclose(ds);
    H5Fclose(fl);

    FILE *j = fopen(exp, "w");
    assert_non_null(j);
    fprintf(j, "{\"sweep_name\": \"test-sweep\", \"n_sweeps\": 1, \"sweep_yaml\": ");
    fputc('"', j);
    for (const char *p = YAML_A; *p; p++)
        fputs(*p == '\n' ? "\\n" : (char[2]){*p, 0}, j);
    fprintf(j, "\", \"rows\": [");
    for (int i = 0; i < 5; i++) {
        const run_result *r = &a[i].r;
        char lst[256];
        fprintf(j, "%s{\"index\": %ld, \"attempt\": %d, \"status\": \"%s\", \"model\": \"%s\"",
                i ? ", " : "", a[i].row.index, a[i].row.attempt, run_status_name(r->status),
                a[i].c.model);
        fprintf(j, ", \"run_id\": \"%s\", \"host\": \"%s\", \"rank\": %d, \"error\": \"%s\"",
                a[i].row.run_id, a[i].row.host, a[i].row.rank, r->error);
        fprintf(j, ", \"arch\": \"%s\", \"seed\": %ld, \"steps\": %ld, \"steps_done\": %ld",
                a[i].c.arch, a[i].c.seed, a[i].c.steps, r->steps);
        run_config_format(&a[i].c, run_key_find("discrete"), lst, sizeof lst);
        fprintf(j, ", \"discrete\": \"%s\", \"latent_dim\": %d", lst, a[i].c.latent_dim);
        run_config_format(&a[i].c, run_key_find("chunks"), lst, sizeof lst);
        fprintf(j, ", \"chunks\": \"%s\"", lst);
        json_num(j, "beta", a[i].c.beta);
        json_num(j, "wall_s", r->wall_s);
        for (int k = 0; k < RUN_N_METRICS; k++)
            json_num(j, run_metric_names[k], r->metric[k]);
        for (int k = 0; k < DATA_K; k++) {
            char name[64];
            snprintf(name, sizeof name, "swap_acc_%s", data_factor_names[k]);
            json_num(j, name, r->swap_factor[k]);
        }
        fprintf(j, ", \"curves\": %zu", r->n_curve);
        if (r->n_units)
            fprintf(j, ", \"mi_shape\": [%d, %d], \"traversal_shape\": [%d, %d]", r->n_units,
                    DATA_K, r->trav_h, r->trav_w);
        fputc('}', j);
    }
    fprintf(j, "]}\n");
    assert_int_equal(fclose(j), 0);
    snprintf(cmd, sizeof cmd,
             "PYTHONPATH=analysis /usr/bin/python3 tests/py/read_results.py %s --expect %s", path,
             exp);
    int rc = system(cmd);
    assert_int_equal(rc, 0);
    free_atts(a, 5);
    rm_dir(dir);
}

static void test_torn_journal(void **state)
{
    (void)state;
    char dir[64], path[128], jpath[160], snap[160];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(jpath, sizeof jpath, "%s.journal", path);
    snprintf(snap, sizeof snap, "%s/snap.h5", dir);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[3];
    for (int i = 0; i < 3; i++)
        make_att(&a[i], i, 1, RUN_OK);
    /* The state a kill leaves when it lands in the middle of the journal write
     * of attempt 3: the journal ends in a partial record, the HDF5 file has
     * attempts 1 and 2. Two cuts: inside the payload, inside the header. */
    for (int cut = 0; cut < 2; cut++) {
        unlink(path);
        unlink(jpath);
        results *f = create_ok(path, &m);
        append_ok(f, &a[0]);
        append_ok(f, &a[1]);
        close_ok(f);
        copy_file(path, snap);
        off_t before = file_size(jpath);
        f = open_ok(path, &m);
        append_ok(f, &a[2]);
        close_ok(f);
        off_t after = file_size(jpath);
        copy_file(snap, path);
        off_t keep = cut == 0 ? before + (after - before) / 2 : before + 7;
        assert_int_equal(truncate(jpath, keep), 0);

        f = open_ok(path, &m);
        assert_non_null(strstr(results_recovery(f), "torn"));
        assert_null(strstr(results_recovery(f), "rebuilt"));
        assert_attempts(f, a, 2);
        assert_int_equal(file_size(jpath), before);
        /* the dropped attempt can be appended again */
        append_ok(f, &a[2]);
        close_ok(f);
        assert_file_holds(path, a, 3, 0);
        f = open_ok(path, &m);
        assert_string_equal(results_recovery(f), "");
        close_ok(f);
    }
    free_atts(a, 3);
    rm_dir(dir);
}

/* Byte offset in the file of row i of /runs (a torn chunk write is
 * simulated by overwriting bytes there). */
static off_t row_offset(const char *path, hsize_t i)
{
    hid_t fl = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(fl, "runs", H5P_DEFAULT);
    hid_t t = H5Dget_type(ds);
    size_t row = H5Tget_size(t);
    hsize_t off[1] = {0};
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    assert_true(H5Dget_chunk_info_by_coord(ds, off, &mask, &addr, &size) >= 0);
    assert_true(addr != HADDR_UNDEF);
    H5Tclose(t);
    H5Dclose(ds);
    H5Fclose(fl);
    return (off_t)(addr + i * row);
}

/* The offset in the global heap collection g of gsize bytes ("GCOL",
 * version, size; then objects: index 2, references 2, reserved 4, size 8,
 * data padded to 8; little endian, as this machine) of its free-space object
 * (index 0), or 0 when the collection is full and has none. */
static uint64_t heap_free_space(const uint8_t *g, uint64_t gsize)
{
    for (uint64_t p = 16; p + 16 <= gsize;) {
        uint16_t idx;
        uint64_t osize;
        memcpy(&idx, g + p, 2);
        memcpy(&osize, g + p + 8, 8);
        if (idx == 0)
            return p;
        p += 16 + ((osize + 7) & ~(uint64_t)7);
    }
    return 0;
}

/* In the first global heap collection of the file that has free space, set
 * the size of the free-space object to 0. */
static void zero_heap_free_space(const char *path)
{
    off_t size = file_size(path);
    uint8_t *b = malloc((size_t)size);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(b);
    assert_non_null(fp);
    assert_int_equal(fread(b, 1, (size_t)size, fp), (size_t)size);
    uint8_t *g = b;
    uint64_t gsize = 0, p = 0;
    for (;; g += 4) {
        g = memmem(g, (size_t)(b + size - g), "GCOL", 4);
        assert_non_null(g);
        memcpy(&gsize, g + 8, 8);
        if ((p = heap_free_space(g, gsize)) != 0)
            break;
    }
    memset(g + p + 8, 0, 8);
    fseek(fp, (long)(g - b), SEEK_SET);
    assert_int_equal(fwrite(g, 1, (size_t)gsize, fp), (size_t)gsize);
    fclose(fp);
    free(b);
}

/* The file's reference to the variable-length string text (seq length 4,
 * collection address 8, object index 4; little endian, as this machine) made
 * to name object 2^30, which its collection does not hold: HDF5 1.10's
 * H5HG_read then reads through a wild pointer (SIGSEGV), as in the damaged
 * file tests/fuzz/fuzz_results.c found (an index byte changed). */
static void break_heap_reference(const char *path, const char *text)
{
    off_t size = file_size(path);
    uint8_t *b = malloc((size_t)size);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(b);
    assert_non_null(fp);
    assert_int_equal(fread(b, 1, (size_t)size, fp), (size_t)size);
    uint8_t *g = memmem(b, (size_t)size, "GCOL", 4);
    assert_non_null(g);
    uint64_t gsize = 0, p = 16, addr = (uint64_t)(g - b);
    uint32_t len = (uint32_t)strlen(text), idx = 0;
    memcpy(&gsize, g + 8, 8);
    while (!idx) { /* the object that holds text */
        assert_true(p + 16 <= gsize);
        uint16_t i;
        uint64_t osize;
        memcpy(&i, g + p, 2);
        memcpy(&osize, g + p + 8, 8);
        assert_true(i != 0); /* the free space comes last */
        if (osize == len && memcmp(g + p + 16, text, len) == 0)
            idx = i;
        p += 16 + ((osize + 7) & ~(uint64_t)7);
    }
    uint8_t ref[16];
    memcpy(ref, &len, 4);
    memcpy(ref + 4, &addr, 8);
    memcpy(ref + 12, &idx, 4);
    uint8_t *at = memmem(b, (size_t)size, ref, sizeof ref);
    assert_non_null(at);
    uint32_t bad = 0x40000000u; /* far outside the collection: a read there faults */
    fseek(fp, (long)(at + 12 - b), SEEK_SET);
    assert_int_equal(fwrite(&bad, 1, 4, fp), 4);
    fclose(fp);
    free(b);
}

static void test_damaged_file_rebuilt(void **state)
{
    (void)state;
    char dir[64], path[128], damaged[160];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[4];
    make_file(path, a, 4);
    /* five kinds of damage: truncated to half, the superblock overwritten,
     * bytes in the middle (inside /runs' chunk or the detail) overwritten,
     * the free space of the global heap (the variable-length strings) made
     * 0 bytes long, on which HDF5 1.10 would loop forever (alarm: a hang
     * fails), and a string's heap reference naming an object that is not
     * there, on which HDF5 1.10 crashes (it would kill this test). The heap
     * first: the file as written has free space in its collections, a
     * rebuilt one may have filled them exactly. */
    static const int kinds[] = {3, 0, 1, 2, 4};
    for (int i = 0; i < 5; i++) {
        const int kind = kinds[i];
        off_t size = file_size(path);
        if (kind == 0) {
            assert_int_equal(truncate(path, size / 2), 0);
        } else if (kind == 3) {
            zero_heap_free_space(path);
            alarm(60);
        } else if (kind == 4) {
            break_heap_reference(path, YAML_A);
            results_reader *rd = NULL;
            err e;
            err_clear(&e);
            assert_true(results_reader_open(&rd, path, &e) < 0);
            assert_int_equal(e.code, ERR_HDF5);
            if (!strstr(e.msg, "crashed the HDF5 library"))
                print_error("reader: %s\n", e.msg);
            assert_non_null(strstr(e.msg, "crashed the HDF5 library"));
            assert_non_null(strstr(e.msg, path));
        } else {
            off_t at = 0; /* kind 1: the superblock */
            if (kind == 2)
                at = row_offset(path, 2) + 700; /* kind 2: inside row 2 of /runs */
            char junk[64];
            memset(junk, 'x', sizeof junk);
            overwrite(path, at, junk, sizeof junk);
        }
        results *f = open_ok(path, &m);
        snprintf(damaged, sizeof damaged, "%s.damaged-%d", path, i + 1);
        if (!strstr(results_recovery(f), "rebuilt") || !strstr(results_recovery(f), damaged))
            print_error("kind %d: recovery note: %s\n", kind, results_recovery(f));
        assert_non_null(strstr(results_recovery(f), "rebuilt"));
        assert_non_null(strstr(results_recovery(f), damaged));
        assert_true(exists(damaged));
        assert_attempts(f, a, 4);
        close_ok(f);
        alarm(0);
        assert_file_holds(path, a, 4, 0);
    }
    free_atts(a, 4);
    rm_dir(dir);
}

static void test_zero_rows_repaired(void **state)
{
    (void)state;
    char dir[64], path[128], damaged[160];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(damaged, sizeof damaged, "%s.damaged-1", path);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[3];
    make_file(path, a, 3);
    /* what a kill during the flush can leave: the extent grew, the rows are
     * zeros */
    hid_t fl = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = H5Dopen2(fl, "runs", H5P_DEFAULT);
    hsize_t n = 5;
    assert_true(H5Dset_extent(ds, &n) >= 0);
    H5Dclose(ds);
    H5Fclose(fl);
    assert_file_holds(path, a, 3, 2); /* readers skip them */

    results *f = open_ok(path, &m);
    assert_non_null(strstr(results_recovery(f), "all-zero"));
    assert_true(exists(damaged));
    close_ok(f);
    assert_file_holds(path, a, 3, 0);
    assert_file_holds(damaged, a, 3, 2); /* the damaged file is kept as it was */
    free_atts(a, 3);
    rm_dir(dir);
}

static void test_missing_rows_rebuilt(void **state)
{
    (void)state;
    char dir[64], path[128], snap[160];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(snap, sizeof snap, "%s/snap.h5", dir);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[3];
    make_file(path, a, 2);
    make_att(&a[2], 2, 1, RUN_OK);
    copy_file(path, snap);
    results *f = open_ok(path, &m);
    append_ok(f, &a[2]);
    close_ok(f);
    /* a kill after the journal's fsync, before the HDF5 flush */
    copy_file(snap, path);
    f = open_ok(path, &m);
    assert_non_null(strstr(results_recovery(f), "2 of the journal's 3 rows"));
    assert_attempts(f, a, 3);
    close_ok(f);
    assert_file_holds(path, a, 3, 0);
    free_atts(a, 3);
    rm_dir(dir);
}

static void test_no_journal_and_orphan(void **state)
{
    (void)state;
    char dir[64], path[128], jpath[160], moved[160];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(jpath, sizeof jpath, "%s.journal", path);
    snprintf(moved, sizeof moved, "%s/elsewhere.h5", dir);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[4];
    make_file(path, a, 3);
    make_att(&a[3], 3, 1, RUN_OK);

    /* a file copied without its journal: a journal is written from it */
    assert_int_equal(unlink(jpath), 0);
    results *f = open_ok(path, &m);
    assert_non_null(strstr(results_recovery(f), "had no journal"));
    assert_attempts(f, a, 3);
    append_ok(f, &a[3]);
    close_ok(f);
    assert_file_holds(path, a, 4, 0);
    f = open_ok(path, &m);
    assert_string_equal(results_recovery(f), "");
    close_ok(f);

    /* a journal without its file (a kill during a rebuild): create recovers
     * it for the same sweep ... */
    assert_int_equal(rename(path, moved), 0);
    f = NULL;
    err e;
    err_clear(&e);
    assert_int_equal(results_create(&f, path, &m, &e), 0);
    assert_non_null(strstr(results_recovery(f), "recovered"));
    assert_attempts(f, a, 4);
    close_ok(f);
    assert_file_holds(path, a, 4, 0);

    /* ... and moves another sweep's aside */
    assert_int_equal(unlink(path), 0);
    results_meta other = meta_of("other-sweep", YAML_B, 77);
    f = NULL;
    assert_int_equal(results_create(&f, path, &other, &e), 0);
    assert_non_null(strstr(results_recovery(f), "orphan-1"));
    assert_attempts(f, a, 0);
    close_ok(f);
    char orphan[200];
    snprintf(orphan, sizeof orphan, "%s.orphan-1", jpath);
    assert_true(exists(orphan));
    free_atts(a, 4);
    rm_dir(dir);
}

static void test_yaml_history(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    results_meta ma = meta_of("test-sweep", YAML_A, 1), mb = meta_of("test-sweep", YAML_B, 2);
    att a[3];
    make_file(path, a, 2);
    /* a resume with another YAML that appends nothing records nothing */
    results *f = open_ok(path, &mb);
    close_ok(f);
    results_reader *rd = NULL;
    err e;
    assert_int_equal(results_reader_open(&rd, path, &e), 0);
    assert_int_equal(results_reader_n_sweeps(rd), 1);
    results_reader_close(rd);
    /* one that appends records its YAML once */
    make_att(&a[2], 2, 1, RUN_OK);
    f = open_ok(path, &mb);
    append_ok(f, &a[2]);
    close_ok(f);
    f = open_ok(path, &mb);
    assert_string_equal(results_recovery(f), "");
    assert_string_equal(results_sweep_yaml(f), YAML_A); /* the first one */
    close_ok(f);
    assert_int_equal(results_reader_open(&rd, path, &e), 0);
    assert_int_equal(results_reader_n_sweeps(rd), 2);
    assert_string_equal(results_reader_sweep(rd, 0)->sweep_yaml, YAML_A);
    assert_string_equal(results_reader_sweep(rd, 1)->sweep_yaml, YAML_B);
    assert_true(results_reader_sweep(rd, 1)->sweep_hash == 2);
    assert_string_equal(results_reader_meta(rd)->sweep_yaml, YAML_A);
    assert_string_equal(results_reader_meta(rd)->library_versions, ma.library_versions);
    char created[64];
    snprintf(created, sizeof created, "%s", results_reader_meta(rd)->created);
    assert_int_equal(strlen(created), 20);
    assert_int_equal(created[10], 'T');
    assert_int_equal(created[19], 'Z');
    results_reader_close(rd);
    /* the history survives a rebuild */
    assert_int_equal(truncate(path, 100), 0);
    f = open_ok(path, &mb);
    assert_non_null(strstr(results_recovery(f), "rebuilt"));
    close_ok(f);
    assert_int_equal(results_reader_open(&rd, path, &e), 0);
    assert_int_equal(results_reader_n_sweeps(rd), 2);
    assert_string_equal(results_reader_sweep(rd, 1)->sweep_yaml, YAML_B);
    assert_string_equal(results_reader_meta(rd)->created, created);
    results_reader_close(rd);
    assert_file_holds(path, a, 3, 0);
    free_atts(a, 3);
    rm_dir(dir);
}

/* A file at path holding the n attempts a, in order. */
static void write_shard(const char *path, const results_meta *m, const att *a, size_t n)
{
    results *f = create_ok(path, m);
    for (size_t i = 0; i < n; i++)
        append_ok(f, &a[i]);
    close_ok(f);
}

/* A fresh directory, two inputs of a merge named n1 and n2 in it, and its
 * output. */
typedef struct merge_paths {
    char dir[64], s1[128], s2[128], out[128];
} merge_paths;

static void merge_paths_make(merge_paths *p, const char *n1, const char *n2)
{
    make_dir(p->dir, sizeof p->dir);
    snprintf(p->s1, sizeof p->s1, "%s/%s", p->dir, n1);
    snprintf(p->s2, sizeof p->s2, "%s/%s", p->dir, n2);
    snprintf(p->out, sizeof p->out, "%s/merged.h5", p->dir);
}

static void test_merge(void **state)
{
    (void)state;
    merge_paths p;
    merge_paths_make(&p, "shard1.h5", "shard2.h5");
    char jp[160];
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[6];
    make_att(&a[0], 0, 1, RUN_OK);     /* shard 1 */
    make_att(&a[1], 2, 1, RUN_OK);     /* shard 1: index 2 ok ... */
    make_att(&a[2], 2, 2, RUN_FAILED); /* shard 2: ... and a later failed attempt */
    make_att(&a[3], 4, 1, RUN_FAILED); /* shard 2 */
    make_att(&a[4], 4, 2, RUN_TIMEOUT); /* shard 2: the latest of two failures */
    make_att(&a[5], 6, 1, RUN_OK);     /* shard 2, beyond n_expected: kept */
    write_shard(p.s1, &m, a, 2);
    write_shard(p.s2, &m, a + 2, 4);
    /* shards are read from their HDF5 contents: journals not needed */
    snprintf(jp, sizeof jp, "%s.journal", p.s2);
    assert_int_equal(unlink(jp), 0);

    const char *in[2] = {p.s1, p.s2};
    err e;
    err_clear(&e);
    int rc = results_merge(p.out, in, 2, &e);
    if (rc)
        print_error("merge: %s\n", e.msg);
    assert_int_equal(rc, 0);
    /* every attempt of every input, in input order */
    assert_file_holds(p.out, a, 6, 0);
    /* the merged file has its own journal and opens without repair */
    results *f = open_ok(p.out, &m);
    assert_string_equal(results_recovery(f), "");
    assert_attempts(f, a, 6);
    close_ok(f);
    /* the output must not exist */
    err_clear(&e);
    assert_int_equal(results_merge(p.out, in, 2, &e), ERR_IO);
    assert_non_null(strstr(e.msg, p.out));
    free_atts(a, 6);
    rm_dir(p.dir);
}

/* A shard of a grown grid holds runs under other indices than the first
 * shard (a run was inserted before them): rows pair by run_id and attempt,
 * so no run is lost, and a copy of the same attempt in both is kept once. */
static void test_merge_grown_grid(void **state)
{
    (void)state;
    merge_paths p;
    merge_paths_make(&p, "old.h5", "grown.h5");
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[5];
    make_att(&a[0], 0, 1, RUN_OK); /* old grid: runs A (index 0) and B (index 1) */
    make_att(&a[1], 1, 1, RUN_OK);
    make_att(&a[2], 7, 1, RUN_OK); /* grown grid: a new run C at index 0 ... */
    a[2].row.index = 0;
    make_att(&a[3], 1, 1, RUN_OK); /* ... B again (the same attempt, copied) at index 2 */
    a[3].row.index = 2;
    make_att(&a[4], 0, 2, RUN_OK); /* ... A's second attempt at index 1 */
    a[4].row.index = 1;
    write_shard(p.s1, &m, a, 2);
    write_shard(p.s2, &m, a + 2, 3);
    const char *in[2] = {p.s1, p.s2};
    err e;
    err_clear(&e);
    assert_int_equal(results_merge(p.out, in, 2, &e), 0);
    /* B's copy in the later input wins; A, A's retry and C all stay */
    att want[4] = {a[0], a[2], a[3], a[4]};
    assert_file_holds(p.out, want, 4, 0);
    free_atts(a, 5);
    rm_dir(p.dir);
}

/* Re-evaluations (`untangle eval`): rows of /evals numbered per run, kept by
 * a reopen, rebuilt from the journal when the file is lost, written into a
 * new journal when the journal is lost, and carried by merge. */
static void assert_evals(const char *path, const att *want, const int *evaluation, size_t n)
{
    results_reader *rd = NULL;
    err e;
    err_clear(&e);
    assert_int_equal(results_reader_open(&rd, path, &e), 0);
    assert_int_equal(results_reader_count_evals(rd), n);
    run_result r;
    run_result_init(&r);
    for (size_t i = 0; i < n; i++) {
        results_row row;
        run_config c;
        assert_int_equal(results_reader_eval(rd, i, &row, &c, &r, &e), 0);
        assert_int_equal(row.evaluation, evaluation[i]);
        assert_string_equal(row.run_id, want[i].row.run_id);
        assert_int_equal(row.attempt, want[i].row.attempt);
        assert_memory_equal(r.metric, want[i].r.metric, sizeof r.metric);
        assert_memory_equal(r.mig_factor, want[i].r.mig_factor, sizeof r.mig_factor);
        assert_int_equal(r.n_units, want[i].r.n_units);
        assert_memory_equal(r.mi, want[i].r.mi, sizeof(float) * (size_t)r.n_units * DATA_K);
        assert_int_equal(c.images, want[i].c.images);
        assert_int_equal(r.n_curve, 0);
    }
    run_result_free(&r);
    results_reader_close(rd);
}

static void test_evals(void **state)
{
    (void)state;
    char dir[64], path[128], jp[160], out[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(jp, sizeof jp, "%s.journal", path);
    snprintf(out, sizeof out, "%s/merged.h5", dir);
    att a[2], ev[3];
    make_file(path, a, 2); /* index 0 ok, index 1 failed */
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    results *f = open_ok(path, &m);
    assert_int_equal(results_last_evaluation(f, a[0].row.run_id), 0);
    int number[3] = {1, 2, 1};
    for (int i = 0; i < 3; i++) {
        make_att(&ev[i], i == 2 ? 2 : 0, 1, RUN_OK); /* index 2: another run's */
        ev[i].r.n_curve = 0;
        ev[i].r.metric[RUN_M_MIG] += i;
        set_key(&ev[i].c, "images", i ? "500" : "200");
        ev[i].row.evaluation = number[i];
        append_ok(f, &ev[i]);
    }
    assert_int_equal(results_last_evaluation(f, a[0].row.run_id), 2);
    err e;
    err_clear(&e);
    assert_int_equal(results_append(f, &ev[1].row, &ev[1].c, &ev[1].r, &e), ERR_INPUT);
    assert_non_null(strstr(e.msg, "evaluation 2"));
    close_ok(f);
    assert_file_holds(path, a, 2, 0); /* /runs untouched */
    assert_evals(path, ev, number, 3);
    f = open_ok(path, &m); /* the file agrees with its journal */
    assert_string_equal(results_recovery(f), "");
    close_ok(f);
    /* the file lost: rebuilt from the journal, /evals included */
    assert_int_equal(unlink(path), 0);
    f = open_ok(path, &m);
    assert_non_null(strstr(results_recovery(f), "rebuilt"));
    assert_int_equal(results_last_evaluation(f, a[0].row.run_id), 2);
    close_ok(f);
    assert_evals(path, ev, number, 3);
    /* the journal lost: written from the file, /evals included */
    assert_int_equal(unlink(jp), 0);
    f = open_ok(path, &m);
    assert_int_equal(results_last_evaluation(f, ev[2].row.run_id), 1);
    close_ok(f);
    f = open_ok(path, &m);
    assert_string_equal(results_recovery(f), "");
    close_ok(f);
    /* merge carries them (a copy in a later input is dropped) */
    const char *in[2] = {path, path};
    err_clear(&e);
    assert_int_equal(results_merge(out, in, 2, &e), 0);
    assert_evals(out, ev, number, 3);
    assert_file_holds(out, a, 2, 0);
    free_atts(a, 2);
    free_atts(ev, 3);
    rm_dir(dir);
}

static void test_merge_other_sweep(void **state)
{
    (void)state;
    merge_paths p;
    merge_paths_make(&p, "shard1.h5", "other.h5");
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    results_meta o = meta_of("test-sweep", YAML_B, 0x9999ULL); /* same name, other hash */
    att a[1];
    make_att(&a[0], 0, 1, RUN_OK);
    write_shard(p.s1, &m, a, 1);
    write_shard(p.s2, &o, a, 0);
    const char *in[2] = {p.s1, p.s2};
    err e;
    err_clear(&e);
    assert_int_equal(results_merge(p.out, in, 2, &e), ERR_INPUT);
    assert_non_null(strstr(e.msg, p.s2));
    assert_non_null(strstr(e.msg, "sweep"));
    assert_false(exists(p.out));
    char jp[160];
    snprintf(jp, sizeof jp, "%s.journal", p.out);
    assert_false(exists(jp));
    free_atts(a, 1);
    rm_dir(p.dir);
}

static void expect_error(int rc, const err *e, int code, const char *part1, const char *part2)
{
    if (rc != code || !strstr(e->msg, part1) || (part2 && !strstr(e->msg, part2)))
        print_error("rc %d (want %d), message: %s\n", rc, code, e->msg);
    if (getenv("SHOW_MESSAGES"))
        print_message("message: %s\n", e->msg);
    assert_int_equal(rc, code);
    assert_non_null(strstr(e->msg, part1));
    if (part2)
        assert_non_null(strstr(e->msg, part2));
}

static void test_errors(void **state)
{
    (void)state;
    char dir[64], path[128], text[128], plain[128], missing_dir[160];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(text, sizeof text, "%s/notes.txt", dir);
    snprintf(plain, sizeof plain, "%s/plain.h5", dir);
    snprintf(missing_dir, sizeof missing_dir, "%s/no/such/dir/r.h5", dir);
    results_meta m = meta_of("test-sweep", YAML_A, 1);
    results *f = NULL;
    err e;

    err_clear(&e);
    expect_error(results_create(&f, missing_dir, &m, &e), &e, ERR_IO, missing_dir,
                 "No such file or directory");
    assert_null(f);
    err_clear(&e);
    expect_error(results_open(&f, path, &m, &e), &e, ERR_IO, path, "No such file");
    err_clear(&e);
    results_meta bad = m;
    bad.sweep_yaml = NULL;
    expect_error(results_create(&f, path, &bad, &e), &e, ERR_INPUT, "YAML", NULL);
    assert_false(exists(path));

    /* a text file, and an HDF5 file that is not an untangle file */
    FILE *t = fopen(text, "w");
    assert_non_null(t);
    fputs("hello\n", t);
    fclose(t);
    err_clear(&e);
    expect_error(results_open(&f, text, &m, &e), &e, ERR_INPUT, text, "not an HDF5 file");
    assert_true(exists(text));
    hid_t h = H5Fcreate(plain, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(h >= 0);
    H5Fclose(h);
    err_clear(&e);
    expect_error(results_open(&f, plain, &m, &e), &e, ERR_INPUT, plain,
                 "not an untangle results file");
    err_clear(&e);
    expect_error(results_create(&f, text, &m, &e), &e, ERR_IO, text, "exists");

    /* appends that are refused; a second writer */
    f = create_ok(path, &m);
    att a[1];
    make_att(&a[0], 0, 1, RUN_OK);
    append_ok(f, &a[0]);
    err_clear(&e);
    expect_error(results_append(f, &a[0].row, &a[0].c, &a[0].r, &e), &e, ERR_INPUT,
                 "already recorded", NULL);
    a[0].row.attempt = 2;
    a[0].r.status = RUN_STATUS_NONE;
    err_clear(&e);
    expect_error(results_append(f, &a[0].row, &a[0].c, &a[0].r, &e), &e, ERR_INPUT, "invalid",
                 NULL);
    results *g = NULL;
    err_clear(&e);
    expect_error(results_open(&g, path, &m, &e), &e, ERR_IO, "in use", NULL);
    assert_null(g);
    close_ok(f);
    a[0].row.attempt = 1;
    a[0].r.status = RUN_OK;
    assert_file_holds(path, a, 1, 0);
    assert_int_equal(results_close(NULL, &e), 0);
    results_reader_close(NULL);
    free_atts(a, 1);
    rm_dir(dir);
}

static uint32_t crc32_ieee(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

/* Byte offset of journal record k (0 = META). */
static off_t record_offset(const char *jpath, int k)
{
    int fd = open(jpath, O_RDONLY);
    assert_true(fd >= 0);
    off_t at = 0;
    for (int i = 0; i < k; i++) {
        uint64_t len;
        assert_int_equal(pread(fd, &len, 8, at + 8), 8);
        at += 20 + (off_t)len;
    }
    close(fd);
    return at;
}

/* A record whose CRC is wrong though its length is complete (bit rot, not a
 * kill), the last one or one in the middle: the journal is copied aside, the
 * record dropped; the file, which has that row, is then ahead of its journal,
 * which is rewritten from it. A damaged header takes every record with it
 * (none can be read without it); the file has them all. */
static void test_journal_bad_crc(void **state)
{
    (void)state;
    char dir[64], path[128], jpath[160], copy[200], behind[200];
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[3];
    for (int where = 0; where < 3; where++) { /* the last row, a middle row, the header */
        make_dir(dir, sizeof dir);
        snprintf(path, sizeof path, "%s/r.h5", dir);
        snprintf(jpath, sizeof jpath, "%s.journal", path);
        snprintf(copy, sizeof copy, "%s.damaged-1", jpath);
        snprintf(behind, sizeof behind, "%s.behind-1", jpath);
        make_file(path, a, 3);
        off_t size = file_size(jpath);
        off_t at = where == 0 ? size - 100 : record_offset(jpath, where == 1 ? 2 : 0) + 30;
        overwrite(jpath, at, "\xff\xfe", 2);
        results *f = open_ok(path, &m);
        const char *note = results_recovery(f);
        if (!strstr(note, "damaged journal record") || !strstr(note, "behind"))
            print_error("where %d: note: %s\n", where, note);
        assert_non_null(strstr(note, "damaged journal record"));
        assert_non_null(strstr(note, "behind"));
        assert_true(exists(copy));
        assert_int_equal(file_size(copy), size);
        assert_true(exists(behind));
        assert_attempts(f, a, 3);
        close_ok(f);
        assert_file_holds(path, a, 3, 0);
        f = open_ok(path, &m);
        assert_string_equal(results_recovery(f), "");
        close_ok(f);
        free_atts(a, 3);
        rm_dir(dir);
    }
}

/* Both damaged before one open: the journal loses row 1 (a bad CRC), the
 * file garbles row 3, which the journal has. The file is rebuilt from the
 * journal, then gets row 1 back from the damaged file; the journal records it
 * again. */
static void test_file_and_journal_damaged(void **state)
{
    (void)state;
    char dir[64], path[128], jpath[160], damaged[160];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(jpath, sizeof jpath, "%s.journal", path);
    snprintf(damaged, sizeof damaged, "%s.damaged-1", path);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[4];
    make_file(path, a, 4);
    overwrite(jpath, record_offset(jpath, 2) + 30, "\xff\xfe", 2);
    char junk[64];
    memset(junk, 'x', sizeof junk);
    overwrite(path, row_offset(path, 3) + 700, junk, sizeof junk);
    results *f = open_ok(path, &m);
    const char *note = results_recovery(f);
    if (!strstr(note, "rebuilt") || !strstr(note, "rows that its journal had lost: 1"))
        print_error("note: %s\n", note);
    assert_non_null(strstr(note, "rebuilt"));
    assert_non_null(strstr(note, damaged));
    assert_non_null(strstr(note, "rows that its journal had lost: 1"));
    att want[4] = {a[0], a[2], a[3], a[1]}; /* row 1 recorded again, last */
    assert_attempts(f, want, 4);
    close_ok(f);
    assert_file_holds(path, want, 4, 0);
    f = open_ok(path, &m); /* file and journal agree */
    assert_string_equal(results_recovery(f), "");
    close_ok(f);
    free_atts(a, 4);
    rm_dir(dir);
}

/* Another file's journal beside a file that has more and different rows:
 * refused, nothing renamed or rewritten. An intact record this version cannot
 * decode: refused, the journal untouched. */
static void test_foreign_and_unknown_journal(void **state)
{
    (void)state;
    char dir[64], p1[128], p2[128], j1[160], j2[160], damaged[160];
    make_dir(dir, sizeof dir);
    snprintf(p1, sizeof p1, "%s/one.h5", dir);
    snprintf(p2, sizeof p2, "%s/two.h5", dir);
    snprintf(j1, sizeof j1, "%s.journal", p1);
    snprintf(j2, sizeof j2, "%s.journal", p2);
    snprintf(damaged, sizeof damaged, "%s.damaged-1", p2);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[3], b[1];
    make_file(p2, a, 3);
    results *f = create_ok(p1, &m);
    make_att(&b[0], 7, 2, RUN_OK);
    append_ok(f, &b[0]);
    close_ok(f);
    copy_file(j1, j2);
    err e;
    err_clear(&e);
    f = NULL;
    expect_error(results_open(&f, p2, &m, &e), &e, ERR_INPUT, "not this file's", j2);
    assert_false(exists(damaged));
    assert_file_holds(p2, a, 3, 0);

    off_t size = file_size(j1);
    uint8_t rec[24];
    uint32_t magic = 0x4a4e5455u, type = 9, payload = 0xdeadbeefu;
    uint64_t len = 4;
    uint32_t crc = crc32_ieee(0, &type, 4);
    crc = crc32_ieee(crc, &len, 8);
    crc = crc32_ieee(crc, &payload, 4);
    memcpy(rec, &magic, 4);
    memcpy(rec + 4, &type, 4);
    memcpy(rec + 8, &len, 8);
    memcpy(rec + 16, &crc, 4);
    memcpy(rec + 20, &payload, 4);
    int fd = open(j1, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rec, sizeof rec), (ssize_t)sizeof rec);
    close(fd);
    err_clear(&e);
    expect_error(results_open(&f, p1, &m, &e), &e, ERR_INPUT, "cannot be read by this version",
                 NULL);
    assert_int_equal(file_size(j1), size + (off_t)sizeof rec);
    free_atts(a, 3);
    free_atts(b, 1);
    rm_dir(dir);
}

/* A reader in another process (an analysis notebook with h5py) holds the
 * file open with HDF5's shared lock: a resume still opens and appends. */
static void test_reader_does_not_block_resume(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[3];
    make_file(path, a, 2);
    make_att(&a[2], 2, 1, RUN_OK);
    int to_child[2], from_child[2];
    assert_int_equal(pipe(to_child), 0);
    assert_int_equal(pipe(from_child), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(to_child[1]);
        close(from_child[0]);
        hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        char c = h >= 0 ? 'y' : 'n';
        if (write(from_child[1], &c, 1) != 1)
            _exit(2);
        if (read(to_child[0], &c, 1) < 0) /* until the parent closes the pipe */
            _exit(2);
        if (h >= 0)
            H5Fclose(h);
        _exit(0);
    }
    close(to_child[0]);
    close(from_child[1]);
    char c = 0;
    assert_int_equal(read(from_child[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    results *f = open_ok(path, &m);
    assert_string_equal(results_recovery(f), "");
    append_ok(f, &a[2]);
    close_ok(f);
    close(to_child[1]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(from_child[0]);
    assert_file_holds(path, a, 3, 0);
    free_atts(a, 3);
    rm_dir(dir);
}

/* A root string attribute of path as a malloc'd string; NULL when absent. */
static char *root_attr(const char *path, const char *name)
{
    hid_t fl = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(fl >= 0);
    char *out = NULL;
    if (H5Aexists(fl, name) > 0) {
        hid_t a = H5Aopen(fl, name, H5P_DEFAULT), t = H5Tcopy(H5T_C_S1);
        assert_true(a >= 0 && t >= 0);
        assert_true(H5Tset_size(t, H5T_VARIABLE) >= 0);
        char *v = NULL;
        assert_true(H5Aread(a, t, &v) >= 0);
        out = strdup(v);
        H5free_memory(v);
        H5Tclose(t);
        H5Aclose(a);
    }
    H5Fclose(fl);
    return out;
}

/* A new file carries what Python reads instead of copying C tables: key_help
 * (every key), metric_units, traversal_steps. A file without them (an earlier
 * version's) still opens and takes appends, and is not given them. */
static void test_program_attributes(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    att a[2];
    make_file(path, a, 1);
    char *help = root_attr(path, "key_help"), *units = root_attr(path, "metric_units");
    char *steps = root_attr(path, "traversal_steps");
    assert_non_null(help);
    assert_non_null(units);
    assert_non_null(steps);
    assert_true(help[0] == '{' && help[strlen(help) - 1] == '}');
    for (size_t i = 0; i < run_n_keys; i++) {
        char want[512];
        snprintf(want, sizeof want, "\"%s\": \"%s\"", run_keys[i].name, run_keys[i].help);
        if (!strstr(help, want))
            print_error("key_help lacks %s: %s\n", want, help);
        assert_non_null(strstr(help, want));
    }
    for (int m = 0; m < RUN_N_METRICS; m++) {
        char want[256];
        snprintf(want, sizeof want, "\"%s\": \"%s\"", run_metric_names[m], run_metric_units[m]);
        assert_non_null(strstr(units, want));
    }
    assert_true(strncmp(steps, "[-2.5, ", 7) == 0);
    assert_non_null(strstr(steps, ", 2.5]"));
    int commas = 0;
    for (const char *p = steps; *p; p++)
        commas += *p == ',';
    assert_int_equal(commas, RUN_TRAV_STEPS - 1);
    free(help);
    free(units);
    free(steps);

    /* an earlier version's file: the same without the three attributes */
    hid_t fl = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(fl >= 0);
    assert_true(H5Adelete(fl, "key_help") >= 0);
    assert_true(H5Adelete(fl, "metric_units") >= 0);
    assert_true(H5Adelete(fl, "traversal_steps") >= 0);
    H5Fclose(fl);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    results *f = open_ok(path, &m);
    assert_string_equal(results_recovery(f), "");
    make_att(&a[1], 1, 1, RUN_OK);
    append_ok(f, &a[1]);
    close_ok(f);
    assert_file_holds(path, a, 2, 0);
    assert_null(root_attr(path, "key_help"));
    free_atts(a, 2);
    rm_dir(dir);
}

/* ---- fault paths: temporaries and backups are never hijacked ---------------- */

static void write_text(const char *p, const char *text)
{
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void assert_text(const char *p, const char *text)
{
    char buf[256] = "";
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    assert_string_equal(buf, text);
}

static int is_link(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0 && S_ISLNK(st.st_mode);
}

/* Links planted at every temporary and backup name (PATH.rebuild,
 * PATH.damaged-1, PATH.journal.tmp, PATH.journal.damaged-1) point at a file
 * that must survive a rebuild, a journal rewrite and a journal copy; the
 * backups go to the next free name. */
static void test_no_hijack(void **state)
{
    (void)state;
    char dir[64], path[128], jpath[160], victim[160], name[220];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(jpath, sizeof jpath, "%s.journal", path);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[3];
    make_file(path, a, 3);
    write_text(victim, "precious");
    const char *planted[] = {".rebuild", ".damaged-1", ".journal.tmp", ".journal.damaged-1"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s%s", path, planted[i]);
        assert_int_equal(symlink(victim, name), 0);
    }
    /* 1. a damaged file: moved aside (not over the link) and rebuilt */
    assert_int_equal(truncate(path, file_size(path) / 2), 0);
    results *f = open_ok(path, &m);
    assert_non_null(strstr(results_recovery(f), "r.h5.damaged-2"));
    close_ok(f);
    assert_text(victim, "precious");
    assert_file_holds(path, a, 3, 0);
    snprintf(name, sizeof name, "%s.damaged-1", path);
    assert_true(is_link(name));
    /* 2. no journal: written from the file through a temporary */
    assert_int_equal(unlink(jpath), 0);
    f = open_ok(path, &m);
    close_ok(f);
    assert_text(victim, "precious");
    /* 3. a bad CRC: the journal is copied aside to the next free name */
    overwrite(jpath, file_size(jpath) - 100, "\xff\xfe", 2);
    f = open_ok(path, &m);
    assert_non_null(strstr(results_recovery(f), "journal.damaged-2"));
    close_ok(f);
    assert_text(victim, "precious");
    assert_file_holds(path, a, 3, 0);
    free_atts(a, 3);
    rm_dir(dir);
}

/* --restart's move: never over an earlier backup (every name this second
 * and the next is taken), never while a writer holds the lock, never a
 * directory, FIFO or link, and a lone journal goes too (the next create
 * starts afresh). */
static void test_move_aside(void **state)
{
    (void)state;
    char dir[64], path[128], jpath[160], kept[4200], taken[2][200], stamp[32];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(jpath, sizeof jpath, "%s.journal", path);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[2];
    make_file(path, a, 2);
    for (int k = 0; k < 2; k++) {
        time_t t = time(NULL) + k;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
        snprintf(taken[k], sizeof taken[k], "%s.bak-%s", path, stamp);
        write_text(taken[k], "earlier backup");
    }
    /* a writer holds the lock: refused, nothing moved */
    results *f = open_ok(path, &m);
    err e;
    err_clear(&e);
    assert_int_equal(results_move_aside(path, kept, sizeof kept, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "in use"));
    close_ok(f);
    assert_true(exists(path) && exists(jpath));
    /* moved to a free name */
    assert_int_equal(results_move_aside(path, kept, sizeof kept, &e), 0);
    assert_true(strcmp(kept, taken[0]) != 0 && strcmp(kept, taken[1]) != 0);
    assert_text(taken[0], "earlier backup");
    assert_text(taken[1], "earlier backup");
    assert_false(exists(path) || exists(jpath));
    assert_file_holds(kept, a, 2, 0);
    /* nothing there: nothing to do */
    assert_int_equal(results_move_aside(path, kept, sizeof kept, &e), 0);
    assert_string_equal(kept, "");
    /* a directory, a FIFO, a link, a foreign file: refused and left as they are */
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(results_move_aside(path, kept, sizeof kept, &e), ERR_INPUT);
    assert_non_null(strstr(e.msg, "directory"));
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(results_move_aside(path, kept, sizeof kept, &e), ERR_INPUT);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink(taken[0], path), 0);
    assert_int_equal(results_move_aside(path, kept, sizeof kept, &e), ERR_INPUT);
    assert_int_equal(unlink(path), 0);
    write_text(path, "not an HDF5 file");
    assert_int_equal(results_move_aside(path, kept, sizeof kept, &e), ERR_INPUT);
    assert_text(path, "not an HDF5 file");
    assert_int_equal(unlink(path), 0);
    /* a lone journal is moved too: the next create starts afresh */
    att b[1];
    make_file(path, b, 1);
    free_atts(b, 1);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(results_move_aside(path, kept, sizeof kept, &e), 0);
    assert_false(exists(jpath));
    f = NULL;
    assert_int_equal(results_create(&f, path, &m, &e), 0);
    size_t n = 9;
    results_attempts(f, &n);
    assert_int_equal(n, 0);
    close_ok(f);
    free_atts(a, 2);
    rm_dir(dir);
}

/* Journal damage in the middle (a length field, a CRC) loses only the
 * damaged record: the intact ones after it are kept (the file is gone, so
 * only the journal has them), and the damaged journal is copied aside. An
 * empty or garbage journal beside an intact file is rewritten from it. */
static void test_journal_damage_kept(void **state)
{
    (void)state;
    char dir[64], path[128], jpath[160], copy[200];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(jpath, sizeof jpath, "%s.journal", path);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[4];
    for (int kind = 0; kind < 2; kind++) {
        make_file(path, a, 4);
        off_t size = file_size(jpath), at = record_offset(jpath, 3); /* row 2 */
        if (kind == 0) { /* the length field of row 2 */
            uint64_t huge = 1ull << 40;
            overwrite(jpath, at + 8, &huge, 8);
        } else { /* a payload byte of row 2: its CRC fails */
            overwrite(jpath, at + 30, "\xff", 1);
        }
        assert_int_equal(unlink(path), 0);
        results *f = open_ok(path, &m);
        snprintf(copy, sizeof copy, "%s.damaged-1", jpath);
        if (!strstr(results_recovery(f), copy))
            print_error("kind %d: note: %s\n", kind, results_recovery(f));
        assert_non_null(strstr(results_recovery(f), copy));
        assert_int_equal(file_size(copy), size);
        att keep[3] = {a[0], a[1], a[3]};
        assert_attempts(f, keep, 3);
        close_ok(f);
        assert_file_holds(path, keep, 3, 0);
        f = open_ok(path, &m); /* repaired for good: nothing more to do */
        assert_string_equal(results_recovery(f), "");
        close_ok(f);
        free_atts(a, 4);
        rm_dir(dir);
        make_dir(dir, sizeof dir);
        snprintf(path, sizeof path, "%s/r.h5", dir);
        snprintf(jpath, sizeof jpath, "%s.journal", path);
    }
    /* an empty, then a garbage journal beside an intact file */
    make_file(path, a, 4);
    for (int kind = 0; kind < 2; kind++) {
        int fd = open(jpath, O_WRONLY | O_TRUNC);
        assert_true(fd >= 0);
        if (kind == 1)
            assert_int_equal(write(fd, "garbage, not a journal at all", 29), 29);
        close(fd);
        results *f = open_ok(path, &m);
        assert_attempts(f, a, 4);
        close_ok(f);
        assert_file_holds(path, a, 4, 0);
    }
    snprintf(copy, sizeof copy, "%s.damaged-1", jpath);
    assert_int_equal(file_size(copy), 29); /* the garbage is kept */
    free_atts(a, 4);
    rm_dir(dir);
}

static unsigned mode_of(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return (unsigned)(st.st_mode & 07777);
}

/* The file and its journal get 0666 & ~umask however they were made: fresh,
 * rebuilt, a journal rewritten from the file, a merge. */
static void test_file_modes(void **state)
{
    (void)state;
    char dir[64], path[128], jpath[160], out[160], jout[200];
    mode_t old = umask(0);
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(jpath, sizeof jpath, "%s.journal", path);
    snprintf(out, sizeof out, "%s/m.h5", dir);
    snprintf(jout, sizeof jout, "%s.journal", out);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    att a[2];
    err e;
    err_clear(&e);
    make_file(path, a, 2); /* fresh */
    assert_int_equal(mode_of(path), 0666);
    assert_int_equal(mode_of(jpath), 0666);
    assert_int_equal(truncate(path, file_size(path) / 2), 0); /* rebuilt */
    results *f = open_ok(path, &m);
    close_ok(f);
    assert_int_equal(mode_of(path), 0666);
    assert_int_equal(unlink(jpath), 0); /* a journal rewritten from the file */
    f = open_ok(path, &m);
    close_ok(f);
    assert_int_equal(mode_of(jpath), 0666);
    const char *in[] = {path};
    assert_int_equal(results_merge(out, in, 1, &e), 0);
    assert_int_equal(mode_of(out), 0666);
    assert_int_equal(mode_of(jout), 0666);
    umask(old);
    free_atts(a, 2);
    rm_dir(dir);
}


/* An ok attempt of a shapes3d run: six factors in every per-factor figure
 * and in mi. */
static void make_att_shapes3d(att *a, long index)
{
    make_att(a, index, 1, RUN_OK);
    set_key(&a->c, "name", "shapes3d");
    set_key(&a->c, "path", "/data/3dshapes.h5");
    err e;
    assert_int_equal(model_resolve(&a->c, &e), 0);
    run_config_id(&a->c, a->row.run_id);
    run_result *r = &a->r;
    r->n_factors = 6;
    free(r->mi);
    r->mi = malloc(sizeof(float) * (size_t)r->n_units * 6);
    assert_non_null(r->mi);
    for (int i = 0; i < r->n_units * 6; i++)
        r->mi[i] = (float)(0.5 * i + (double)index);
    for (int k = 0; k < 6; k++) {
        r->mig_factor[k] = 0.02 * k + 0.001 * (double)index;
        r->swap_factor[k] = NAN;
        r->chunk_factor[k] = NAN;
    }
}

/* The /runs column `name` exists in path's file. */
static int has_column(const char *path, const char *name)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, "runs", H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    int yes = H5Tget_member_index(t, name) >= 0;
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
    return yes;
}

static void assert_shapes3d_rows(const char *path, const att *want, size_t n)
{
    results_reader *rd = NULL;
    err e;
    assert_int_equal(results_reader_open(&rd, path, &e), 0);
    assert_int_equal(results_reader_count(rd), n);
    for (size_t i = 0; i < n; i++) {
        results_row row;
        run_config c;
        run_result r;
        run_result_init(&r);
        assert_int_equal(results_reader_row(rd, i, &row, &c, &r, &e), 0);
        assert_string_equal(c.name, "shapes3d");
        assert_string_equal(row.run_id, want[i].row.run_id);
        assert_int_equal(r.n_factors, 6);
        assert_int_equal(r.n_units, want[i].r.n_units);
        assert_memory_equal(r.mi, want[i].r.mi, sizeof(float) * (size_t)r.n_units * 6);
        for (int k = 0; k < 6; k++)
            assert_true(r.mig_factor[k] == want[i].r.mig_factor[k]);
        run_result_free(&r);
    }
    results_reader_close(rd);
}

/* A file of one data set: its per-factor columns are that set's factors
 * (shapes3d: six, by name), its data_name attribute says which, a rebuild
 * from the journal keeps them, and rows or sweeps of another data set are
 * refused with one line. */
static void test_data_set_columns(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s3.h5", dir);
    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    m.data_name = "shapes3d";
    att a[2];
    make_att_shapes3d(&a[0], 0);
    make_att_shapes3d(&a[1], 2);
    results *f = create_ok(path, &m);
    append_ok(f, &a[0]);
    /* a dSprites row does not go into a shapes3d file */
    att d;
    make_att(&d, 4, 1, RUN_OK);
    err e;
    err_clear(&e);
    assert_int_equal(results_append(f, &d.row, &d.c, &d.r, &e), ERR_INPUT);
    assert_non_null(strstr(e.msg, "data set dsprites, the file holds shapes3d"));
    free_atts(&d, 1);
    close_ok(f);
    assert_true(has_column(path, "mig_floor_hue") && has_column(path, "mig_orientation") &&
                has_column(path, "swap_acc_object_hue") && has_column(path, "chunk_mig_wall_hue"));
    assert_false(has_column(path, "mig_posX"));
    hid_t fl = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(H5Aexists(fl, "data_name") > 0);
    H5Fclose(fl);
    assert_shapes3d_rows(path, a, 1);

    /* a sweep of another data set cannot open it */
    results_meta md = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    results *g = NULL;
    err_clear(&e);
    assert_int_equal(results_open(&g, path, &md, &e), ERR_INPUT);
    assert_null(g);
    assert_non_null(strstr(e.msg, "holds results of the data set shapes3d, this sweep's is "
                                  "dsprites"));

    /* the file lost: rebuilt from the journal with the same columns */
    assert_int_equal(unlink(path), 0);
    f = open_ok(path, &m);
    append_ok(f, &a[1]);
    close_ok(f);
    assert_true(has_column(path, "mig_orientation"));
    assert_false(has_column(path, "mig_posY"));
    assert_shapes3d_rows(path, a, 2);

    /* merged into a new file: still shapes3d's */
    char out[160];
    snprintf(out, sizeof out, "%s/merged.h5", dir);
    const char *in[1] = {path};
    err_clear(&e);
    assert_int_equal(results_merge(out, in, 1, &e), 0);
    assert_true(has_column(out, "mig_floor_hue"));
    assert_false(has_column(out, "mig_posX"));
    assert_shapes3d_rows(out, a, 2);
    free_atts(a, 2);
    rm_dir(dir);
}

/* path's /runs rewritten without the column `drop` (packed, chunked and
 * extendible as the writer makes it): the file of an earlier version that
 * did not have that column. */
static void drop_column(const char *path, const char *drop)
{
    hid_t fl = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(fl >= 0);
    hid_t ds = H5Dopen2(fl, "runs", H5P_DEFAULT), ft = H5Dget_type(ds);
    hid_t sp = H5Dget_space(ds);
    hsize_t n = (hsize_t)H5Sget_simple_extent_npoints(sp);
    const int nm = H5Tget_nmembers(ft);
    size_t size = 0;
    for (int pass = 0; pass < 2; pass++) {
        hid_t old = pass ? H5Tcreate(H5T_COMPOUND, size) : H5I_INVALID_HID;
        size_t off = 0;
        int dropped = 0;
        for (int i = 0; i < nm; i++) {
            char *name = H5Tget_member_name(ft, (unsigned)i);
            hid_t mt = H5Tget_member_type(ft, (unsigned)i);
            if (strcmp(name, drop) != 0) {
                if (pass)
                    assert_true(H5Tinsert(old, name, off, mt) >= 0);
                off += H5Tget_size(mt);
            } else {
                dropped = 1;
            }
            H5Tclose(mt);
            H5free_memory(name);
        }
        assert_true(dropped);
        size = off;
        if (!pass)
            continue;
        uint8_t *rows = malloc(n * size + 1);
        assert_non_null(rows);
        assert_true(H5Dread(ds, old, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
        H5Dclose(ds);
        assert_true(H5Ldelete(fl, "runs", H5P_DEFAULT) >= 0);
        hsize_t maxd = H5S_UNLIMITED, chunk = 64;
        hid_t s2 = H5Screate_simple(1, &n, &maxd), pl = H5Pcreate(H5P_DATASET_CREATE);
        assert_true(H5Pset_chunk(pl, 1, &chunk) >= 0);
        ds = H5Dcreate2(fl, "runs", old, s2, H5P_DEFAULT, pl, H5P_DEFAULT);
        assert_true(ds >= 0);
        assert_true(H5Dwrite(ds, old, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
        free(rows);
        H5Pclose(pl);
        H5Sclose(s2);
        H5Tclose(old);
    }
    H5Sclose(sp);
    H5Tclose(ft);
    H5Dclose(ds);
    H5Fclose(fl);
}

/* A file written before disc_acc (its /runs without the column) reads with
 * disc_acc NaN and every other value as written; a resume's open rebuilds
 * it from the journal, whose rows carry disc_acc again. */
static void test_file_before_disc_acc(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    att a[3];
    make_file(path, a, 3);
    assert_true(has_column(path, "disc_acc"));
    drop_column(path, "disc_acc");
    assert_false(has_column(path, "disc_acc"));
    assert_true(has_column(path, "mutual_info_score"));

    att old[3];
    memcpy(old, a, sizeof a); /* the same rows, disc_acc unknown (shares the arrays) */
    for (int i = 0; i < 3; i++)
        old[i].r.metric[RUN_M_DISC_ACC] = NAN;
    assert_true(a[0].r.metric[RUN_M_DISC_ACC] == 0.1 * RUN_M_DISC_ACC);
    assert_file_holds(path, old, 3, 0);

    results_meta m = meta_of("test-sweep", YAML_A, 0x1234abcdULL);
    results *f = open_ok(path, &m);
    assert_non_null(strstr(results_recovery(f), "not this version's"));
    close_ok(f);
    assert_true(has_column(path, "disc_acc"));
    assert_file_holds(path, a, 3, 0);
    free_atts(a, 3);
    rm_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_append_reopen),
        cmocka_unit_test(test_python_reader),
        cmocka_unit_test(test_torn_journal),
        cmocka_unit_test(test_damaged_file_rebuilt),
        cmocka_unit_test(test_zero_rows_repaired),
        cmocka_unit_test(test_missing_rows_rebuilt),
        cmocka_unit_test(test_no_journal_and_orphan),
        cmocka_unit_test(test_yaml_history),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_grown_grid),
        cmocka_unit_test(test_evals),
        cmocka_unit_test(test_merge_other_sweep),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_reader_does_not_block_resume),
        cmocka_unit_test(test_journal_bad_crc),
        cmocka_unit_test(test_file_and_journal_damaged),
        cmocka_unit_test(test_foreign_and_unknown_journal),
        cmocka_unit_test(test_program_attributes),
        cmocka_unit_test(test_no_hijack),
        cmocka_unit_test(test_move_aside),
        cmocka_unit_test(test_journal_damage_kept),
        cmocka_unit_test(test_file_modes),
        cmocka_unit_test(test_data_set_columns),
        cmocka_unit_test(test_file_before_disc_acc),
    };
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the test's own raw HDF5 calls */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
