/* What a run gives back: the run_result's life (init, curve points, free),
 * its flat serialisation for pipes and MPI messages, and the names of its
 * statuses and metric columns. */
#include "untangle/spec.h"

#include "../util/bytes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const run_metric_names[RUN_N_METRICS] = {
    [RUN_M_RECON] = "recon", [RUN_M_KL] = "kl", [RUN_M_ELBO] = "elbo",
    [RUN_M_TC] = "tc", [RUN_M_MI] = "mi", [RUN_M_DWKL] = "dwkl", [RUN_M_MIG] = "mig",
    [RUN_M_MIG_HIST] = "mig_hist", [RUN_M_GAUSSIAN_TC] = "gaussian_tc",
    [RUN_M_SWAP_ACC] = "swap_acc", [RUN_M_LOSS] = "loss", [RUN_M_CHUNK_MIG] = "chunk_mig",
    [RUN_M_EVAL_IMAGES] = "eval_images", [RUN_M_BETA_VAE] = "beta_vae_score",
    [RUN_M_FACTOR_VAE] = "factor_vae_score", [RUN_M_DCI_D] = "dci_disentanglement",
    [RUN_M_DCI_C] = "dci_completeness", [RUN_M_DCI_I] = "dci_informativeness",
    [RUN_M_SAP] = "sap", [RUN_M_MODULARITY] = "modularity",
    [RUN_M_EXPLICITNESS] = "explicitness", [RUN_M_GWC] = "gaussian_wasserstein_corr_norm",
    [RUN_M_MI_SCORE] = "mutual_info_score", [RUN_M_DISC_ACC] = "disc_acc",
};

const char *const run_metric_units[RUN_N_METRICS] = {
    [RUN_M_RECON] = "nats / image", [RUN_M_KL] = "nats / image", [RUN_M_ELBO] = "nats / image",
    [RUN_M_TC] = "nats", [RUN_M_MI] = "nats", [RUN_M_DWKL] = "nats", [RUN_M_MIG] = "",
    [RUN_M_MIG_HIST] = "", [RUN_M_GAUSSIAN_TC] = "nats", [RUN_M_SWAP_ACC] = "",
    [RUN_M_LOSS] = "nats / image", [RUN_M_CHUNK_MIG] = "", [RUN_M_EVAL_IMAGES] = "images",
    [RUN_M_BETA_VAE] = "", [RUN_M_FACTOR_VAE] = "", [RUN_M_DCI_D] = "", [RUN_M_DCI_C] = "",
    [RUN_M_DCI_I] = "", [RUN_M_SAP] = "", [RUN_M_MODULARITY] = "", [RUN_M_EXPLICITNESS] = "",
    [RUN_M_GWC] = "", [RUN_M_MI_SCORE] = "nats", [RUN_M_DISC_ACC] = "",
};

enum { RESULT_OLD_FACTORS = 5 }; /* dSprites' factors: those of UNT3 and UNTR */

const char *run_status_name(int status)
{
    static const char *const names[] = {"none", "ok", "failed", "diverged", "timeout",
                                        "interrupted"};
    return status >= 0 && status <= RUN_INTERRUPTED ? names[status] : "none";
}

void run_result_init(run_result *r)
{
    memset(r, 0, sizeof *r);
    /* the default data set's (dSprites') factors until an evaluation says */
    r->n_factors = RESULT_OLD_FACTORS;
    for (int i = 0; i < RUN_N_METRICS; i++)
        r->metric[i] = NAN;
    for (int k = 0; k < RUN_MAX_FACTORS; k++)
        r->mig_factor[k] = r->swap_factor[k] = r->chunk_factor[k] = NAN;
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

/* ---- serialisation: a flat buffer between same-architecture peers ---------- */

/* "UNT5": RUN_N_METRICS metrics (with disc_acc), the number of factors K,
 * then K values per per-factor array (and mi (n_units, K)). "UNT4" (the same
 * with RUN_N_METRICS_V4 metrics, before disc_acc), "UNT3" (RUN_N_METRICS_V4
 * metrics, five factors, dSprites') and "UNTR" (the first format,
 * RUN_N_METRICS_V1 metrics, no chunk gaps) are still read, the metrics they
 * lack NaN: journals of earlier files hold them. */
#define RESULT_MAGIC 0x554e5435u
#define RESULT_MAGIC_V4 0x554e5434u
#define RESULT_MAGIC_V3 0x554e5433u
#define RESULT_MAGIC_V1 0x554e5452u

int run_result_pack(const run_result *r, uint8_t **out, size_t *len, err *e)
{
    bytes b = {0};
    uint32_t magic = RESULT_MAGIC;
    bytes_put(&b, &magic, sizeof magic);
    bytes_put(&b, &r->status, sizeof r->status);
    bytes_put(&b, r->error, sizeof r->error);
    bytes_put(&b, &r->steps, sizeof r->steps);
    bytes_put(&b, &r->wall_s, sizeof(double) * 4); /* wall_s, train_s, eval_s, imgs_per_s */
    bytes_put(&b, r->metric, sizeof r->metric);
    const int K = r->n_factors;
    bytes_put(&b, &K, sizeof K);
    bytes_put(&b, &r->n_units, sizeof r->n_units);
    if (r->n_units > 0)
        bytes_put(&b, r->mi, sizeof(float) * (size_t)r->n_units * (size_t)K);
    bytes_put(&b, r->mig_factor, sizeof(double) * (size_t)K);
    bytes_put(&b, r->swap_factor, sizeof(double) * (size_t)K);
    bytes_put(&b, r->chunk_factor, sizeof(double) * (size_t)K);
    int th = r->traversal ? r->trav_h : 0, tw = r->traversal ? r->trav_w : 0;
    bytes_put(&b, &th, sizeof th);
    bytes_put(&b, &tw, sizeof tw);
    if (th > 0)
        bytes_put(&b, r->traversal, (size_t)th * tw);
    bytes_put(&b, &r->n_curve, sizeof r->n_curve);
    if (r->n_curve)
        bytes_put(&b, r->curve, sizeof *r->curve * r->n_curve);
    if (b.fail) {
        bytes_free(&b);
        return err_set(e, ERR_NOMEM, "out of memory packing a run result");
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int run_result_unpack(run_result *r, const uint8_t *p, size_t len, err *e)
{
    cursor in = {p, len, 0, 0};
    uint32_t magic = 0;
    cursor_get(&in, &magic, sizeof magic);
    if (in.fail || (magic != RESULT_MAGIC && magic != RESULT_MAGIC_V4 &&
                    magic != RESULT_MAGIC_V3 && magic != RESULT_MAGIC_V1))
        return err_set(e, ERR_INTERNAL, "run result message: bad magic");
    const int v1 = magic == RESULT_MAGIC_V1;
    const int n_metrics = v1 ? RUN_N_METRICS_V1 : magic == RESULT_MAGIC ? RUN_N_METRICS
                                                                         : RUN_N_METRICS_V4;
    run_result_free(r);
    cursor_get(&in, &r->status, sizeof r->status);
    cursor_get(&in, r->error, sizeof r->error);
    r->error[sizeof r->error - 1] = '\0';
    cursor_get(&in, &r->steps, sizeof r->steps);
    cursor_get(&in, &r->wall_s, sizeof(double) * 4);
    cursor_get(&in, r->metric, sizeof(double) * (size_t)n_metrics);
    int K = RESULT_OLD_FACTORS;
    if (magic == RESULT_MAGIC || magic == RESULT_MAGIC_V4)
        cursor_get(&in, &K, sizeof K);
    if (!in.fail && (K < 0 || K > RUN_MAX_FACTORS))
        in.fail = 1;
    r->n_factors = in.fail ? 0 : K;
    cursor_get(&in, &r->n_units, sizeof r->n_units);
    if (!in.fail && (r->n_units < 0 || r->n_units > 100000))
        in.fail = 1;
    if (!in.fail && r->n_units > 0) {
        r->mi = malloc(sizeof(float) * (size_t)r->n_units * (size_t)K);
        if (!r->mi)
            in.fail = 1;
        else
            cursor_get(&in, r->mi, sizeof(float) * (size_t)r->n_units * (size_t)K);
    }
    if (!in.fail) {
        cursor_get(&in, r->mig_factor, sizeof(double) * (size_t)K);
        cursor_get(&in, r->swap_factor, sizeof(double) * (size_t)K);
        if (!v1)
            cursor_get(&in, r->chunk_factor, sizeof(double) * (size_t)K);
    }
    cursor_get(&in, &r->trav_h, sizeof r->trav_h);
    cursor_get(&in, &r->trav_w, sizeof r->trav_w);
    if (!in.fail && (r->trav_h < 0 || r->trav_w < 0 || (size_t)r->trav_h * r->trav_w > len))
        in.fail = 1;
    if (!in.fail && r->trav_h > 0) {
        r->traversal = malloc((size_t)r->trav_h * r->trav_w);
        if (!r->traversal)
            in.fail = 1;
        else
            cursor_get(&in, r->traversal, (size_t)r->trav_h * r->trav_w);
    }
    size_t nc = 0;
    cursor_get(&in, &nc, sizeof nc);
    if (!in.fail && nc > len / sizeof *r->curve)
        in.fail = 1;
    if (!in.fail && nc) {
        r->curve = malloc(sizeof *r->curve * nc);
        if (!r->curve)
            in.fail = 1;
        else {
            cursor_get(&in, r->curve, sizeof *r->curve * nc);
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
