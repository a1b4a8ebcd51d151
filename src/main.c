/* untangle: the command line (docs/architecture.md section 2). */
#include "untangle/config.h"
#include "untangle/data.h"
#include "untangle/err.h"
#include "untangle/model.h"
#include "untangle/nn.h"
#include "untangle/results.h"
#include "untangle/run.h"
#include "untangle/sweep.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static const char usage_main[] =
    "usage: untangle COMMAND [ARGS]\n"
    "\n"
    "Hyperparameter sweeps of disentangled representation learning models.\n"
    "\n"
    "commands:\n"
    "  sweep     run a sweep: SWEEP.yaml -o RESULTS.h5 [--resume | --restart] ...\n"
    "  list      show the expanded grid of a sweep file and its size\n"
    "  train     train one run: SWEEP.yaml --index I, or --set key=value ... [--json]\n"
    "  merge     merge the shard files of one sweep: OUT.h5 IN1.h5 IN2.h5 ...\n"
    "  eval      recompute the metrics of saved models: RESULTS.h5 [--runs LIST] [--set k=v]\n"
    "  status    where a results file stands, also while a sweep writes it: RESULTS.h5\n"
    "  dsprites  write the built-in dSprites set: -o FILE.h5 [--image-size 64|32]\n"
    "  shapes3d  write a file of the 3dshapes layout (tests): -o FILE.h5 [--sizes ...]\n"
    "\n"
    "untangle COMMAND --help shows a command's options; untangle --version the version.\n";

static const char usage_train[] =
    "usage: untangle train SWEEP.yaml --index I [--set key=value ...] [--json] [--threads N]\n"
    "       untangle train --set key=value [--set key=value ...] [--json] [--threads N]\n"
    "\n"
    "Train and evaluate one run: run I of a sweep file (as `untangle list` numbers\n"
    "them), or the run the --set keys describe (applied after the sweep's run when\n"
    "both are given). Keys are those of a sweep file (model, beta,\n"
    "latent_dim, arch, steps, batch_size, lr, image_size, seed, ...). Progress goes\n"
    "to stderr every log_every steps; --json prints one flat JSON object with the\n"
    "run's status, figures and metrics on stdout at the end.\n"
    "\n"
    "  --set key=value   set a configuration key (repeatable)\n"
    "  --json            print the result as JSON on stdout\n"
    "  --threads N       threads of the run (default: the cores available); the\n"
    "                    numbers are the same bit for bit for any N\n"
    "  --index I         the run of SWEEP.yaml to train\n"
    "  --no-eval         skip the metrics after training\n"
    "\n"
    "keys:\n";

static const char usage_dsprites[] =
    "usage: untangle dsprites -o FILE.h5 [--image-size 64|32] [--force]\n"
    "\n"
    "Write the built-in dSprites set (737,280 images) in the official HDF5 layout:\n"
    "/imgs (N,S,S) uint8, /latents/classes (N,6) int64, /latents/values (N,6) float64.\n"
    "An existing FILE is kept unless --force. The progress line is drawn only on a\n"
    "terminal.\n";

static const char usage_shapes3d[] =
    "usage: untangle shapes3d -o FILE.h5 [--sizes F,W,O,S,H,R] [--sparse] [--force]\n"
    "\n"
    "Write a file of DeepMind's 3dshapes layout: /images (N,64,64,3) uint8, /labels (N,6)\n"
    "float64 in product order, with F floor hues, W wall hues, O object hues, S scales,\n"
    "H shapes and R orientations (default 10,10,10,8,4,15: the official sizes, N =\n"
    "480,000). The images are drawn from the factors (not DeepMind's renders): a file for\n"
    "tests and trials; the real data is 3dshapes.h5 from\n"
    "https://github.com/deepmind/3d-shapes. --sparse leaves /images unwritten (a file of\n"
    "any size that takes no disk; its images read as black). An existing FILE is kept\n"
    "unless --force.\n";

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "untangle %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(untangle %s --help shows the options)\n", cmd);
    return 1;
}

/* ---- train --------------------------------------------------------------------- */

/* A numeric option's value: a finite number in [min, max], an integer when
 * integer is set (1e3 is one, 2.7 is not). Prints the error (with the range)
 * and returns -1 otherwise. */
static int parse_number(const char *cmd, const char *opt, const char *text, double min,
                        double max, int integer, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    int ok = end != text && !*end && errno == 0 && isfinite(v) && v >= min && v <= max &&
             (!integer || v == floor(v));
    if (!ok) {
        fprintf(stderr, "untangle %s: %s: '%s' is not %s in %g..%g\n", cmd, opt, text,
                integer ? "an integer" : "a number", min, max);
        return -1;
    }
    *out = v;
    return 0;
}

/* The numeric options of `untangle sweep` and their ranges. */
typedef struct number_option {
    const char *name;
    double min, max;
    int integer;
} number_option;

static const number_option sweep_numbers[] = {
    {"--retries", 0, 1000, 1},     {"--threads", 1, 4096, 1},     {"--jobs", 1, 4096, 1},
    {"--max-runs", 1, 1e9, 1},     {"--run-timeout", 0, 1e9, 0},
    {"--deadline", 0, 1e9, 0},     {"--checkpoint-every", 0, 1e9, 0},
    {"--min-start", 0, 1e9, 0},    {"--stop-grace", 0, 1e6, 0},
};

/* Store v into the sweep option called name. */
static void set_sweep_number(sweep_options *o, const char *name, double v)
{
    if (strcmp(name, "--retries") == 0)
        o->retries = (int)v;
    else if (strcmp(name, "--threads") == 0)
        o->threads = (int)v;
    else if (strcmp(name, "--jobs") == 0)
        o->jobs = (int)v;
    else if (strcmp(name, "--max-runs") == 0)
        o->max_runs = (size_t)v;
    else if (strcmp(name, "--run-timeout") == 0)
        o->run_timeout = v;
    else if (strcmp(name, "--deadline") == 0)
        o->deadline = v;
    else if (strcmp(name, "--checkpoint-every") == 0)
        o->checkpoint_every = v;
    else if (strcmp(name, "--min-start") == 0)
        o->min_start = v;
    else
        o->stop_grace = v;
}

static void train_progress(void *ctx, long step, long steps, int n, const char *const *names,
                           const double *terms, double ips)
{
    (void)ctx;
    fprintf(stderr, "step %6ld/%ld", step, steps);
    for (int i = 0; i < n; i++)
        if (isfinite(terms[i]))
            fprintf(stderr, "  %s %.4g", names[i], terms[i]);
    fprintf(stderr, "  %.0f img/s\n", ips);
}

static void train_note(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "%s\n", msg);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.17g", v);
    else
        fputs("null", f);
}

static void print_json(FILE *f, const run_config *c, const run_result *r)
{
    char id[17], buf[1200];
    run_config_id(c, id);
    fprintf(f, "{\"run_id\": \"%s\"", id);
    for (size_t i = 0; i < run_n_keys; i++) {
        const run_key *k = &run_keys[i];
        run_config_format(c, k, buf, sizeof buf);
        fprintf(f, ", \"%s\": ", k->name);
        if (!run_key_applies(c, k) || (k->type == RUN_KEY_INT && buf[0] == '-'))
            fputs("null", f); /* does not apply, or unset (-1) */
        else if (k->type == RUN_KEY_INT)
            fputs(buf, f);
        else if (k->type == RUN_KEY_REAL)
            json_number(f, *(const double *)((const char *)c + k->offset));
        else
            json_string(f, buf);
    }
    fprintf(f, ", \"status\": \"%s\", \"error\": ", run_status_name(r->status));
    json_string(f, r->error);
    fprintf(f, ", \"steps_done\": %ld", r->steps);
    const char *const timing[] = {"wall_s", "train_s", "eval_s", "imgs_per_s"};
    const double tv[] = {r->wall_s, r->train_s, r->eval_s, r->imgs_per_s};
    for (int i = 0; i < 4; i++) {
        fprintf(f, ", \"%s\": ", timing[i]);
        json_number(f, tv[i]);
    }
    for (int i = 0; i < RUN_N_METRICS; i++) {
        fprintf(f, ", \"%s\": ", run_metric_names[i]);
        json_number(f, r->metric[i]);
    }
    /* the per-factor figures under the names of c's data set's factors */
    data_factor_desc fd;
    err e;
    if (data_describe_name(c->name, &fd, &e) < 0)
        data_describe_name("dsprites", &fd, &e);
    for (int k = 0; k < fd.K; k++) {
        fprintf(f, ", \"mig_%s\": ", fd.names[k]);
        json_number(f, r->mig_factor[k]);
    }
    for (int k = 0; k < fd.K; k++) {
        fprintf(f, ", \"swap_acc_%s\": ", fd.names[k]);
        json_number(f, r->swap_factor[k]);
    }
    for (int k = 0; k < fd.K; k++) {
        fprintf(f, ", \"chunk_mig_%s\": ", fd.names[k]);
        json_number(f, r->chunk_factor[k]);
    }
    fputs("}\n", f);
}

static int cmd_train(int argc, char **argv)
{
    run_config c;
    run_config_defaults(&c);
    int json = 0, eval = 1, threads = 0;
    const char *yaml = NULL;
    long index = -1;
    err e;
    err_clear(&e);
    /* The sweep's run first, so that --set overrides it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0 || strcmp(argv[i], "--threads") == 0 ||
            strcmp(argv[i], "--index") == 0)
            i++;
        else if (argv[i][0] != '-' && !yaml)
            yaml = argv[i];
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--index") == 0 && i + 1 < argc) {
            char *end;
            index = strtol(argv[i + 1], &end, 10);
            if (*end || index < 0)
                return usage_error("train", "--index: '%s' is not a run index", argv[i + 1]);
        }
    if (yaml || index >= 0) {
        if (!yaml || index < 0)
            return usage_error("train", "%s", "a sweep file and --index I go together");
        config_sweep *s = NULL;
        if (config_load(&s, yaml, 0, &e) < 0) {
            fprintf(stderr, "untangle train: %s\n", e.msg);
            return 1;
        }
        if ((size_t)index >= s->n_runs) {
            fprintf(stderr, "untangle train: --index %ld: %s has %zu runs (0..%zu)\n", index,
                    yaml, s->n_runs, s->n_runs - 1);
            config_free(s);
            return 1;
        }
        c = s->runs[index];
        config_free(s);
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a == yaml) {
            continue;
        } else if (strcmp(a, "--index") == 0) {
            i++;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_train, stdout);
            for (size_t k = 0; k < run_n_keys; k++)
                printf("  %-13s %-6s %s\n", run_keys[k].name, run_keys[k].section,
                       run_keys[k].help);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--no-eval") == 0) {
            eval = 0;
        } else if (strcmp(a, "--threads") == 0 && i + 1 < argc) {
            double n;
            if (parse_number("train", a, argv[++i], 1, 4096, 1, &n) < 0)
                return 1;
            threads = (int)n;
        } else if (strcmp(a, "--set") == 0 && i + 1 < argc) {
            const char *kv = argv[++i];
            const char *eq = strchr(kv, '=');
            if (!eq)
                return usage_error("train", "--set: expected key=value, got '%s'", kv);
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
            if (run_config_set(&c, key, eq + 1, &e) < 0) {
                fprintf(stderr, "untangle train: --set %s: %s\n", kv, e.msg);
                return 1;
            }
        } else {
            return usage_error("train", "unknown argument '%s'", a);
        }
    }
    if (model_resolve(&c, &e) < 0) {
        fprintf(stderr, "untangle train: %s\n", e.msg);
        return 1;
    }
    nn_set_threads(threads > 0 ? threads : nn_cores());
    /* A data file whose image size nobody set: the file says it. */
    data_source *data = NULL;
    if (c.path[0] && !(c.set & 1ull << (size_t)(run_key_find("image_size") - run_keys))) {
        if (data_open(&data, c.name, c.path, 0, &e) < 0) {
            fprintf(stderr, "untangle train: %s\n", e.msg);
            return 1;
        }
        c.image_size = data_size(data);
    }
    run_hooks hooks = {.progress = train_progress, .note = train_note};
    run_result r;
    run_result_init(&r);
    int rc = run_execute(&c, data, eval, &hooks, &r, &e);
    data_close(data);
    if (rc < 0 && e.code == ERR_INPUT) {
        fprintf(stderr, "untangle train: %s\n", e.msg);
        run_result_free(&r);
        return 1;
    }
    fprintf(stderr, "%s: %ld steps in %.1f s (%.0f img/s)", run_status_name(r.status), r.steps,
            r.train_s, r.imgs_per_s);
    for (int i = 0; i < RUN_N_METRICS; i++)
        if (isfinite(r.metric[i]))
            fprintf(stderr, "  %s %.4g", run_metric_names[i], r.metric[i]);
    fputc('\n', stderr);
    if (r.error[0])
        fprintf(stderr, "error: %s\n", r.error);
    if (json)
        print_json(stdout, &c, &r);
    int status = r.status;
    run_result_free(&r);
    return status == RUN_OK ? 0 : 2;
}

/* ---- sweep, list, merge ----------------------------------------------------------- */

static const char usage_sweep[] =
    "usage: untangle sweep SWEEP.yaml -o RESULTS.h5 [--resume | --restart] [--dry-run]\n"
    "                      [--shard I/N] [--retries K] [--retry-diverged] [--run-timeout SEC]\n"
    "                      [--deadline SEC]\n"
    "                      [--jobs N] [--threads N] [--max-runs N] [--no-eval]\n"
    "                      [--checkpoint-every SEC]\n"
    "                      [--min-start SEC] [--stop-grace SEC] [--no-save-models]\n"
    "\n"
    "Run every run of the sweep file and write one results file. Under\n"
    "`mpirun -np P` rank 0 schedules and writes, ranks 1..P-1 train; as a single\n"
    "process it runs --jobs runs at a time (default: one per core). Same command,\n"
    "same numbers, bit for bit, whatever the launch, --jobs or --threads.\n"
    "\n"
    "  -o RESULTS.h5     the results file (HDF5; a journal RESULTS.h5.journal sits beside it)\n"
    "  --resume          continue RESULTS.h5: run what has no ok row (starts it when missing)\n"
    "  --restart         move an existing RESULTS.h5 aside (.bak-TIME) and start afresh\n"
    "  --dry-run         print the expanded grid and exit; with --resume and an existing\n"
    "                    file, only the runs that would run (nothing is written)\n"
    "  --shard I/N       run only the indices i with i % N == I (job arrays; see merge)\n"
    "  --retries K       retry failed (crashed) and timed-out runs up to K times; a retry\n"
    "                    reruns the same configuration and seed, from its checkpoint\n"
    "  --retry-diverged  retry diverged runs too: a run's numbers depend only on its\n"
    "                    configuration, so a diverged run diverges again unless the\n"
    "                    binary changed\n"
    "  --run-timeout SEC a run taking longer is stopped (status timeout)\n"
    "  --deadline SEC    end the sweep SEC seconds after its start: running runs are\n"
    "                    checkpointed and stopped then (status interrupted, no retry used)\n"
    "  --min-start SEC   start no run with less than SEC left before --deadline (default 120)\n"
    "  --checkpoint-every SEC  save each running run's whole training state every SEC\n"
    "                    seconds of training (default 600; 0: no checkpoints) and when it\n"
    "                    is stopped; a stopped, crashed or requeued run continues from it,\n"
    "                    with the same numbers as a run done in one go\n"
    "  --stop-grace SEC  a run asked to stop has SEC seconds to checkpoint (default 30)\n"
    "  --no-save-models  do not keep the final parameters of ok runs\n"
    "  --jobs N          single process: runs at a time, each in its own process\n"
    "                    (default: the cores available / --threads, at most the runs)\n"
    "  --threads N       threads per run (default: under mpirun the node's cores / its\n"
    "                    ranks; single process, the cores available / --jobs)\n"
    "  --max-runs N      refuse grids larger than N runs (default 100000)\n"
    "  --no-eval         skip the metrics (scheduler benchmarks)\n"
    "\n"
    "Checkpoints and saved models live in RESULTS.h5.runs/ (<run_id>.ckpt while a run\n"
    "trains, <run_id>.model for an ok run, read by `untangle eval`).\n"
    "SIGUSR1 or SIGINT drain the sweep: no new runs, running ones finish (until\n"
    "--deadline); SIGTERM or a second SIGINT also checkpoint and stop the running\n"
    "runs. Rows are written, exit 3; --resume continues.\n"
    "Exit codes: 0 all runs ok, 1 usage or input error (nothing written), 2 some runs\n"
    "failed, 3 interrupted (resumable), 4 cannot write the results (out of space,\n"
    "quota, I/O error, in use: rows written are kept; --resume with space again).\n";

static int cmd_sweep(int argc, char **argv)
{
    sweep_options o;
    sweep_options_defaults(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        double v = 0;
        const number_option *number = NULL;
        for (size_t k = 0; k < sizeof sweep_numbers / sizeof sweep_numbers[0]; k++)
            if (strcmp(a, sweep_numbers[k].name) == 0)
                number = &sweep_numbers[k];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_sweep, stdout);
            return 0;
        } else if (strcmp(a, "-o") == 0 && more) {
            o.out_path = argv[++i];
        } else if (strcmp(a, "--resume") == 0) {
            o.resume = 1;
        } else if (strcmp(a, "--restart") == 0) {
            o.restart = 1;
        } else if (strcmp(a, "--dry-run") == 0) {
            o.dry_run = 1;
        } else if (strcmp(a, "--no-eval") == 0) {
            o.no_eval = 1;
        } else if (strcmp(a, "--shard") == 0 && more) {
            int si, sn, used = 0;
            const char *t = argv[++i];
            if (sscanf(t, "%d/%d%n", &si, &sn, &used) != 2 || t[used] || sn < 1 || si < 0 ||
                si >= sn)
                return usage_error("sweep", "--shard: '%s' is not I/N with 0 <= I < N", t);
            o.shard_i = si;
            o.shard_n = sn;
        } else if (strcmp(a, "--retry-diverged") == 0) {
            o.retry_diverged = 1;
        } else if (strcmp(a, "--no-save-models") == 0) {
            o.save_models = 0;
        } else if (number && more) {
            if (parse_number("sweep", a, argv[++i], number->min, number->max, number->integer,
                             &v) < 0)
                return 1;
            set_sweep_number(&o, a, v);
        } else if (a[0] != '-' && !o.yaml_path) {
            o.yaml_path = a;
        } else {
            return usage_error("sweep", "unknown or incomplete argument '%s'", a);
        }
    }
    if (!o.yaml_path)
        return usage_error("sweep", "%s", "the sweep file is required");
    if (!o.out_path && !o.dry_run)
        return usage_error("sweep", "%s", "-o RESULTS.h5 is required");
    if (o.resume && o.restart)
        return usage_error("sweep", "%s", "--resume and --restart exclude each other");
    err e;
    err_clear(&e);
    int code = sweep_main(&o, &e);
    if (e.code)
        fprintf(stderr, "untangle sweep: %s\n", e.msg);
    return code;
}

static int cmd_list(int argc, char **argv)
{
    const char *yaml = NULL;
    double max_runs = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            puts("usage: untangle list SWEEP.yaml [--max-runs N]\n\n"
                 "Print the expanded grid (index, run_id, the keys that vary) and its size:\n"
                 "exactly the runs `untangle sweep` runs.");
            return 0;
        } else if (strcmp(argv[i], "--max-runs") == 0 && i + 1 < argc) {
            if (parse_number("list", "--max-runs", argv[++i], 1, 1e9, 1, &max_runs) < 0)
                return 1;
        } else if (argv[i][0] != '-' && !yaml) {
            yaml = argv[i];
        } else {
            return usage_error("list", "unknown argument '%s'", argv[i]);
        }
    }
    if (!yaml)
        return usage_error("list", "%s", "the sweep file is required");
    config_sweep *s = NULL;
    err e;
    err_clear(&e);
    if (config_load(&s, yaml, (size_t)max_runs, &e) < 0) {
        fprintf(stderr, "untangle list: %s\n", e.msg);
        return 1;
    }
    int rc = config_write_list(s, stdout);
    config_free(s);
    return rc < 0 ? 1 : 0;
}

/* The run ids with an ok row in the results file path, sorted (malloc'd). */
static int ok_run_ids(const char *path, char (**ids)[17], size_t *n, err *e)
{
    results_reader *rd = NULL;
    int rc = results_reader_open(&rd, path, e);
    size_t cnt = rc < 0 ? 0 : results_reader_count(rd), k = 0;
    char(*out)[17] = rc < 0 ? NULL : calloc(cnt ? cnt : 1, sizeof *out);
    run_result r;
    run_result_init(&r);
    if (rc == 0 && !out)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < cnt && rc == 0; i++) {
        results_row row;
        run_config c;
        if ((rc = results_reader_row(rd, i, &row, &c, &r, e)) == 0 && r.status == RUN_OK)
            memcpy(out[k++], row.run_id, sizeof row.run_id);
    }
    run_result_free(&r);
    results_reader_close(rd);
    if (rc < 0) {
        free(out);
        return rc;
    }
    qsort(out, k, sizeof *out, (int (*)(const void *, const void *))strcmp);
    size_t u = 0; /* distinct */
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(out[u - 1], out[i]) != 0)
            memmove(out[u++], out[i], sizeof *out);
    *ids = out;
    *n = u;
    return 0;
}

/* --expect N: the grid is the newest sweep YAML of the merged file with N
 * runs; its run ids without an ok row are listed with their index in that
 * grid. Without such a YAML only the count is known. The number missing. */
static size_t merge_missing(const char *out, long expect)
{
    err e;
    err_clear(&e);
    char(*ids)[17] = NULL;
    size_t n_ok = 0, nm = 0;
    if (ok_run_ids(out, &ids, &n_ok, &e) < 0) {
        fprintf(stderr, "untangle merge: %s\n", e.msg);
        return 1;
    }
    results_reader *rd = NULL;
    config_sweep *grid = NULL;
    if (results_reader_open(&rd, out, &e) == 0) {
        for (size_t i = results_reader_n_sweeps(rd); i-- > 0 && !grid;) {
            const char *y = results_reader_sweep(rd, i)->sweep_yaml;
            if (config_load_text(&grid, y, strlen(y), out, 0, &e) == 0 &&
                grid->n_runs != (size_t)expect) {
                config_free(grid);
                grid = NULL;
            }
        }
        results_reader_close(rd);
    }
    if (grid) {
        for (size_t i = 0; i < grid->n_runs; i++)
            if (!bsearch(grid->run_ids[i], ids, n_ok, sizeof *ids,
                         (int (*)(const void *, const void *))strcmp)) {
                if (nm++ == 0)
                    fprintf(stderr, "untangle merge: runs missing (index run_id):");
                fprintf(stderr, " %zu %s", i, grid->run_ids[i]);
            }
        if (nm)
            fprintf(stderr, "\nuntangle merge: %zu of %ld runs missing\n", nm, expect);
    } else if (n_ok < (size_t)expect) {
        nm = (size_t)expect - n_ok;
        fprintf(stderr, "untangle merge: %zu of %ld runs missing (%zu run ids have an ok row; "
                "no sweep YAML in the file has %ld runs, so which cannot be named)\n",
                nm, expect, n_ok, expect);
    }
    config_free(grid);
    free(ids);
    return nm;
}

static int cmd_merge(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        puts("usage: untangle merge OUT.h5 IN1.h5 IN2.h5 ... [--expect N]\n\n"
             "Merge the shard files of one sweep (untangle sweep --shard I/N) into one\n"
             "results file. Rows are paired by run id and attempt, never by index (indices\n"
             "move when a grid grows): every attempt of every input is kept once, and the\n"
             "re-evaluations (untangle eval) too. With --expect N (the sweep's size) the\n"
             "runs of the grid without an ok row are listed, with their index and run id.");
        return 0;
    }
    const char *out = NULL;
    const char **in = calloc((size_t)argc, sizeof *in);
    size_t n_in = 0;
    double expect = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc) {
            if (parse_number("merge", "--expect", argv[++i], 1, 1e9, 1, &expect) < 0) {
                free(in);
                return 1;
            }
        } else if (!out) {
            out = argv[i];
        } else {
            in[n_in++] = argv[i];
        }
    }
    if (!out || n_in == 0) {
        free(in);
        return usage_error("merge", "%s", "OUT.h5 and at least one input are required");
    }
    err e;
    err_clear(&e);
    int rc = results_merge(out, in, n_in, &e);
    free(in);
    if (rc < 0) {
        fprintf(stderr, "untangle merge: %s\n", e.msg);
        return 1;
    }
    printf("untangle merge: wrote %s from %zu file%s\n", out, n_in, n_in == 1 ? "" : "s");
    return expect > 0 && merge_missing(out, (long)expect) ? 2 : 0;
}

/* ---- eval ---------------------------------------------------------------------- */

static const char usage_eval[] =
    "usage: untangle eval RESULTS.h5 [--runs LIST] [--set key=value ...] [--codes CODES.h5]\n"
    "                     [--jobs N] [--threads N]\n"
    "\n"
    "Evaluate the saved models (RESULTS.h5.runs/<run_id>.model) of the file's ok runs\n"
    "again, without training, and store the metrics as re-evaluations: rows of\n"
    "/evals numbered 1, 2, ... per run (the training's own evaluation stays in /runs;\n"
    "load_runs shows the latest). Under `mpirun -np P` rank 0 schedules and writes,\n"
    "ranks 1..P-1 evaluate, as in a sweep. With the training's eval keys the\n"
    "metrics equal the training's bit for bit.\n"
    "\n"
    "  --runs LIST       only these runs: run ids or indices, comma-separated\n"
    "  --set key=value   change an eval key (images, samples, pairs, encode, hist_images,\n"
    "                    unsup_images); repeatable\n"
    "  --codes CODES.h5  also write each run's encoded data set (posterior means and\n"
    "                    log-variances of every image in canonical factor order, the\n"
    "                    factor values and sizes) into CODES.h5; implies encode=full\n"
    "  --jobs N          single process: runs evaluated at a time (default: the cores)\n"
    "  --threads N       threads per run (default: as untangle sweep)\n"
    "\n"
    "A run whose saved model is missing or damaged gets a one-line message and no row.\n"
    "Exit codes: 0 all evaluated, 1 usage or input error (nothing written), 2 some\n"
    "runs not evaluated, 3 interrupted (run again for the rest).\n";

static int cmd_eval(int argc, char **argv)
{
    sweep_options o;
    sweep_options_defaults(&o);
    o.eval = 1;
    const char **set = calloc((size_t)argc, sizeof *set);
    size_t n_set = 0;
    int rc = -1;
    for (int i = 1; i < argc && rc == -1; i++) {
        const char *a = argv[i];
        double v = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_eval, stdout);
            rc = 0;
        } else if (strcmp(a, "--runs") == 0 && i + 1 < argc) {
            o.eval_runs = argv[++i];
        } else if (strcmp(a, "--codes") == 0 && i + 1 < argc) {
            o.eval_codes = argv[++i];
        } else if (strcmp(a, "--set") == 0 && i + 1 < argc) {
            set[n_set++] = argv[++i];
        } else if (strcmp(a, "--threads") == 0 && i + 1 < argc) {
            if (parse_number("eval", a, argv[++i], 1, 4096, 1, &v) < 0)
                rc = 1;
            o.threads = (int)v;
        } else if (strcmp(a, "--jobs") == 0 && i + 1 < argc) {
            if (parse_number("eval", a, argv[++i], 1, 4096, 1, &v) < 0)
                rc = 1;
            o.jobs = (int)v;
        } else if (a[0] != '-' && !o.out_path) {
            o.out_path = a;
        } else {
            rc = usage_error("eval", "unknown or incomplete argument '%s'", a);
        }
    }
    if (rc == -1 && !o.out_path)
        rc = usage_error("eval", "%s", "the results file is required");
    if (rc == -1) {
        o.eval_set = set;
        o.n_eval_set = n_set;
        err e;
        err_clear(&e);
        rc = sweep_main(&o, &e);
        if (e.code)
            fprintf(stderr, "untangle eval: %s\n", e.msg);
    }
    free(set);
    return rc;
}

/* ---- status -------------------------------------------------------------------- */

static const char usage_status[] =
    "usage: untangle status RESULTS.h5 [SWEEP.yaml] [--json]\n"
    "\n"
    "Where a results file stands, also while a sweep is writing it (nothing is locked\n"
    "or changed): per method the runs that are ok, failed, diverged, timed out,\n"
    "interrupted (stopped; they run again on --resume), pending (no row yet) and\n"
    "running; each run in flight with its host, rank, step and latest losses (from\n"
    "RESULTS.h5.runs/<run_id>.progress); and the time left at the mean time of an ok\n"
    "run. The grid is SWEEP.yaml, or the latest sweep file stored in RESULTS.h5.\n"
    "--json prints one object: file, sweep, runs, writer_pid, methods (name -> counts),\n"
    "total (counts), in_flight (index, run_id, model, attempt, host, rank, step, steps,\n"
    "updated, losses: name -> value, null when not finite), eta_s (null when unknown);\n"
    "counts has ok, failed, diverged, timeout, interrupted, pending, running.\n";

static int cmd_status(int argc, char **argv)
{
    const char *path = NULL, *yaml = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_status, stdout);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else if (argv[i][0] != '-' && !yaml) {
            yaml = argv[i];
        } else {
            return usage_error("status", "unknown argument '%s'", argv[i]);
        }
    }
    if (!path)
        return usage_error("status", "%s", "the results file is required");
    err e;
    err_clear(&e);
    if (sweep_status(path, yaml, json, stdout, &e) < 0) {
        fprintf(stderr, "untangle status: %s\n", e.msg);
        return 1;
    }
    return 0;
}

/* ---- dsprites ------------------------------------------------------------------ */

/* A progress line that rewrites itself: on a terminal only (a log gets the
 * final line from cmd_dsprites). */
static void write_progress(size_t done, size_t total)
{
    fprintf(stderr, "\r%zu / %zu images", done, total);
    if (done == total)
        fputc('\n', stderr);
}

static int cmd_dsprites(int argc, char **argv)
{
    const char *out = NULL;
    int S = 64, force = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_dsprites, stdout);
            return 0;
        } else if (strcmp(argv[i], "--force") == 0) {
            force = 1;
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--image-size") == 0 && i + 1 < argc) {
            S = atoi(argv[++i]);
            if (S != 64 && S != 32)
                return usage_error("dsprites", "--image-size: '%s' is not 64 or 32", argv[i]);
        } else {
            return usage_error("dsprites", "unknown argument '%s'", argv[i]);
        }
    }
    if (!out)
        return usage_error("dsprites", "%s", "-o FILE.h5 is required");
    if (!force && access(out, F_OK) == 0) {
        fprintf(stderr, "untangle dsprites: %s exists; --force replaces it\n", out);
        return 1;
    }
    err e;
    err_clear(&e);
    if (data_write_file(out, S, isatty(STDERR_FILENO) ? write_progress : NULL, &e) < 0) {
        fprintf(stderr, "untangle dsprites: %s\n", e.msg);
        return 1;
    }
    fprintf(stderr, "untangle dsprites: wrote %s (%dx%d images)\n", out, S, S);
    return 0;
}

static int cmd_shapes3d(int argc, char **argv)
{
    const char *out = NULL;
    int sizes[6] = {10, 10, 10, 8, 4, 15}, sparse = 0, force = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_shapes3d, stdout);
            return 0;
        } else if (strcmp(argv[i], "--force") == 0) {
            force = 1;
        } else if (strcmp(argv[i], "--sparse") == 0) {
            sparse = 1;
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
            const char *p = argv[++i];
            for (int k = 0; k < 6; k++) {
                char *end;
                long v = strtol(p, &end, 10);
                if (end == p || v < 1 || v > 256 || (k < 5 ? *end != ',' : *end != '\0'))
                    return usage_error("shapes3d", "--sizes: '%s' is not six numbers 1..256",
                                       argv[i]);
                sizes[k] = (int)v;
                p = end + 1;
            }
        } else {
            return usage_error("shapes3d", "unknown argument '%s'", argv[i]);
        }
    }
    if (!out)
        return usage_error("shapes3d", "%s", "-o FILE.h5 is required");
    if (!force && access(out, F_OK) == 0) {
        fprintf(stderr, "untangle shapes3d: %s exists; --force replaces it\n", out);
        return 1;
    }
    err e;
    err_clear(&e);
    if (data_write_shapes3d(out, sizes, sparse, &e) < 0) {
        fprintf(stderr, "untangle shapes3d: %s\n", e.msg);
        return 1;
    }
    fprintf(stderr, "untangle shapes3d: wrote %s (%d x %d x %d x %d x %d x %d images%s)\n", out,
            sizes[0], sizes[1], sizes[2], sizes[3], sizes[4], sizes[5], sparse ? ", sparse" : "");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 1;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("untangle %s\n", UNTANGLE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "sweep") == 0)
        return cmd_sweep(argc - 1, argv + 1);
    if (strcmp(cmd, "list") == 0)
        return cmd_list(argc - 1, argv + 1);
    if (strcmp(cmd, "merge") == 0)
        return cmd_merge(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0)
        return cmd_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "dsprites") == 0)
        return cmd_dsprites(argc - 1, argv + 1);
    if (strcmp(cmd, "shapes3d") == 0)
        return cmd_shapes3d(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(argc - 1, argv + 1);
    fprintf(stderr, "untangle: unknown command '%s'\n\n%s", cmd, usage_main);
    return 1;
}
