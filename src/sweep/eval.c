/* eval.c: the plan of `untangle eval`: which runs of a results file are
 * evaluated again, with which configuration. The scheduling is the sweep's
 * own (sweep.c hands the plan's runs out like a sweep's, isolate.c's child
 * calls run_reevaluate on the run's saved model), and so is the writing:
 * each ok re-evaluation is a row of /evals with the next evaluation number
 * (results.h). The plan comes from the file's journal, read under the
 * writer's lock after the file was recovered like a resume.
 *
 * A run's configuration is that of its latest ok attempt; --set may change
 * only the eval keys (section "eval" of the key table), which decide what is
 * measured and never what was trained. */
#include "sweep_impl.h"

#include "untangle/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Apply o->eval_set to c: ERR_INPUT naming the key when it is not an eval key. */
static int apply_set(const sweep_options *o, run_config *c, err *e)
{
    for (size_t i = 0; i < o->n_eval_set; i++) {
        const char *kv = o->eval_set[i], *eq = strchr(kv, '=');
        char key[64];
        if (!eq)
            return err_set(e, ERR_INPUT, "--set: expected key=value, got '%s'", kv);
        snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
        const run_key *k = run_key_find(key);
        if (!k)
            return err_set(e, ERR_INPUT, "--set %s: unknown key '%s'", kv, key);
        if (strcmp(k->section, "eval") != 0)
            return err_set(e, ERR_INPUT,
                           "--set %s: '%s' is a %s key; a re-evaluation may change only the "
                           "eval keys (images, samples, pairs, encode, hist_images, "
                           "unsup_images): the model was trained with its own",
                           kv, key, k->section);
        if (run_config_set(c, key, eq + 1, e) < 0)
            return err_prefix(e, "--set ");
    }
    /* --codes writes the full set: it is what the run encodes */
    if (o->eval_codes) {
        if (strcmp(c->encode, "full") != 0 && (c->set >> (run_key_find("encode") - run_keys) & 1))
            return err_set(e, ERR_INPUT, "--codes needs encode=full (the codes of every image), "
                           "not --set encode=%s", c->encode);
        snprintf(c->encode, sizeof c->encode, "full");
    }
    return 0;
}

/* Whether attempt a is selected by o->eval_runs ("id,index,..."; NULL: all);
 * used[] marks the entries that matched. */
static int selected(const sweep_options *o, const results_attempt *a, int *used)
{
    if (!o->eval_runs)
        return 1;
    int hit = 0, k = 0;
    for (const char *p = o->eval_runs; *p; k++) {
        size_t n = strcspn(p, ",");
        char tok[32], *end;
        snprintf(tok, sizeof tok, "%.*s", (int)(n < 31 ? n : 31), p);
        long idx = strtol(tok, &end, 10);
        int match = strcmp(tok, a->run_id) == 0 || (*tok && !*end && idx == a->index);
        if (match && k < 64)
            used[k] = 1;
        hit |= match;
        p += n + (p[n] == ',');
    }
    return hit;
}

/* The first --runs entry that selected nothing: ERR_INPUT naming it. */
static int check_runs_used(const sweep_options *o, const int *used, err *e)
{
    int k = 0;
    for (const char *p = o->eval_runs; p && *p; k++) {
        size_t n = strcspn(p, ",");
        if (k < 64 && !used[k])
            return err_set(e, ERR_INPUT, "--runs: %.*s: %s has no ok run with that run id "
                           "or index", (int)n, p, o->out_path);
        p += n + (p[n] == ',');
    }
    return 0;
}

/* For each run id, the latest ok attempt (by attempt number): pick[i] = 1. */
static void latest_ok(const results_attempt *a, size_t na, const sweep_options *o, int *pick,
                      int *used)
{
    for (size_t i = 0; i < na; i++) {
        pick[i] = a[i].status == RUN_OK && selected(o, &a[i], used);
        for (size_t j = 0; j < na && pick[i]; j++)
            if (j != i && a[j].status == RUN_OK && strcmp(a[j].run_id, a[i].run_id) == 0 &&
                (a[j].attempt > a[i].attempt || (a[j].attempt == a[i].attempt && j > i)))
                pick[i] = 0;
    }
}

/* Run k of the plan from attempt i of f: configuration (resolved, --set
 * applied), id and origin. */
static int plan_run(const sweep_options *o, results *f, size_t i, config_sweep *s, size_t k,
                    sweep_eval_row *ev, err *e)
{
    results_row row;
    run_result r;
    run_result_init(&r);
    run_config *c = &s->runs[k];
    int rc = results_attempt_row(f, i, &row, c, &r, e);
    char id[17];
    if (rc == 0 && (rc = model_resolve(c, e)) < 0)
        err_prefix(e, "run %s: ", row.run_id);
    if (rc == 0) {
        run_config_id(c, id);
        if (strcmp(id, row.run_id) != 0)
            rc = err_set(e, ERR_INPUT, "run %s: its recorded configuration has run id %s "
                         "(written by another version of untangle?)", row.run_id, id);
    }
    if (rc == 0)
        rc = apply_set(o, c, e);
    memcpy(s->run_ids[k], row.run_id, sizeof s->run_ids[k]);
    ev[k] = (sweep_eval_row){row.index, row.attempt, r.metric[RUN_M_LOSS]};
    run_result_free(&r);
    return rc;
}

int sweep_eval_plan(const sweep_options *o, results **fp, config_sweep **sp,
                    sweep_eval_row **rows, err *e)
{
    results *f = NULL;
    config_sweep *s = NULL;
    sweep_eval_row *ev = NULL;
    int *pick = NULL, used[64] = {0};
    int rc = results_open(&f, o->out_path, NULL, e);
    if (rc < 0)
        return rc;
    if (results_recovery(f)[0])
        fprintf(stderr, "untangle: %s: %s\n", o->out_path, results_recovery(f));
    size_t na = 0, n = 0;
    const results_attempt *a = results_attempts(f, &na);
    if (!(pick = calloc(na ? na : 1, sizeof *pick)) || !(s = calloc(1, sizeof *s))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    latest_ok(a, na, o, pick, used);
    for (size_t i = 0; i < na; i++)
        n += (size_t)pick[i];
    if ((rc = check_runs_used(o, used, e)) < 0)
        goto done;
    if (n == 0) {
        rc = err_set(e, ERR_INPUT, "%s has no ok run to evaluate", o->out_path);
        goto done;
    }
    s->runs = calloc(n, sizeof *s->runs);
    s->run_ids = calloc(n, sizeof *s->run_ids);
    ev = calloc(n, sizeof *ev);
    if (!s->runs || !s->run_ids || !ev) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    snprintf(s->name, sizeof s->name, "%s", results_sweep_name(f));
    for (size_t i = 0; i < na && rc == 0; i++)
        if (pick[i])
            rc = plan_run(o, f, i, s, s->n_runs++, ev, e);
done:
    free(pick);
    if (rc < 0) {
        err ce;
        results_close(f, &ce);
        config_free(s);
        free(ev);
        return rc;
    }
    *fp = f;
    *sp = s;
    *rows = ev;
    return 0;
}
