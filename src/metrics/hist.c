/* metrics/hist.c: disentanglement_lib's histogram MIG (Locatello et al. 2019,
 * evaluation/metrics/mig.py and utils.py), the MIG of a mutual-information
 * matrix (Chen et al. 2018, eq. 6), and the total correlation of a Gaussian
 * fitted to the means. */
#include "untangle/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void metrics_discretize(const float *x, size_t n, size_t stride, int n_bins, int *bins)
{
    if (n == 0)
        return;
    /* np.histogram(x, n_bins)[1]: edges = float32(i*step + min) computed in
     * double (np.linspace with dtype float32), step = (max - min)/n_bins; a
     * constant x gets the range [x - 0.5, x + 0.5]. NaN are skipped for the
     * range and land in bin 0. */
    float mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        float v = x[i * stride];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    if (!(mn <= mx)) { /* all NaN */
        for (size_t i = 0; i < n; i++)
            bins[i] = 0;
        return;
    }
    double first = mn, last = mx;
    if (mn == mx) {
        first -= 0.5;
        last += 0.5;
    }
    const double step = (last - first) / (double)n_bins;
    float edge[n_bins > 0 ? n_bins : 1];
    for (int b = 0; b < n_bins; b++)
        edge[b] = (float)((double)b * step + first);
    /* np.digitize(x, edges[:-1]) = the number of left edges <= x (1..n_bins);
     * start from the arithmetic guess and correct it against the float edges */
    for (size_t i = 0; i < n; i++) {
        float v = x[i * stride];
        if (!(v == v)) {
            bins[i] = 0;
            continue;
        }
        double g = ((double)v - first) / step;
        int b = g < 0.0 ? 0 : g >= (double)(n_bins - 1) ? n_bins - 1 : (int)g;
        while (b + 1 < n_bins && edge[b + 1] <= v)
            b++;
        while (b > 0 && edge[b] > v)
            b--;
        bins[i] = b;
    }
}

double metrics_discrete_entropy(const int *labels, size_t n, int n_labels, err *e)
{
    if (n == 0)
        return NAN;
    size_t *cnt = calloc((size_t)n_labels, sizeof *cnt);
    if (!cnt) {
        err_set(e, ERR_NOMEM, "metrics: out of memory for an entropy");
        return NAN;
    }
    for (size_t i = 0; i < n; i++)
        cnt[labels[i]]++;
    double h = 0.0, logn = log((double)n);
    for (int l = 0; l < n_labels; l++)
        if (cnt[l])
            h -= (double)cnt[l] / (double)n * (log((double)cnt[l]) - logn);
    free(cnt);
    return h;
}

int metrics_discrete_mi(const int *labels, size_t n, int n_labels, const int *f, int K,
                        const int *sizes, double *mi, err *e)
{
    if (n == 0) {
        for (int k = 0; k < K; k++)
            mi[k] = NAN;
        return 0;
    }
    int max_size = 1;
    for (int k = 0; k < K; k++)
        max_size = sizes[k] > max_size ? sizes[k] : max_size;
    size_t *cnt = calloc((size_t)n_labels * (size_t)max_size, sizeof *cnt);
    size_t *nl = calloc((size_t)n_labels, sizeof *nl);
    size_t *nf = calloc((size_t)max_size, sizeof *nf);
    double *out = malloc(sizeof *out * (size_t)(K > 0 ? K : 1));
    if (!cnt || !nl || !nf || !out) {
        free(cnt);
        free(nl);
        free(nf);
        free(out);
        return err_set(e, ERR_NOMEM, "metrics: out of memory for a contingency table");
    }
    for (size_t i = 0; i < n; i++)
        nl[labels[i]]++;
    const double logn = log((double)n);
    for (int k = 0; k < K; k++) {
        const int V = sizes[k];
        memset(cnt, 0, sizeof *cnt * (size_t)n_labels * (size_t)V);
        memset(nf, 0, sizeof *nf * (size_t)V);
        for (size_t i = 0; i < n; i++) {
            int v = f[i * (size_t)K + (size_t)k];
            cnt[(size_t)labels[i] * V + v]++;
            nf[v]++;
        }
        /* sklearn.metrics.mutual_info_score: sum_ij (n_ij/n) log(n n_ij / (n_i n_j)),
         * clamped at 0 */
        double s = 0.0;
        for (int l = 0; l < n_labels; l++)
            for (int v = 0; v < V; v++) {
                size_t c = cnt[(size_t)l * V + v];
                if (c)
                    s += (double)c / (double)n *
                         (log((double)c) + logn - log((double)nl[l]) - log((double)nf[v]));
            }
        out[k] = s > 0.0 ? s : 0.0;
    }
    memcpy(mi, out, sizeof *out * (size_t)K);
    free(cnt);
    free(nl);
    free(nf);
    free(out);
    return 0;
}

int metrics_mi_hist(const float *codes, size_t n, int D, const int *cats, int n_cat_units,
                    const int *cat_sizes, const int *f, int K, const int *sizes, int n_bins,
                    double *mi, double *h_factor, err *e)
{
    const int U = D + n_cat_units;
    int *lab = malloc(sizeof(int) * (n ? n : 1));
    int *col = malloc(sizeof(int) * (n ? n : 1));
    double *out = malloc(sizeof(double) * (size_t)(U > 0 ? U : 1) * (size_t)(K > 0 ? K : 1));
    double hf[K > 0 ? K : 1];
    err le;
    int rc = 0;
    if (!lab || !col || !out) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for the histogram MI");
        goto done;
    }
    for (int u = 0; u < U && rc == 0; u++) {
        int nl;
        if (u < D) {
            metrics_discretize(codes + u, n, (size_t)D, n_bins, lab);
            nl = n_bins;
        } else {
            int i = u - D;
            for (size_t t = 0; t < n; t++)
                lab[t] = cats[t * (size_t)n_cat_units + (size_t)i];
            nl = cat_sizes[i];
        }
        rc = metrics_discrete_mi(lab, n, nl, f, K, sizes, out + (size_t)u * K, e);
    }
    for (int k = 0; k < K && rc == 0; k++) {
        for (size_t t = 0; t < n; t++)
            col[t] = f[t * (size_t)K + (size_t)k];
        err_clear(&le);
        hf[k] = metrics_discrete_entropy(col, n, sizes[k], &le);
        if (le.code < 0)
            rc = err_set(e, le.code, "%s", le.msg);
    }
    if (rc == 0) {
        memcpy(mi, out, sizeof(double) * (size_t)U * (size_t)K);
        if (h_factor)
            memcpy(h_factor, hf, sizeof(double) * (size_t)K);
    }
done:
    free(lab);
    free(col);
    free(out);
    return rc;
}

double metrics_mig(const double *mi, int U, int K, const double *h_factor, double *gap)
{
    double sum = 0.0;
    for (int k = 0; k < K; k++) {
        /* the top two of max(I(z_u; v_k), 0) over the units */
        double t1 = 0.0, t2 = 0.0;
        int nan = 0;
        for (int u = 0; u < U; u++) {
            double v = mi[u * K + k];
            if (isnan(v)) {
                nan = 1;
                continue;
            }
            v = v > 0.0 ? v : 0.0;
            if (v > t1) {
                t2 = t1;
                t1 = v;
            } else if (v > t2) {
                t2 = v;
            }
        }
        double g = nan ? NAN : (t1 - t2) / h_factor[k];
        if (gap)
            gap[k] = g;
        sum += g;
    }
    return K > 0 ? sum / (double)K : NAN;
}

int metrics_mig_hist(const float *codes, size_t n, int D, const int *cats, int n_cat_units,
                     const int *cat_sizes, const int *f, int K, const int *sizes,
                     double *gap, double *mig, err *e)
{
    const int U = D + n_cat_units;
    double *mi = malloc(sizeof(double) * (size_t)(U > 0 ? U : 1) * (size_t)(K > 0 ? K : 1));
    double hf[K > 0 ? K : 1], g[K > 0 ? K : 1];
    if (!mi)
        return err_set(e, ERR_NOMEM, "metrics: out of memory for the histogram MIG");
    int rc = metrics_mi_hist(codes, n, D, cats, n_cat_units, cat_sizes, f, K, sizes,
                             METRICS_HIST_BINS, mi, hf, e);
    if (rc == 0) {
        /* compute_mig: mean over factors of (sorted_m[0] - sorted_m[1]) / entropy */
        double v = n ? metrics_mig(mi, U, K, hf, g) : NAN;
        if (gap)
            for (int k = 0; k < K; k++)
                gap[k] = n ? g[k] : NAN;
        *mig = v;
    }
    free(mi);
    return rc;
}

int metrics_gaussian_tc(const float *x, size_t n, int D, double *tc, err *e)
{
    if (n < 2 || D < 1) {
        *tc = 0.0;
        return 0;
    }
    double *mean = calloc((size_t)D, sizeof *mean);
    double *S = calloc((size_t)D * (size_t)D, sizeof *S);
    int *keep = malloc(sizeof *keep * (size_t)D);
    if (!mean || !S || !keep) {
        free(mean);
        free(S);
        free(keep);
        return err_set(e, ERR_NOMEM, "metrics: out of memory for gaussian_tc");
    }
    /* two-pass covariance in double (the divisor cancels in the result) */
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < D; j++)
            mean[j] += x[i * D + j];
    for (int j = 0; j < D; j++)
        mean[j] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < D; a++) {
            double da = x[i * D + a] - mean[a];
            for (int b = 0; b <= a; b++)
                S[a * D + b] += da * (x[i * D + b] - mean[b]);
        }
    /* 0.5*(sum_j log S_jj - log det S) = -0.5 log det R, R the correlation
     * matrix of the varying dims; log det R = 2 sum log L_jj (Cholesky). */
    int m = 0;
    for (int j = 0; j < D; j++)
        if (S[j * D + j] > 0.0)
            keep[m++] = j;
    double *R = malloc(sizeof *R * (size_t)(m > 0 ? m : 1) * (size_t)(m > 0 ? m : 1));
    if (!R) {
        free(mean);
        free(S);
        free(keep);
        return err_set(e, ERR_NOMEM, "metrics: out of memory for gaussian_tc");
    }
    for (int a = 0; a < m; a++)
        for (int b = 0; b <= a; b++) {
            int ja = keep[a], jb = keep[b];
            R[a * m + b] = S[ja * D + jb] / sqrt(S[ja * D + ja] * S[jb * D + jb]);
        }
    double logdet = 0.0;
    int singular = 0;
    for (int a = 0; a < m && !singular; a++) {
        for (int b = 0; b <= a; b++) {
            double s = R[a * m + b];
            for (int t = 0; t < b; t++)
                s -= R[a * m + t] * R[b * m + t];
            if (a == b) {
                if (!(s > 0.0)) {
                    singular = 1;
                    break;
                }
                R[a * m + a] = sqrt(s);
                logdet += 2.0 * log(R[a * m + a]);
            } else {
                R[a * m + b] = s / R[b * m + b];
            }
        }
    }
    *tc = singular ? INFINITY : -0.5 * logdet;
    free(R);
    free(mean);
    free(S);
    free(keep);
    return 0;
}
