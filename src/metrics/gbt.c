/* metrics/gbt.c: gradient-boosted trees as scikit-learn's
 * GradientBoostingClassifier() (friedman_mse trees of depth 3, 100 stages,
 * rate 0.1, log-loss), the importance model of disentanglement_lib's DCI.
 *
 * Each feature is sorted once per fit; a tree grows level by level, one pass
 * over each feature's sorted order per level finding the best split of every
 * open node at once (the split search of scikit-learn's BestSplitter: a cut
 * between consecutive distinct float32 values, more than 1e-7 apart, at their
 * midpoint, the largest Friedman improvement kept, the first on ties).
 * Growing by levels or depth first gives the same tree: a node's split
 * depends only on its own samples. */
#include "untangle/metrics.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_impl.h"

enum { GBT_MAX_DEPTH = 8 };

/* The scratch of one fit: (n) arrays per sample, (D, n) sorted orders, and
 * the tree being grown: each feature's order rearranged so that every node's
 * samples are one segment [start, end) of it, in ascending value (a stable
 * partition at each split keeps them sorted), and the nodes' sums. */
typedef struct gbt_work {
    size_t n;
    int D, depth, n_nodes;
    const float *x;           /* (n, D) */
    uint32_t *order;          /* (D, n) sample ids sorted by feature */
    float *sorted;            /* (D, n) their values */
    uint32_t *wo;             /* (D, n) the tree's segments of sample ids */
    float *wv;                /* (D, n) their values */
    uint32_t *tmp_i;          /* (n) partition scratch */
    float *tmp_v;             /* (n) */
    int *node;                /* (n) the leaf each sample ends in */
    unsigned char *left;      /* (n) side of the split being applied */
    double *r, *h;            /* (n) residual, p (1 - p) */
    size_t *start, *end;      /* (n_nodes) segments */
    double *cnt, *sum, *sq;   /* (n_nodes) node sums */
} gbt_work;

typedef struct fv {
    float v;
    uint32_t i;
} fv;

static int cmp_fv(const void *a, const void *b)
{
    const fv *p = a, *q = b;
    if (p->v != q->v)
        return p->v < q->v ? -1 : 1;
    return (p->i > q->i) - (p->i < q->i);
}

static void work_free(gbt_work *w)
{
    free(w->order);
    free(w->sorted);
    free(w->wo);
    free(w->wv);
    free(w->tmp_i);
    free(w->tmp_v);
    free(w->node);
    free(w->left);
    free(w->r);
    free(w->h);
    free(w->start);
    free(w->cnt);
}

static int work_init(gbt_work *w, const float *x, size_t n, int D, int depth, err *e)
{
    memset(w, 0, sizeof *w);
    w->n = n;
    w->D = D;
    w->depth = depth;
    w->x = x;
    w->n_nodes = (1 << (depth + 1)) - 1;
    size_t nn = (size_t)w->n_nodes, nd = n * (size_t)D;
    w->order = malloc(sizeof *w->order * nd);
    w->sorted = malloc(sizeof *w->sorted * nd);
    w->wo = malloc(sizeof *w->wo * nd);
    w->wv = malloc(sizeof *w->wv * nd);
    w->tmp_i = malloc(sizeof *w->tmp_i * n);
    w->tmp_v = malloc(sizeof *w->tmp_v * n);
    w->node = malloc(sizeof *w->node * n);
    w->left = malloc(n);
    w->r = malloc(sizeof *w->r * n);
    w->h = malloc(sizeof *w->h * n);
    w->start = malloc(sizeof *w->start * nn * 2);
    w->cnt = malloc(sizeof *w->cnt * nn * 3);
    fv *tmp = malloc(sizeof *tmp * n);
    if (!w->order || !w->sorted || !w->wo || !w->wv || !w->tmp_i || !w->tmp_v || !w->node ||
        !w->left || !w->r || !w->h || !w->start || !w->cnt || !tmp) {
        free(tmp);
        work_free(w);
        memset(w, 0, sizeof *w);
        return err_set(e, ERR_NOMEM, "metrics: out of memory for boosted trees (n = %zu)", n);
    }
    w->end = w->start + nn;
    w->sum = w->cnt + nn;
    w->sq = w->cnt + 2 * nn;
    for (int f = 0; f < D; f++) {
        for (size_t i = 0; i < n; i++)
            tmp[i] = (fv){x[i * (size_t)D + f], (uint32_t)i};
        qsort(tmp, n, sizeof *tmp, cmp_fv);
        for (size_t j = 0; j < n; j++) {
            w->order[(size_t)f * n + j] = tmp[j].i;
            w->sorted[(size_t)f * n + j] = tmp[j].v;
        }
    }
    free(tmp);
    return 0;
}

/* Count, sum and sum of squares of the residuals of node a's segment. */
static void node_sums(gbt_work *w, int a)
{
    double s = 0.0, q = 0.0;
    const uint32_t *ids = w->wo;
    for (size_t j = w->start[a]; j < w->end[a]; j++) {
        double r = w->r[a == 0 ? j : ids[j]]; /* the root: every sample */
        s += r;
        q += r * r;
    }
    w->cnt[a] = (double)(w->end[a] - w->start[a]);
    w->sum[a] = s;
    w->sq[a] = q;
}

/* MSE impurity of a node: sq/n - (sum/n)^2 (scikit-learn's node_impurity). */
static double impurity(const gbt_work *w, int a)
{
    double m = w->sum[a] / w->cnt[a];
    return w->sq[a] / w->cnt[a] - m * m;
}

/* The best split of node a over every feature (tree[a].feature stays -1 when
 * there is none): each cut between values more than 1e-7 apart, scored by
 * FriedmanMSE.proxy_impurity_improvement (n_r s_l - n_l s_r)^2 / (n_l n_r),
 * compared without the division. */
static void find_split(gbt_work *w, metrics_gbt_node *tree, int a)
{
    const size_t s0 = w->start[a], s1 = w->end[a];
    const double cnt = w->cnt[a], tot = w->sum[a];
    double best_num = -1.0, best_den = 1.0;
    for (int f = 0; f < w->D; f++) {
        /* the root's segments are the fit's sorted orders */
        const uint32_t *ids = (a == 0 ? w->order : w->wo) + (size_t)f * w->n;
        const float *val = (a == 0 ? w->sorted : w->wv) + (size_t)f * w->n;
        double sl = w->r[ids[s0]], nl = 1.0;
        float last = val[s0];
        for (size_t j = s0 + 1; j < s1; j++) {
            float v = val[j];
            if ((double)v > (double)last + 1e-7) {
                double nr = cnt - nl, diff = nr * sl - nl * (tot - sl);
                double num = diff * diff, den = nl * nr;
                if (num * best_den > best_num * den) {
                    best_num = num;
                    best_den = den;
                    double thr = (double)last / 2.0 + (double)v / 2.0;
                    if (thr == (double)v || isinf(thr))
                        thr = (double)last;
                    tree[a].feature = f;
                    tree[a].threshold = thr;
                }
            }
            sl += w->r[ids[j]];
            nl += 1.0;
            last = v;
        }
    }
}

/* Split node a's segment of the first nf features into its children's
 * (stable); the root's come from the fit's sorted orders, so a tree starts
 * without a copy of them. Children that will be leaves need only one
 * feature's segments (their samples), not every feature's order. */
static void partition(gbt_work *w, const metrics_gbt_node *tree, int a, int nf)
{
    const size_t s0 = w->start[a], s1 = w->end[a];
    const int f0 = tree[a].feature;
    const double thr = tree[a].threshold;
    const uint32_t *src_ids = a == 0 ? w->order : w->wo;
    const float *src_val = a == 0 ? w->sorted : w->wv;
    size_t nl = 0;
    for (size_t j = s0; j < s1; j++) {
        uint32_t i = src_ids[j];
        w->left[i] = (double)w->x[(size_t)i * w->D + f0] <= thr;
        nl += w->left[i];
    }
    for (int f = 0; f < nf; f++) {
        const uint32_t *sids = src_ids + (size_t)f * w->n;
        const float *sval = src_val + (size_t)f * w->n;
        uint32_t *ids = w->wo + (size_t)f * w->n;
        float *val = w->wv + (size_t)f * w->n;
        size_t l = s0, r = 0;
        for (size_t j = s0; j < s1; j++) {
            uint32_t i = sids[j];
            if (w->left[i]) {
                ids[l] = i;
                val[l++] = sval[j];
            } else {
                w->tmp_i[r] = i;
                w->tmp_v[r++] = sval[j];
            }
        }
        memcpy(ids + l, w->tmp_i, sizeof *ids * r);
        memcpy(val + l, w->tmp_v, sizeof *val * r);
    }
    w->start[2 * a + 1] = s0;
    w->end[2 * a + 1] = s0 + nl;
    w->start[2 * a + 2] = s0 + nl;
    w->end[2 * a + 2] = s1;
}

/* Grow one tree on the residuals w->r, set its leaves by the Newton step
 * (scale * sum r / sum h, 0 when |sum h| < 1e-150) times rate, add its
 * variance reductions (n_a imp_a - n_l imp_l - n_r imp_r) / n to imp (D)
 * and its predictions to raw[i*stride]. Returns whether it split. */
static int grow_tree(gbt_work *w, metrics_gbt_node *tree, double scale, double rate, double *imp,
                     double *raw, int stride)
{
    const int nn = w->n_nodes;
    for (int a = 0; a < nn; a++) {
        tree[a] = (metrics_gbt_node){-1, 0.0, 0.0};
        w->start[a] = w->end[a] = 0;
    }
    w->end[0] = w->n;
    for (int a = 0; a < nn; a++) {
        if (w->end[a] == w->start[a] && a > 0)
            continue; /* no such node */
        node_sums(w, a);
        int depth = 0;
        for (int b = a; b > 0; b = (b - 1) / 2)
            depth++;
        /* a leaf at the maximum depth, under two samples or at zero impurity */
        if (depth >= w->depth || w->cnt[a] < 2.0 || impurity(w, a) <= DBL_EPSILON)
            continue;
        find_split(w, tree, a);
        if (tree[a].feature < 0)
            continue;
        partition(w, tree, a, depth + 1 >= w->depth ? 1 : w->D);
        int l = 2 * a + 1, r = 2 * a + 2;
        node_sums(w, l);
        node_sums(w, r);
        imp[tree[a].feature] += (w->cnt[a] * impurity(w, a) - w->cnt[l] * impurity(w, l) -
                                 w->cnt[r] * impurity(w, r)) / (double)w->n;
    }
    /* leaves: the Newton step over their samples */
    for (int a = 0; a < nn; a++) {
        if (tree[a].feature >= 0 || (w->end[a] == w->start[a] && a > 0))
            continue;
        double num = 0.0, den = 0.0;
        for (size_t j = w->start[a]; j < w->end[a]; j++) {
            uint32_t i = a == 0 ? (uint32_t)j : w->wo[j];
            num += w->r[i];
            den += w->h[i];
            w->node[i] = a;
        }
        tree[a].value = fabs(den) < 1e-150 ? 0.0 : rate * scale * num / den;
    }
    for (size_t i = 0; i < w->n; i++)
        raw[i * (size_t)stride] += tree[w->node[i]].value;
    return tree[0].feature >= 0;
}

void metrics_gbt_free(metrics_gbt *m)
{
    if (!m)
        return;
    free(m->classes);
    free(m->init);
    free(m->nodes);
    free(m->importance);
    memset(m, 0, sizeof *m);
}

/* The prior raw scores (DummyClassifier(strategy="prior") through the loss's
 * link, probabilities clipped to [eps, 1 - eps] of float32). */
static void prior_scores(metrics_gbt *m, const int *yi, size_t n)
{
    double c[m->n_classes];
    memset(c, 0, sizeof c);
    for (size_t i = 0; i < n; i++)
        c[yi[i]] += 1.0;
    const double eps = FLT_EPSILON;
    for (int k = 0; k < m->n_classes; k++) {
        double p = c[k] / (double)n;
        c[k] = p < eps ? eps : p > 1.0 - eps ? 1.0 - eps : p;
    }
    if (m->rows == 1)
        m->init[0] = log(c[1] / (1.0 - c[1]));
    else
        for (int k = 0; k < m->rows; k++)
            m->init[k] = log(c[k]);
}

/* Residuals y - p and weights p (1 - p) of row k from the raw scores at the
 * start of the stage (prob (n, rows): softmax or sigmoid). */
static void stage_probs(const double *raw, size_t n, int rows, double *prob)
{
    for (size_t i = 0; i < n; i++) {
        const double *z = raw + i * (size_t)rows;
        double *p = prob + i * (size_t)rows;
        if (rows == 1) {
            p[0] = z[0] >= 0 ? 1.0 / (1.0 + exp(-z[0])) : exp(z[0]) / (1.0 + exp(z[0]));
            continue;
        }
        double mx = z[0], se = 0.0;
        for (int k = 1; k < rows; k++)
            mx = z[k] > mx ? z[k] : mx;
        for (int k = 0; k < rows; k++)
            se += exp(z[k] - mx);
        double lse = mx + log(se);
        for (int k = 0; k < rows; k++)
            p[k] = exp(z[k] - lse);
    }
}

/* The class position of raw scores z (rows): argmax, first on ties; for one
 * row, class 1 when z > 0. */
static int raw_argmax(const double *z, int rows)
{
    if (rows == 1)
        return z[0] > 0.0;
    int best = 0;
    for (int k = 1; k < rows; k++)
        if (z[k] > z[best])
            best = k;
    return best;
}

static int gbt_alloc(metrics_gbt *m, int D, int stages, int depth, err *e)
{
    size_t per = ((size_t)1 << (depth + 1)) - 1;
    m->D = D;
    m->stages = stages;
    m->depth = depth;
    m->init = calloc((size_t)(m->rows ? m->rows : 1), sizeof *m->init);
    m->nodes = calloc((size_t)stages * (size_t)(m->rows ? m->rows : 1) * per, sizeof *m->nodes);
    m->importance = calloc((size_t)D, sizeof *m->importance);
    if (!m->init || !m->nodes || !m->importance)
        return err_set(e, ERR_NOMEM, "metrics: out of memory for %d boosting stages", stages);
    return 0;
}

int metrics_gbt_fit(metrics_gbt *m, const float *x, const int *y, size_t n, int D, int n_labels,
                    int stages, int depth, double rate, int *pred, err *e)
{
    metrics_gbt t;
    memset(&t, 0, sizeof t);
    if (n == 0 || D < 1 || stages < 1 || depth < 1 || depth > GBT_MAX_DEPTH)
        return err_set(e, ERR_INPUT, "metrics: boosted trees need items, features, stages >= 1 "
                                     "and a depth of 1..%d", GBT_MAX_DEPTH);
    int *yi = NULL;
    int rc = metrics_encode_labels(y, n, n_labels, &t.classes, &t.n_classes, &yi, e);
    if (rc)
        return rc;
    t.rows = t.n_classes == 1 ? 0 : t.n_classes == 2 ? 1 : t.n_classes;
    gbt_work w;
    memset(&w, 0, sizeof w);
    double *raw = NULL, *prob = NULL, imp[D], sum_imp[D];
    rc = gbt_alloc(&t, D, stages, depth, e);
    for (size_t i = 0; !rc && t.rows == 0 && pred && i < n; i++)
        pred[i] = t.classes[0];
    if (rc || t.rows == 0)
        goto done;
    rc = work_init(&w, x, n, D, depth, e);
    raw = malloc(sizeof *raw * n * (size_t)t.rows);
    prob = malloc(sizeof *prob * n * (size_t)t.rows);
    if (!rc && (!raw || !prob))
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for boosting scores");
    if (rc)
        goto done;
    prior_scores(&t, yi, n);
    for (size_t i = 0; i < n; i++)
        memcpy(raw + i * (size_t)t.rows, t.init, sizeof *raw * (size_t)t.rows);
    memset(sum_imp, 0, sizeof sum_imp);
    int relevant = 0;
    const double scale = t.rows == 1 ? 1.0 : (double)(t.rows - 1) / (double)t.rows;
    for (int s = 0; s < stages; s++) {
        stage_probs(raw, n, t.rows, prob);
        for (int k = 0; k < t.rows; k++) {
            for (size_t i = 0; i < n; i++) {
                double p = prob[i * (size_t)t.rows + k];
                double target = t.rows == 1 ? (yi[i] == 1) : (yi[i] == k);
                w.r[i] = target - p;
                w.h[i] = p * (1.0 - p);
            }
            memset(imp, 0, sizeof imp);
            metrics_gbt_node *tree = t.nodes + ((size_t)s * t.rows + k) * w.n_nodes;
            if (grow_tree(&w, tree, scale, rate, imp, raw + k, t.rows)) {
                relevant++;
                for (int f = 0; f < D; f++)
                    sum_imp[f] += imp[f];
            }
        }
    }
    for (size_t i = 0; pred && i < n; i++) /* the raw scores predict's loop would sum */
        pred[i] = t.classes[raw_argmax(raw + i * (size_t)t.rows, t.rows)];
    double tot = 0.0;
    for (int f = 0; f < D; f++)
        tot += sum_imp[f] / (double)(relevant ? relevant : 1);
    for (int f = 0; f < D; f++)
        t.importance[f] = relevant && tot > 0.0 ? sum_imp[f] / relevant / tot : 0.0;
done:
    work_free(&w);
    free(raw);
    free(prob);
    free(yi);
    if (rc) {
        metrics_gbt_free(&t);
        return rc;
    }
    *m = t;
    return 0;
}

void metrics_gbt_predict(const metrics_gbt *m, const float *x, size_t n, int *y)
{
    const int nn = (1 << (m->depth + 1)) - 1, R = m->rows;
    double z[R > 0 ? R : 1];
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * (size_t)m->D;
        int best = 0;
        if (R > 0) {
            memcpy(z, m->init, sizeof *z * (size_t)R);
            for (int s = 0; s < m->stages; s++)
                for (int k = 0; k < R; k++) {
                    const metrics_gbt_node *tree = m->nodes + ((size_t)s * R + k) * nn;
                    int a = 0;
                    while (tree[a].feature >= 0)
                        a = (double)xi[tree[a].feature] <= tree[a].threshold ? 2 * a + 1
                                                                              : 2 * a + 2;
                    z[k] += tree[a].value;
                }
            best = raw_argmax(z, R);
        }
        y[i] = m->classes[best];
    }
}
