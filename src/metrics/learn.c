/* metrics/learn.c: the linear classifiers disentanglement_lib's metrics fit
 * (scikit-learn's LogisticRegression and LinearSVC), their predictions, and
 * the ROC AUC of explicitness. Each fit minimises the same objective as
 * scikit-learn 1.2 with the settings disentanglement_lib uses, to a tighter
 * tolerance, so the models are the same optimum; the solvers are our own
 * (L-BFGS for the logistic loss, Newton steps for the squared hinge). */
#include "untangle/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_impl.h"

int metrics_encode_labels(const int *y, size_t n, int n_labels, int **classes, int *n_classes,
                          int **index, err *e)
{
    int *pos = malloc(sizeof *pos * (size_t)(n_labels > 0 ? n_labels : 1));
    int *cls = malloc(sizeof *cls * (size_t)(n_labels > 0 ? n_labels : 1));
    int *idx = malloc(sizeof *idx * (n ? n : 1));
    if (!pos || !cls || !idx) {
        free(pos);
        free(cls);
        free(idx);
        return err_set(e, ERR_NOMEM, "metrics: out of memory for class labels");
    }
    for (int l = 0; l < n_labels; l++)
        pos[l] = -1;
    for (size_t i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= n_labels) {
            free(pos);
            free(cls);
            free(idx);
            return err_set(e, ERR_INPUT, "metrics: label %d of item %zu is outside 0..%d", y[i],
                           i, n_labels - 1);
        }
        pos[y[i]] = 0;
    }
    int c = 0;
    for (int l = 0; l < n_labels; l++)
        if (pos[l] == 0) {
            pos[l] = c;
            cls[c++] = l;
        }
    for (size_t i = 0; i < n; i++)
        idx[i] = pos[y[i]];
    free(pos);
    *classes = cls;
    *n_classes = c;
    *index = idx;
    return 0;
}

/* ---- L-BFGS ------------------------------------------------------------------ */

/* f(w) and its gradient g (P). */
typedef double (*fg_fn)(void *ctx, const double *w, double *g);

enum { LBFGS_M = 10 };

static double dot(const double *a, const double *b, int P)
{
    double s = 0.0;
    for (int j = 0; j < P; j++)
        s += a[j] * b[j];
    return s;
}

/* Minimise a smooth convex f from w (P) until max |g| <= gtol, the
 * backtracking (Armijo) line search can no longer decrease f, or max_iter
 * steps, or five steps in a row that leave f unchanged. The two-loop recursion of Nocedal and Wright (algorithm 7.4), with
 * H0 = (s'y / y'y) I; pairs with s'y <= 0 are not kept. */
static int lbfgs(int P, double *w, fg_fn fg, void *ctx, double gtol, int max_iter, err *e)
{
    double *buf = malloc(sizeof *buf * (size_t)P * (2 * LBFGS_M + 4));
    if (!buf)
        return err_set(e, ERR_NOMEM, "metrics: out of memory for L-BFGS");
    double *S = buf, *Y = S + (size_t)LBFGS_M * P;       /* (M, P) each, a ring */
    double *g = Y + (size_t)LBFGS_M * P, *d = g + P, *wn = d + P, *gn = wn + P;
    double rho[LBFGS_M], alpha[LBFGS_M];
    int kept = 0, head = 0, stall = 0; /* pairs kept; next slot; steps without progress */
    double f = fg(ctx, w, g);
    for (int it = 0; it < max_iter; it++) {
        double gmax = 0.0;
        for (int j = 0; j < P; j++)
            gmax = fabs(g[j]) > gmax ? fabs(g[j]) : gmax;
        if (!(gmax > gtol))
            break;
        for (int j = 0; j < P; j++)
            d[j] = -g[j];
        for (int c = 0; c < kept; c++) { /* newest first */
            int s = (head - 1 - c + 2 * LBFGS_M) % LBFGS_M;
            alpha[s] = rho[s] * dot(S + (size_t)s * P, d, P);
            for (int j = 0; j < P; j++)
                d[j] -= alpha[s] * Y[(size_t)s * P + j];
        }
        double gamma = 1.0 / (gmax > 1.0 ? gmax : 1.0);
        if (kept) {
            int s = (head - 1 + LBFGS_M) % LBFGS_M;
            const double *ys = Y + (size_t)s * P;
            gamma = dot(S + (size_t)s * P, ys, P) / dot(ys, ys, P);
        }
        for (int j = 0; j < P; j++)
            d[j] *= gamma;
        for (int c = kept - 1; c >= 0; c--) { /* oldest first */
            int s = (head - 1 - c + 2 * LBFGS_M) % LBFGS_M;
            double beta = rho[s] * dot(Y + (size_t)s * P, d, P);
            for (int j = 0; j < P; j++)
                d[j] += (alpha[s] - beta) * S[(size_t)s * P + j];
        }
        double gd = dot(g, d, P);
        if (!(gd < 0.0)) { /* not a descent direction: restart from -g */
            kept = 0;
            for (int j = 0; j < P; j++)
                d[j] = -g[j] * gamma;
            gd = dot(g, d, P);
        }
        double t = 1.0, fn = f;
        int ok = 0;
        for (int ls = 0; ls < 60; ls++, t *= 0.5) {
            for (int j = 0; j < P; j++)
                wn[j] = w[j] + t * d[j];
            fn = fg(ctx, wn, gn);
            if (fn <= f + 1e-4 * t * gd) {
                ok = 1;
                break;
            }
        }
        /* f cannot decrease any more in double precision */
        stall = f - fn <= 1e-15 * fabs(f) ? stall + 1 : 0;
        if (!ok || stall >= 5)
            break;
        double *s = S + (size_t)head * P, *y = Y + (size_t)head * P;
        for (int j = 0; j < P; j++) {
            s[j] = wn[j] - w[j];
            y[j] = gn[j] - g[j];
        }
        double sy = dot(s, y, P);
        if (sy > 1e-300) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % LBFGS_M;
            kept += kept < LBFGS_M;
        }
        memcpy(w, wn, sizeof *w * (size_t)P);
        memcpy(g, gn, sizeof *g * (size_t)P);
        f = fn;
    }
    free(buf);
    return 0;
}

/* ---- logistic regression ------------------------------------------------------- */

typedef struct logreg_ctx {
    const double *x; /* (n, D) */
    const int *yi;   /* (n) class positions */
    size_t n;
    int D, K, rows;
    double C;
    double *z; /* (K) scratch */
} logreg_ctx;

/* C * sum_i -log p(y_i | x_i) + 0.5 * sum of squared weights (intercepts
 * unpenalised), and its gradient; w (rows, D + 1). */
static double logreg_fg(void *vctx, const double *w, double *g)
{
    logreg_ctx *c = vctx;
    const int D1 = c->D + 1, R = c->rows;
    memset(g, 0, sizeof *g * (size_t)R * D1);
    double loss = 0.0;
    for (size_t i = 0; i < c->n; i++) {
        const double *xi = c->x + i * (size_t)c->D;
        for (int r = 0; r < R; r++) {
            const double *wr = w + (size_t)r * D1;
            double s = wr[c->D];
            for (int j = 0; j < c->D; j++)
                s += wr[j] * xi[j];
            c->z[r] = s;
        }
        if (R == 1) {
            /* -log sigmoid(+-z) = softplus(-+z); d/dz = sigmoid(z) - y */
            double z = c->z[0], y = c->yi[i] == 1 ? 1.0 : 0.0, u = y > 0 ? -z : z;
            loss += u > 0 ? u + log1p(exp(-u)) : log1p(exp(u));
            double p = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
            double dz = c->C * (p - y);
            for (int j = 0; j < c->D; j++)
                g[j] += dz * xi[j];
            g[c->D] += dz;
            continue;
        }
        double mx = c->z[0];
        for (int r = 1; r < R; r++)
            mx = c->z[r] > mx ? c->z[r] : mx;
        double se = 0.0;
        for (int r = 0; r < R; r++)
            se += exp(c->z[r] - mx);
        double lse = mx + log(se);
        loss += lse - c->z[c->yi[i]];
        for (int r = 0; r < R; r++) {
            double dz = c->C * (exp(c->z[r] - lse) - (r == c->yi[i] ? 1.0 : 0.0));
            double *gr = g + (size_t)r * D1;
            for (int j = 0; j < c->D; j++)
                gr[j] += dz * xi[j];
            gr[c->D] += dz;
        }
    }
    double reg = 0.0;
    for (int r = 0; r < R; r++)
        for (int j = 0; j < c->D; j++) {
            double v = w[(size_t)r * D1 + j];
            reg += v * v;
            g[(size_t)r * D1 + j] += v;
        }
    return c->C * loss + 0.5 * reg;
}

void metrics_linear_free(metrics_linear *m)
{
    if (!m)
        return;
    free(m->classes);
    free(m->w);
    m->classes = NULL;
    m->w = NULL;
}

/* Label encoding and the weight block shared by both fits. */
static int linear_init(metrics_linear *m, const int *y, size_t n, int D, int n_labels,
                       int **yi, err *e)
{
    memset(m, 0, sizeof *m);
    if (n == 0 || D < 1)
        return err_set(e, ERR_INPUT, "metrics: a classifier needs items and features");
    int rc = metrics_encode_labels(y, n, n_labels, &m->classes, &m->n_classes, yi, e);
    if (rc)
        return rc;
    m->D = D;
    m->rows = m->n_classes == 1 ? 0 : m->n_classes == 2 ? 1 : m->n_classes;
    m->w = calloc((size_t)(m->rows ? m->rows : 1) * (D + 1), sizeof *m->w);
    if (!m->w) {
        free(*yi);
        metrics_linear_free(m);
        return err_set(e, ERR_NOMEM, "metrics: out of memory for a linear model");
    }
    return 0;
}

int metrics_logreg_fit(metrics_linear *m, const double *x, const int *y, size_t n, int D,
                       int n_labels, double C, err *e)
{
    metrics_linear t;
    int *yi = NULL;
    int rc = linear_init(&t, y, n, D, n_labels, &yi, e);
    if (rc)
        return rc;
    if (t.rows > 0) {
        logreg_ctx c = {x, yi, n, D, t.n_classes, t.rows, C, NULL};
        c.z = malloc(sizeof *c.z * (size_t)t.rows);
        rc = c.z ? 0 : err_set(e, ERR_NOMEM, "metrics: out of memory for a logistic fit");
        /* scikit-learn's gradient is ours / (C n); stop at 1e-6 per sample (its
         * default stops at 1e-4, or after 100 steps) */
        if (!rc)
            rc = lbfgs(t.rows * (D + 1), t.w, logreg_fg, &c, 1e-6 * C * (double)n, 5000, e);
        free(c.z);
    }
    free(yi);
    if (rc) {
        metrics_linear_free(&t);
        return rc;
    }
    *m = t;
    return 0;
}

/* ---- linear SVM (squared hinge) --------------------------------------------------- */

/* Cholesky solve of the SPD system A d = b in place (A (P, P), overwritten). */
static void spd_solve(double *A, double *b, int P)
{
    for (int j = 0; j < P; j++) {
        double s = A[j * P + j];
        for (int k = 0; k < j; k++)
            s -= A[j * P + k] * A[j * P + k];
        A[j * P + j] = sqrt(s > 1e-300 ? s : 1e-300);
        for (int i = j + 1; i < P; i++) {
            double t = A[i * P + j];
            for (int k = 0; k < j; k++)
                t -= A[i * P + k] * A[j * P + k];
            A[i * P + j] = t / A[j * P + j];
        }
    }
    for (int i = 0; i < P; i++) {
        for (int k = 0; k < i; k++)
            b[i] -= A[i * P + k] * b[k];
        b[i] /= A[i * P + i];
    }
    for (int i = P - 1; i >= 0; i--) {
        for (int k = i + 1; k < P; k++)
            b[i] -= A[k * P + i] * b[k];
        b[i] /= A[i * P + i];
    }
}

/* f(v) = 0.5 ||v||^2 + sum_i c_i max(0, 1 - s_i v.[x_i, 1])^2; the gradient
 * into g and (when H) the generalised Hessian I + 2 sum_{active} c_i x x'. */
static double svm_fgh(const double *x, const double *s, const double *ci, size_t n, int D,
                      const double *v, double *g, double *H)
{
    const int P = D + 1;
    double f = 0.5 * dot(v, v, P);
    memcpy(g, v, sizeof *g * (size_t)P);
    if (H) {
        memset(H, 0, sizeof *H * (size_t)P * P);
        for (int j = 0; j < P; j++)
            H[j * P + j] = 1.0;
    }
    for (size_t i = 0; i < n; i++) {
        const double *xi = x + i * (size_t)D;
        double m = v[D];
        for (int j = 0; j < D; j++)
            m += v[j] * xi[j];
        double slack = 1.0 - s[i] * m;
        if (slack <= 0.0)
            continue;
        f += ci[i] * slack * slack;
        double a = -2.0 * ci[i] * s[i] * slack;
        for (int j = 0; j < D; j++)
            g[j] += a * xi[j];
        g[D] += a;
        if (H)
            for (int j = 0; j < P; j++) {
                double xj = j < D ? xi[j] : 1.0;
                for (int k = 0; k <= j; k++)
                    H[j * P + k] += 2.0 * ci[i] * xj * (k < D ? xi[k] : 1.0);
            }
    }
    if (H)
        for (int j = 0; j < P; j++)
            for (int k = j + 1; k < P; k++)
                H[j * P + k] = H[k * P + j];
    return f;
}

/* Newton with backtracking on the (piecewise quadratic, strictly convex)
 * squared-hinge objective from v = 0: once the active set settles one step
 * lands on the minimum. scratch: 3P + P*P doubles. */
static void svm_newton(const double *x, const double *s, const double *ci, size_t n, int D,
                       double *v, double *scratch)
{
    const int P = D + 1;
    double *g = scratch, *d = g + P, *vn = d + P, *H = vn + P;
    memset(v, 0, sizeof *v * (size_t)P);
    double f = svm_fgh(x, s, ci, n, D, v, g, H), g0 = 0.0;
    for (int j = 0; j < P; j++)
        g0 = fabs(g[j]) > g0 ? fabs(g[j]) : g0;
    for (int it = 0; it < 200; it++) {
        double gmax = 0.0;
        for (int j = 0; j < P; j++)
            gmax = fabs(g[j]) > gmax ? fabs(g[j]) : gmax;
        if (!(gmax > 1e-12 * g0))
            break;
        for (int j = 0; j < P; j++)
            d[j] = -g[j];
        spd_solve(H, d, P);
        double gd = dot(g, d, P), t = 1.0, fn = f;
        int ok = 0;
        for (int ls = 0; ls < 60; ls++, t *= 0.5) {
            for (int j = 0; j < P; j++)
                vn[j] = v[j] + t * d[j];
            fn = svm_fgh(x, s, ci, n, D, vn, g, NULL);
            if (fn <= f + 1e-4 * t * gd) {
                ok = 1;
                break;
            }
        }
        if (!ok)
            break;
        memcpy(v, vn, sizeof *v * (size_t)P);
        f = svm_fgh(x, s, ci, n, D, v, g, H);
    }
}

int metrics_linsvc_fit(metrics_linear *m, const double *x, const int *y, size_t n, int D,
                       int n_labels, double C, int balanced, err *e)
{
    metrics_linear t;
    int *yi = NULL;
    int rc = linear_init(&t, y, n, D, n_labels, &yi, e);
    if (rc)
        return rc;
    const int K = t.n_classes, P = D + 1;
    double *s = malloc(sizeof *s * n), *ci = malloc(sizeof *ci * n);
    double *wc = calloc((size_t)K, sizeof *wc);
    double *scratch = malloc(sizeof *scratch * (size_t)(3 * P + P * P));
    if (!s || !ci || !wc || !scratch) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for a linear SVM");
        goto done;
    }
    /* class weights: compute_class_weight("balanced") = n / (K n_c) */
    for (size_t i = 0; i < n; i++)
        wc[yi[i]] += 1.0;
    for (int c = 0; c < K; c++)
        wc[c] = balanced ? (double)n / ((double)K * wc[c]) : 1.0;
    if (t.rows == 1) { /* liblinear's two-class problem: classes[1] is +1 */
        for (size_t i = 0; i < n; i++) {
            s[i] = yi[i] == 1 ? 1.0 : -1.0;
            ci[i] = C * wc[yi[i]];
        }
        svm_newton(x, s, ci, n, D, t.w, scratch);
    }
    for (int r = 0; t.rows > 1 && r < K; r++) { /* one-vs-rest: the rest at C */
        for (size_t i = 0; i < n; i++) {
            s[i] = yi[i] == r ? 1.0 : -1.0;
            ci[i] = yi[i] == r ? C * wc[r] : C;
        }
        svm_newton(x, s, ci, n, D, t.w + (size_t)r * P, scratch);
    }
done:
    free(s);
    free(ci);
    free(wc);
    free(scratch);
    free(yi);
    if (rc) {
        metrics_linear_free(&t);
        return rc;
    }
    *m = t;
    return 0;
}

/* ---- predictions -------------------------------------------------------------------- */

static double decision(const metrics_linear *m, int r, const double *xi)
{
    const double *w = m->w + (size_t)r * (m->D + 1);
    double z = w[m->D];
    for (int j = 0; j < m->D; j++)
        z += w[j] * xi[j];
    return z;
}

void metrics_linear_predict(const metrics_linear *m, const double *x, size_t n, int *y)
{
    for (size_t i = 0; i < n; i++) {
        const double *xi = x + i * (size_t)m->D;
        int best = 0;
        if (m->rows == 1) {
            best = decision(m, 0, xi) > 0.0;
        } else if (m->rows > 1) {
            double bz = decision(m, 0, xi);
            for (int r = 1; r < m->rows; r++) {
                double z = decision(m, r, xi);
                if (z > bz) {
                    bz = z;
                    best = r;
                }
            }
        }
        y[i] = m->classes[best];
    }
}

void metrics_logreg_proba(const metrics_linear *m, const double *x, size_t n, double *p)
{
    const int K = m->n_classes;
    for (size_t i = 0; i < n; i++) {
        const double *xi = x + i * (size_t)m->D;
        double *pi = p + i * (size_t)K;
        if (m->rows == 0) {
            pi[0] = 1.0;
        } else if (m->rows == 1) {
            double z = decision(m, 0, xi);
            double s = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
            pi[0] = 1.0 - s;
            pi[1] = s;
        } else {
            double mx = -INFINITY, se = 0.0;
            for (int r = 0; r < K; r++) {
                pi[r] = decision(m, r, xi);
                mx = pi[r] > mx ? pi[r] : mx;
            }
            for (int r = 0; r < K; r++)
                se += (pi[r] = exp(pi[r] - mx));
            for (int r = 0; r < K; r++)
                pi[r] /= se;
        }
    }
}

/* ---- ROC AUC ----------------------------------------------------------------------- */

typedef struct scored {
    double s;
    unsigned char pos;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x > y) - (x < y);
}

double metrics_auc(const double *s, const unsigned char *pos, size_t n, err *e)
{
    scored *v = malloc(sizeof *v * (n ? n : 1));
    if (!v) {
        err_set(e, ERR_NOMEM, "metrics: out of memory for an AUC");
        return NAN;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = (scored){s[i], pos[i] != 0};
    qsort(v, n, sizeof *v, cmp_scored);
    /* U = sum over positives of (negatives scored below + half the tied ones) */
    double u = 0.0, neg_below = 0.0, npos = 0.0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double p = 0.0, q = 0.0;
        while (j < n && v[j].s == v[i].s) {
            if (v[j].pos)
                p += 1.0;
            else
                q += 1.0;
            j++;
        }
        u += p * (neg_below + 0.5 * q);
        neg_below += q;
        npos += p;
        i = j;
    }
    free(v);
    if (npos == 0.0 || neg_below == 0.0)
        return NAN;
    return u / (npos * neg_below);
}
