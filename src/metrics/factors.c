/* metrics/factors.c: what the estimators need to know of a data set's
 * factors, for any number K of discrete factors (their sizes come from the
 * data module, never a constant here): the full factor grid in canonical
 * order, the MIG mean over chosen factors, the accuracy of a categorical
 * unit against a factor under the best relabelling, and the chunk-level
 * scores of codes made of one chunk of dims per factor (DSD). */
#include "untangle/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t metrics_grid_count(int K, const int *sizes)
{
    if (K < 1)
        return 0;
    size_t n = 1;
    for (int k = 0; k < K; k++)
        n *= (size_t)(sizes[k] > 0 ? sizes[k] : 0);
    return n;
}

void metrics_grid_factors(int K, const int *sizes, int *f)
{
    const size_t n = metrics_grid_count(K, sizes);
    for (size_t i = 0; i < n; i++) {
        size_t rest = i;
        for (int k = K - 1; k >= 0; k--) {
            f[i * (size_t)K + (size_t)k] = (int)(rest % (size_t)sizes[k]);
            rest /= (size_t)sizes[k];
        }
    }
}

double metrics_mig_mean(const double *gap, int K, const unsigned char *use)
{
    double sum = 0.0;
    int cnt = 0;
    for (int k = 0; k < K; k++)
        if (!use || use[k]) {
            sum += gap[k];
            cnt++;
        }
    return cnt ? sum / (double)cnt : NAN;
}

/* An item's chunk label and its index, for sorting the tuples into dense
 * labels. */
typedef struct keyed {
    uint64_t key;
    size_t i;
} keyed;

static int keyed_cmp(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key ? 1 : x->i < y->i ? -1 : x->i > y->i;
}

/* Dense labels 0 .. *n_labels-1 of the bin tuples of dims [o, o + c) of
 * codes (n, D): each dim discretised into n_bins bins; the tuple's key is
 * its mixed-radix number while n_bins^c fits 64 bits (every chunk of up to
 * 14 dims at 20 bins), else an FNV-1a mix of the bins. bins (n), kv (n):
 * scratch. */
static void chunk_labels(const float *codes, size_t n, int D, int o, int c, int n_bins,
                         int *bins, keyed *kv, int *lab, int *n_labels)
{
    double room = pow((double)n_bins, (double)c);
    int exact = room < 1.8e19;
    for (size_t i = 0; i < n; i++)
        kv[i] = (keyed){exact ? 0 : 1469598103934665603ull, i};
    for (int j = 0; j < c; j++) {
        metrics_discretize(codes + o + j, n, (size_t)D, n_bins, bins);
        for (size_t i = 0; i < n; i++)
            kv[i].key = exact ? kv[i].key * (uint64_t)n_bins + (uint64_t)bins[i]
                              : (kv[i].key ^ (uint64_t)bins[i]) * 1099511628211ull;
    }
    qsort(kv, n, sizeof *kv, keyed_cmp);
    int l = -1;
    for (size_t t = 0; t < n; t++) {
        if (t == 0 || kv[t].key != kv[t - 1].key)
            l++;
        lab[kv[t].i] = l;
    }
    *n_labels = l + 1;
}

int metrics_mi_chunks(const float *codes, size_t n, int D, const int *chunks, int n_chunks,
                      const int *f, int K, const int *sizes, int n_bins, double *mi,
                      double *h_factor, err *e)
{
    int total = 0;
    for (int j = 0; j < n_chunks; j++)
        total += chunks[j];
    if (total > D || n_chunks < 1 || K < 1)
        return err_set(e, ERR_INPUT, "metrics: %d chunks of %d dims in a code of %d", n_chunks,
                       total, D);
    int *bins = malloc(sizeof(int) * (n ? n : 1));
    int *lab = malloc(sizeof(int) * (n ? n : 1));
    keyed *kv = malloc(sizeof(keyed) * (n ? n : 1));
    double *out = malloc(sizeof(double) * (size_t)n_chunks * (size_t)K);
    double *hf = malloc(sizeof(double) * (size_t)K);
    int rc = 0;
    if (!bins || !lab || !kv || !out || !hf) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for the chunk MI of %zu codes", n);
        goto done;
    }
    for (int j = 0, o = 0; j < n_chunks && rc == 0; o += chunks[j++]) {
        int nl = 1;
        if (n)
            chunk_labels(codes, n, D, o, chunks[j], n_bins, bins, kv, lab, &nl);
        rc = metrics_discrete_mi(lab, n, nl, f, K, sizes, out + (size_t)j * K, e);
    }
    for (int k = 0; k < K && rc == 0; k++) {
        for (size_t t = 0; t < n; t++)
            lab[t] = f[t * (size_t)K + (size_t)k];
        err le;
        err_clear(&le);
        hf[k] = metrics_discrete_entropy(lab, n, sizes[k], &le);
        if (le.code < 0)
            rc = err_set(e, le.code, "%s", le.msg);
    }
    if (rc == 0) {
        memcpy(mi, out, sizeof(double) * (size_t)n_chunks * (size_t)K);
        if (h_factor)
            memcpy(h_factor, hf, sizeof(double) * (size_t)K);
    }
done:
    free(bins);
    free(lab);
    free(kv);
    free(out);
    free(hf);
    return rc;
}

int metrics_mig_chunks(const float *codes, size_t n, int D, const int *chunks, int n_chunks,
                       const int *f, int K, const int *sizes, const unsigned char *use,
                       double *mi, double *gap, double *mig, err *e)
{
    double *m = malloc(sizeof(double) * (size_t)(n_chunks > 0 ? n_chunks : 1) *
                       (size_t)(K > 0 ? K : 1));
    double *hf = malloc(sizeof(double) * (size_t)(K > 0 ? K : 1));
    double *g = malloc(sizeof(double) * (size_t)(K > 0 ? K : 1));
    int rc = 0;
    if (!m || !hf || !g) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for the chunk MIG");
        goto done;
    }
    /* bins: dlib's 20, or the largest factor's size when larger, so that a
     * dim that copies a factor linearly puts each of its values in its own
     * bin (equal-width bins over V equally spaced values are distinct when
     * there are at least V of them) */
    int bins = METRICS_HIST_BINS;
    for (int k = 0; k < K; k++)
        bins = sizes[k] > bins ? sizes[k] : bins;
    if ((rc = metrics_mi_chunks(codes, n, D, chunks, n_chunks, f, K, sizes, bins, m, hf, e)) < 0)
        goto done;
    if (n)
        metrics_mig(m, n_chunks, K, hf, g);
    else
        for (int k = 0; k < K; k++)
            g[k] = NAN;
    if (gap)
        memcpy(gap, g, sizeof(double) * (size_t)K);
    if (mi)
        memcpy(mi, m, sizeof(double) * (size_t)n_chunks * (size_t)K);
    *mig = metrics_mig_mean(g, K, use);
done:
    free(m);
    free(hf);
    free(g);
    return rc;
}

/* The contingency table W (a, b) of the smaller side (a items, rows) against
 * the larger (b, columns); best[mask] is the largest count matched with the
 * rows of mask used, over the columns seen so far: each column is matched to
 * one unused row or to none. The answer is the largest best[mask]. */
int metrics_match_accuracy(const int *labels, const int *v, size_t n, int n_labels, int n_values,
                           double *acc, err *e)
{
    if (n_labels < 1 || n_values < 1)
        return err_set(e, ERR_INPUT, "metrics: %d categories against %d values", n_labels,
                       n_values);
    const int swap = n_labels > n_values;
    const int a = swap ? n_values : n_labels, b = swap ? n_labels : n_values;
    if (a > METRICS_MATCH_MAX)
        return err_set(e, ERR_INPUT, "metrics: matching %d categories to %d values (at most %d "
                       "on the smaller side)", n_labels, n_values, METRICS_MATCH_MAX);
    if (n == 0) {
        *acc = NAN;
        return 0;
    }
    size_t *W = calloc((size_t)a * (size_t)b, sizeof *W);
    const size_t states = (size_t)1 << a;
    long long *best = malloc(sizeof *best * states), *next = malloc(sizeof *next * states);
    int rc = 0;
    if (!W || !best || !next) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for the category matching");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= n_labels || v[i] < 0 || v[i] >= n_values) {
            rc = err_set(e, ERR_INPUT, "metrics: item %zu: category %d of %d, value %d of %d", i,
                         labels[i], n_labels, v[i], n_values);
            goto done;
        }
        int r = swap ? v[i] : labels[i], c = swap ? labels[i] : v[i];
        W[(size_t)r * b + (size_t)c]++;
    }
    for (size_t m = 0; m < states; m++)
        best[m] = m ? -1 : 0; /* -1: not reachable */
    for (int c = 0; c < b; c++) {
        memcpy(next, best, sizeof *best * states); /* column c matched to none */
        for (size_t m = 0; m < states; m++) {
            if (best[m] < 0)
                continue;
            for (int r = 0; r < a; r++) {
                if (m >> r & 1)
                    continue;
                long long s = best[m] + (long long)W[(size_t)r * b + (size_t)c];
                size_t to = m | (size_t)1 << r;
                if (s > next[to])
                    next[to] = s;
            }
        }
        long long *t = best;
        best = next;
        next = t;
    }
    long long top = 0;
    for (size_t m = 0; m < states; m++)
        top = best[m] > top ? best[m] : top;
    *acc = (double)top / (double)n;
done:
    free(W);
    free(best);
    free(next);
    return rc;
}
