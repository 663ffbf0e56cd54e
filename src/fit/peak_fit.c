/* fit/peak_fit.c — the conventional Bragg-peak fit (DESIGN §7, fit.h): one 2-D
 * pseudo-Voigt (sim.h bf_peak2d) on a level or sloped background, least squares
 * with GSL's trust-region Levenberg-Marquardt (gsl_multifit_nlinear_trs_lm, Cholesky
 * solver: the normal equations of 10-12 parameters are cheapest) and the analytic
 * Jacobian of bf_peak2d_eval_patch.
 *
 * Parametrisation (x, what GSL moves) -> model parameters:
 *   row, col, theta, amplitude, background: themselves;
 *   sigma_u, sigma_v, gamma_u, gamma_v = w0 + (S - w0) (1 + sin x) / 2, w0 = 0.2 px:
 *     bounded. With exp(x) (first tried) 10 % of noisy fits ran off to a width of
 *     0.03 px (one pixel's spike) or to infinity (a flat plateau traded against the
 *     background) and never met a test; below ~0.2 px a peak sampled at pixel
 *     centres has no measurable shape and above S it is background;
 *   eta = (1 + sin x) / 2: inside [0, 1] for every x and reaches both ends at a
 *     finite x, so a pure Gaussian or Lorentzian is found exactly (a logistic map
 *     would send x to infinity). The derivative vanishes at the ends; the fit
 *     starts at eta = 1/2 (and widths inside their range), where it does not.
 * Weights: Poisson counts plus Gaussian read noise, w = 1 / (max(model, 0) +
 * read_sigma^2), evaluated at fixed parameters (iteratively reweighted): pass 1
 * uses the initial guess's model, each further pass the previous pass's fit
 * (warm start). Weights from the data instead of the model bias the fit
 * towards low pixels (Neyman's chi^2); weights that move with x inside one solve
 * would make the Jacobian inconsistent with the objective. */
#include "braggflow/fit.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_multifit_nlinear.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NPAR = BF_PEAK2D_NPARAM + BF_BG2D_NPARAM }; /* 12 */

void bf_fit_options_defaults(bf_fit_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_iter = 100;
    o->xtol = 1e-4;
    o->gtol = 1e-6;
    o->ftol = 1e-6;
    o->sloped_background = 1;
    o->read_sigma = 2.0;
    o->passes = 2;
    o->mask_neighbour = 1;
}

/* Per-thread state: one GSL workspace for patches of one size, reused patch after patch. */
typedef struct {
    int S, n, p, sloped;
    gsl_multifit_nlinear_workspace *w;
    gsl_multifit_nlinear_fdf fdf;
    gsl_vector *x, *wts;
    double *y;                        /* [n] the patch */
    double *model;                    /* [n] */
    double *jac;                      /* [n * NPAR] d model / d (bf_peak2d, bf_background2d) */
    double *mask;                     /* [n] 1: pixel fitted, 0: masked (a neighbour) */
    int n_used;                       /* pixels with mask 1 */
} fit_ws;

/* widths live in [WIDTH_MIN_PX, S]: w = lo + (hi - lo) (1 + sin x) / 2 (file comment) */
#define WIDTH_MIN_PX 0.2
static inline double width_hi(const fit_ws *ws) { return ws->S; }
static inline double width_of(const fit_ws *ws, double x)
{
    return WIDTH_MIN_PX + (width_hi(ws) - WIDTH_MIN_PX) * 0.5 * (1.0 + sin(x));
}
static inline double width_dx(const fit_ws *ws, double x)
{
    return (width_hi(ws) - WIDTH_MIN_PX) * 0.5 * cos(x);
}
static inline double width_x(const fit_ws *ws, double w)
{
    double t = 2.0 * (w - WIDTH_MIN_PX) / (width_hi(ws) - WIDTH_MIN_PX) - 1.0;
    return asin(fmin(fmax(t, -1.0), 1.0));
}

static void unpack(const fit_ws *ws, const double *x, bf_peak2d *p, bf_background2d *bg)
{
    p->row = x[0];
    p->col = x[1];
    p->sigma_u = width_of(ws, x[2]);
    p->sigma_v = width_of(ws, x[3]);
    p->gamma_u = width_of(ws, x[4]);
    p->gamma_v = width_of(ws, x[5]);
    p->theta = x[6];
    p->eta = 0.5 * (1.0 + sin(x[7]));
    p->amplitude = x[8];
    bg->level = x[9];
    bg->slope_row = ws->sloped ? x[10] : 0.0;
    bg->slope_col = ws->sloped ? x[11] : 0.0;
}

/* f_i = model_i - y_i (GSL applies the weights) */
static int resid_f(const gsl_vector *xv, void *user, gsl_vector *f)
{
    fit_ws *ws = user;
    bf_peak2d p;
    bf_background2d bg;
    unpack(ws, xv->data, &p, &bg);
    bf_peak2d_eval_patch(&p, &bg, ws->S, ws->model, NULL);
    for (int i = 0; i < ws->n; i++) {
        double r = ws->model[i] - ws->y[i];
        if (!isfinite(r))
            return GSL_EBADFUNC;
        f->data[(size_t)i * f->stride] = r;
    }
    return GSL_SUCCESS;
}

/* J_ik = d model_i / d x_k: the model gradient times d parameter / d x (chain rule) */
static int resid_df(const gsl_vector *xv, void *user, gsl_matrix *J)
{
    fit_ws *ws = user;
    bf_peak2d p;
    bf_background2d bg;
    unpack(ws, xv->data, &p, &bg);
    bf_peak2d_eval_patch(&p, &bg, ws->S, ws->model, ws->jac);
    double chain[NPAR];
    for (int k = 0; k < NPAR; k++)
        chain[k] = 1.0;
    for (int k = 2; k <= 5; k++)
        chain[k] = width_dx(ws, xv->data[k]);
    chain[7] = 0.5 * cos(xv->data[7]);
    for (int i = 0; i < ws->n; i++) {
        const double *g = ws->jac + (size_t)i * NPAR;
        double *row = J->data + (size_t)i * J->tda;
        for (int k = 0; k < ws->p; k++)
            row[k] = g[k] * chain[k];
    }
    return GSL_SUCCESS;
}

static void ws_free(fit_ws *ws)
{
    if (ws->w)
        gsl_multifit_nlinear_free(ws->w);
    if (ws->x)
        gsl_vector_free(ws->x);
    if (ws->wts)
        gsl_vector_free(ws->wts);
    free(ws->y);
    free(ws->model);
    free(ws->jac);
    free(ws->mask);
    memset(ws, 0, sizeof *ws);
}

static bf_status ws_alloc(fit_ws *ws, int S, int sloped, bf_error *err)
{
    memset(ws, 0, sizeof *ws);
    ws->S = S;
    ws->n = S * S;
    ws->sloped = sloped;
    ws->p = sloped ? NPAR : NPAR - 2;
    gsl_multifit_nlinear_parameters params = gsl_multifit_nlinear_default_parameters();
    params.trs = gsl_multifit_nlinear_trs_lm;
    params.solver = gsl_multifit_nlinear_solver_cholesky;
    params.scale = gsl_multifit_nlinear_scale_more;
    ws->w = gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &params, (size_t)ws->n,
                                       (size_t)ws->p);
    ws->x = gsl_vector_alloc(NPAR); /* unpack reads 12; GSL sees the first p */
    ws->wts = gsl_vector_alloc((size_t)ws->n);
    ws->y = malloc((size_t)ws->n * sizeof *ws->y);
    ws->model = malloc((size_t)ws->n * sizeof *ws->model);
    ws->jac = malloc((size_t)ws->n * NPAR * sizeof *ws->jac);
    ws->mask = malloc((size_t)ws->n * sizeof *ws->mask);
    if (!ws->w || !ws->x || !ws->wts || !ws->y || !ws->model || !ws->jac || !ws->mask) {
        ws_free(ws);
        return bf_error_set(err, BF_ERR_NOMEM, "fit: workspace for %d x %d patches", S, S);
    }
    ws->fdf.f = resid_f;
    ws->fdf.df = resid_df;
    ws->fdf.fvv = NULL;
    ws->fdf.n = (size_t)ws->n;
    ws->fdf.p = (size_t)ws->p;
    ws->fdf.params = ws;
    return BF_OK;
}

static double median(double *v, int n)
{
    bf_sort_doubles(v, n);
    return bf_percentile_sorted(v, n, 0.5);   /* the mean of the middle two for even n */
}

/* Initial guess (x layout as unpack):
 *   background: median of the border pixels; slopes from the medians of opposite edges;
 *   centre: the brightest pixel within max(1, S/8) pixels of the central one (BraggNN
 *     crops a patch so that the peak's pixel is the central one, and the simulated
 *     patches put it within 1 px of there; a brighter neighbour further out is not taken),
 *     refined by the centroid of the counts above background in a 5 x 5 window;
 *   widths, rotation: the second moments of that window (eigenvectors give theta),
 *     Lorentzian HWHM equal to the Gaussian's (1.1774 sigma); eta = 1/2;
 *   amplitude: brightest pixel minus background. */
static void initial_guess(const fit_ws *ws, double *x)
{
    const int S = ws->S;
    const double *y = ws->y;
    const double *m = ws->mask;
    double edge[4 * 64];
    int ne = 0;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++)
            if ((i == 0 || j == 0 || i == S - 1 || j == S - 1) && m[(size_t)i * S + j] > 0)
                edge[ne++] = y[(size_t)i * S + j];
    if (ne == 0) /* cannot happen: the mask keeps the fitted centre's half */
        edge[ne++] = y[0];
    const double level = median(edge, ne);
    double srow = 0, scol = 0;
    if (ws->sloped) {
        double a[64], b[64], c[64], d[64];
        int na = 0, nb = 0, nc = 0, nd = 0;
        for (int k = 0; k < S; k++) {
            if (m[k] > 0)
                a[na++] = y[k];                               /* first row */
            if (m[(size_t)(S - 1) * S + k] > 0)
                b[nb++] = y[(size_t)(S - 1) * S + k];         /* last row */
            if (m[(size_t)k * S] > 0)
                c[nc++] = y[(size_t)k * S];                   /* first column */
            if (m[(size_t)k * S + S - 1] > 0)
                d[nd++] = y[(size_t)k * S + S - 1];           /* last column */
        }
        if (na && nb)
            srow = (median(b, nb) - median(a, na)) / (S - 1);
        if (nc && nd)
            scol = (median(d, nd) - median(c, nc)) / (S - 1);
    }
    const double h = 0.5 * S;
#define BG(i, j) (level + srow * ((i) + 0.5 - h) + scol * ((j) + 0.5 - h))
    const int mid = S / 2, R = S / 8 > 1 ? S / 8 : 1;
    int bi = mid, bj = mid;
    double best = -INFINITY;
    for (int i = mid - R; i <= mid + R; i++)
        for (int j = mid - R; j <= mid + R; j++) {
            if (i < 0 || j < 0 || i >= S || j >= S || !(m[(size_t)i * S + j] > 0))
                continue;
            double v = y[(size_t)i * S + j] - BG(i, j);
            if (v > best) {
                best = v;
                bi = i;
                bj = j;
            }
        }
    double s0 = 0, sr = 0, sc = 0;
    for (int i = bi - 2; i <= bi + 2; i++)
        for (int j = bj - 2; j <= bj + 2; j++) {
            if (i < 0 || j < 0 || i >= S || j >= S || !(m[(size_t)i * S + j] > 0))
                continue;
            double v = y[(size_t)i * S + j] - BG(i, j);
            if (v <= 0)
                continue;
            s0 += v;
            sr += v * (i + 0.5);
            sc += v * (j + 0.5);
        }
    double r0 = bi + 0.5, c0 = bj + 0.5;
    if (s0 > 0) {
        r0 = sr / s0;
        c0 = sc / s0;
    }
    double crr = 0, ccc = 0, crc = 0;
    if (s0 > 0) {
        for (int i = bi - 2; i <= bi + 2; i++)
            for (int j = bj - 2; j <= bj + 2; j++) {
                if (i < 0 || j < 0 || i >= S || j >= S || !(m[(size_t)i * S + j] > 0))
                    continue;
                double v = y[(size_t)i * S + j] - BG(i, j);
                if (v <= 0)
                    continue;
                double dr = i + 0.5 - r0, dc = j + 0.5 - c0;
                crr += v * dr * dr;
                ccc += v * dc * dc;
                crc += v * dr * dc;
            }
        crr /= s0;
        ccc /= s0;
        crc /= s0;
    }
#undef BG
    /* u at theta from the column axis towards rows: variance along (cos, sin) in (c, r) */
    const double theta = 0.5 * atan2(2.0 * crc, ccc - crr);
    const double mean = 0.5 * (ccc + crr), dev = sqrt(0.25 * (ccc - crr) * (ccc - crr) + crc * crc);
    double su = sqrt(fmax(mean + dev, 0.0)), sv = sqrt(fmax(mean - dev, 0.0));
    const double wmin = 0.4, wmax = 0.5 * S;
    su = fmin(fmax(su, wmin), wmax);
    sv = fmin(fmax(sv, wmin), wmax);
    x[0] = r0;
    x[1] = c0;
    x[2] = width_x(ws, su);
    x[3] = width_x(ws, sv);
    x[4] = width_x(ws, 1.1774 * su);
    x[5] = width_x(ws, 1.1774 * sv);
    x[6] = theta;
    x[7] = 0.0; /* eta = 1/2 */
    x[8] = best > 0 ? best : 1.0;
    x[9] = level;
    x[10] = srow;
    x[11] = scol;
}

/* Weights from the model at x: Poisson variance plus read noise. */
static void set_weights(fit_ws *ws, const double *x, double read_var)
{
    bf_peak2d p;
    bf_background2d bg;
    unpack(ws, x, &p, &bg);
    bf_peak2d_eval_patch(&p, &bg, ws->S, ws->model, NULL);
    for (int i = 0; i < ws->n; i++)
        ws->wts->data[i] = ws->mask[i] / (fmax(ws->model[i], 0.0) + read_var);
}

static bf_status check_patch(const float *patch, int S, bf_error *err)
{
    if (S < 3 || S > 63)
        return bf_error_set(err, BF_ERR_INVALID, "patch size %d: expected 3..63", S);
    float lo = patch[0], hi = patch[0];
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            float v = patch[(size_t)i * S + j];
            if (!isfinite(v))
                return bf_error_set(err, BF_ERR_INVALID, "pixel (%d, %d) is %s", i, j,
                                    isnan(v) ? "NaN" : "infinite");
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    if (!(hi > lo))
        return bf_error_set(err, BF_ERR_INVALID, "flat patch (every pixel %g): no peak to fit",
                            (double)lo);
    return BF_OK;
}

static bf_status check_options(const bf_fit_options *o, bf_error *err)
{
    if (o->max_iter < 1 || o->passes < 1 || !(o->read_sigma > 0) || !(o->xtol >= 0) ||
        !(o->gtol >= 0) || !(o->ftol >= 0))
        return bf_error_set(err, BF_ERR_INVALID,
                            "fit options: max_iter %d, passes %d, read_sigma %g: expected "
                            "max_iter >= 1, passes >= 1, read_sigma > 0",
                            o->max_iter, o->passes, o->read_sigma);
    return BF_OK;
}

static double sumsq(const gsl_vector *f)
{
    double s = 0;
    for (size_t i = 0; i < f->size; i++) {
        double r = f->data[i * f->stride];
        s += r * r;
    }
    return s;
}

/* Masks (weight 0) every pixel closer to (nr, nc) than to the initial centre x0.
 * Returns 1 when enough pixels are left to fit. */
static int mask_half(fit_ws *ws, const double *x0, double nr, double nc)
{
    const int S = ws->S;
    int kept = 0;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            const double r = i + 0.5, c = j + 0.5;
            const double dn = (r - nr) * (r - nr) + (c - nc) * (c - nc);
            const double dm = (r - x0[0]) * (r - x0[0]) + (c - x0[1]) * (c - x0[1]);
            ws->mask[(size_t)i * S + j] = dn < dm ? 0.0 : 1.0;
            kept += dn >= dm;
        }
    ws->n_used = kept;
    return kept > ws->p;
}

/* Before any fit: a second local maximum of the 3 x 3 sums of the patch, at least
 * NB_SEP_PX from the initial centre x0, that rises above the 3 x 3 sum half way
 * towards x0 by NB_DIP_SIGMA standard deviations (a dip between two peaks; the tail
 * of one peak falls monotonically). Returns 1 and masks its half when found. */
#define NB_SEP_PX 3.0
#define NB_DIP_SIGMA 4.0
static int mask_second_maximum(fit_ws *ws, const double *x0, double read_var)
{
    const int S = ws->S;
    double *box = ws->model; /* scratch: 3 x 3 sums */
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            double sum = 0;
            for (int a = i - 1; a <= i + 1; a++)
                for (int b = j - 1; b <= j + 1; b++)
                    if (a >= 0 && b >= 0 && a < S && b < S)
                        sum += ws->y[(size_t)a * S + b];
            box[(size_t)i * S + j] = sum;
        }
    double best = 0, br = 0, bc = 0;
    for (int i = 1; i < S - 1; i++)
        for (int j = 1; j < S - 1; j++) {
            const double r = i + 0.5, c = j + 0.5;
            const double dr = r - x0[0], dc = c - x0[1];
            if (dr * dr + dc * dc < NB_SEP_PX * NB_SEP_PX)
                continue;
            const double v = box[(size_t)i * S + j];
            int is_max = 1;
            for (int a = i - 1; a <= i + 1 && is_max; a++)
                for (int b = j - 1; b <= j + 1; b++)
                    if ((a != i || b != j) && box[(size_t)a * S + b] >= v) {
                        is_max = 0;
                        break;
                    }
            if (!is_max)
                continue;
            int mi = (int)floor(0.5 * (r + x0[0])), mj = (int)floor(0.5 * (c + x0[1]));
            mi = mi < 0 ? 0 : mi >= S ? S - 1 : mi;
            mj = mj < 0 ? 0 : mj >= S ? S - 1 : mj;
            const double vm = box[(size_t)mi * S + mj];
            /* counts: variance of a 3 x 3 sum ~ its value + 9 read_var */
            const double z = (v - vm) / sqrt(fmax(v, 0.0) + fmax(vm, 0.0) + 18.0 * read_var);
            if (z > best) {
                best = z;
                br = r;
                bc = c;
            }
        }
    if (best < NB_DIP_SIGMA)
        return 0;
    return mask_half(ws, x0, br, bc);
}

/* Fits ws->y (already checked). Never fails: a fit that stops early is flagged. */
/* One weighted solve from x (updated in place), weights from the model at x. Returns 1
 * when a convergence test is met within o->max_iter iterations:
 *   an accepted step moves the centre by <= xtol px along both axes and lowers chi^2 by
 *   <= ftol chi^2 (a flat valley of the shape parameters, such as eta against the
 *   widths, is not worth crawling along once the centre has settled), or
 *   GSL's gradient test with gtol. */
static int run_pass(fit_ws *ws, const bf_fit_options *o, double *x, int *iters, int *status)
{
    gsl_vector_view xv = gsl_vector_view_array(x, (size_t)ws->p);
    set_weights(ws, x, o->read_sigma * o->read_sigma);
    *status = gsl_multifit_nlinear_winit(&xv.vector, ws->wts, &ws->fdf, ws->w);
    if (*status != GSL_SUCCESS)
        return 0;
    int converged = 0;
    double chi2_prev = sumsq(ws->w->f);
    for (int it = 0; it < o->max_iter; it++) {
        *status = gsl_multifit_nlinear_iterate(ws->w);
        (*iters)++;
        int info = 0;
        if (*status == GSL_ENOPROG) {
            /* no step lowers chi^2 any more: at the minimum to rounding, unless the
             * gradient says otherwise */
            converged =
                gsl_multifit_nlinear_test(0.0, o->gtol * 1e3, 0.0, &info, ws->w) == GSL_SUCCESS;
            break;
        }
        if (*status != GSL_SUCCESS)
            break;
        /* every successful iterate is an accepted step (GSL retries rejected ones) */
        const double chi2 = sumsq(ws->w->f);
        const double *dx = ws->w->dx->data;
        if ((fabs(dx[0]) <= o->xtol && fabs(dx[1]) <= o->xtol &&
             chi2_prev - chi2 <= o->ftol * chi2) ||
            gsl_multifit_nlinear_test(0.0, o->gtol, 0.0, &info, ws->w) == GSL_SUCCESS) {
            converged = 1;
            break;
        }
        chi2_prev = chi2;
    }
    memcpy(x, ws->w->x->data, (size_t)ws->p * sizeof *x);
    return converged;
}

/* A second peak reaching into the patch shows as a cluster of large positive
 * residuals after a single-peak fit at x. When the 3 x 3 block around the largest
 * normalised residual, at least NB_MIN_DIST_PX from the fitted centre x and from the
 * initial guess x0, exceeds NB_MIN_SIGNIFICANCE standard deviations, every pixel
 * closer to its centre than to x0's (the fit may have been pulled towards the
 * neighbour; the initial guess is the brightest pixel near the patch centre) is masked
 * (weight 0) and 1 is returned. */
static int mask_half(fit_ws *ws, const double *x0, double nr, double nc);
#define NB_MIN_DIST_PX 2.5
#define NB_MIN_SIGNIFICANCE 6.0
static int mask_neighbour(fit_ws *ws, const double *x, const double *x0, double read_var)
{
    const int S = ws->S;
    bf_peak2d p;
    bf_background2d bg;
    unpack(ws, x, &p, &bg);
    bf_peak2d_eval_patch(&p, &bg, S, ws->model, NULL);
    int bi = -1, bj = -1;
    double zmax = 0;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            const double dr = i + 0.5 - p.row, dc = j + 0.5 - p.col;
            const double dr0 = i + 0.5 - x0[0], dc0 = j + 0.5 - x0[1];
            if (dr * dr + dc * dc < NB_MIN_DIST_PX * NB_MIN_DIST_PX ||
                dr0 * dr0 + dc0 * dc0 < NB_MIN_DIST_PX * NB_MIN_DIST_PX)
                continue;
            const size_t k = (size_t)i * S + j;
            const double z = (ws->y[k] - ws->model[k]) / sqrt(fmax(ws->model[k], 0.0) + read_var);
            if (z > zmax) {
                zmax = z;
                bi = i;
                bj = j;
            }
        }
    if (bi < 0)
        return 0;
    double sres = 0, svar = 0;
    for (int i = bi - 1; i <= bi + 1; i++)
        for (int j = bj - 1; j <= bj + 1; j++) {
            if (i < 0 || j < 0 || i >= S || j >= S)
                continue;
            const size_t k = (size_t)i * S + j;
            sres += ws->y[k] - ws->model[k];
            svar += fmax(ws->model[k], 0.0) + read_var;
        }
    if (sres <= NB_MIN_SIGNIFICANCE * sqrt(svar))
        return 0;
    return mask_half(ws, x0, bi + 0.5, bj + 0.5);
}

/* Fits ws->y (already checked). Never fails: a fit that stops early is flagged. */
static void fit_one(fit_ws *ws, const bf_fit_options *o, bf_peak_fit *out)
{
    double x0[NPAR], x[NPAR];
    for (int i = 0; i < ws->n; i++)
        ws->mask[i] = 1.0;
    ws->n_used = ws->n;
    initial_guess(ws, x0);
    memcpy(x, x0, sizeof x);
    int iters = 0, status = GSL_SUCCESS, masked = 0;
    const double read_var = o->read_sigma * o->read_sigma;
    if (o->mask_neighbour && mask_second_maximum(ws, x0, read_var)) {
        masked = 1;
        initial_guess(ws, x0);
        memcpy(x, x0, sizeof x);
    } else {
        for (int i = 0; i < ws->n; i++)
            ws->mask[i] = 1.0;
        ws->n_used = ws->n;
    }
    int converged = run_pass(ws, o, x, &iters, &status);
    if (o->mask_neighbour && !masked && mask_neighbour(ws, x, x0, read_var)) {
        masked = 1;
        initial_guess(ws, x0); /* without the masked pixels */
        memcpy(x, x0, sizeof x);
        converged = run_pass(ws, o, x, &iters, &status);
    } else if (o->mask_neighbour && !masked) {
        for (int i = 0; i < ws->n; i++)
            ws->mask[i] = 1.0;
        ws->n_used = ws->n;
    }
    for (int pass = 1; pass < o->passes && converged; pass++)
        converged = run_pass(ws, o, x, &iters, &status);
    /* final weighted chi^2 with the last pass's weights (GSL stores sqrt(w) f) */
    const double chi2 = sumsq(gsl_multifit_nlinear_residual(ws->w));
    memset(out, 0, sizeof *out);
    unpack(ws, x, &out->peak, &out->background);
    bf_peak2d_canonical(&out->peak);
    out->chi2 = chi2;
    out->chi2_per_dof = ws->n_used > ws->p ? chi2 / (ws->n_used - ws->p) : NAN;
    out->iterations = iters;
    out->status = status;
    out->masked = masked ? ws->n - ws->n_used : 0;
    /* a centre outside the patch is no fit of this patch's peak */
    int finite = isfinite(chi2) && x[0] >= 0 && x[0] <= ws->S && x[1] >= 0 && x[1] <= ws->S;
    for (int k = 0; k < ws->p; k++)
        finite = finite && isfinite(x[k]);
    out->converged = converged && finite;
}

void bf_peak2d_canonical(bf_peak2d *p)
{
    /* (sigma_u, gamma_u) <-> (sigma_v, gamma_v) with theta + pi/2 is the same peak
     * (u' = v, v' = -u), and so is theta + pi */
    if (p->sigma_u < p->sigma_v) {
        double t = p->sigma_u;
        p->sigma_u = p->sigma_v;
        p->sigma_v = t;
        t = p->gamma_u;
        p->gamma_u = p->gamma_v;
        p->gamma_v = t;
        p->theta += M_PI / 2;
    }
    p->theta = fmod(p->theta, M_PI);
    if (p->theta < 0)
        p->theta += M_PI;
}

static void load_patch(fit_ws *ws, const float *patch)
{
    for (int i = 0; i < ws->n; i++)
        ws->y[i] = patch[i];
}

/* GSL's default error handler aborts (a singular Cholesky factor would end the
 * program); every failure here is reported through return codes instead. */
static void gsl_quiet(void)
{
    static int done;
    int seen;
#pragma omp atomic read
    seen = done;
    if (!seen) {
#pragma omp critical(bf_gsl_handler)
        {
            if (!done) {
                gsl_set_error_handler_off();
#pragma omp atomic write
                done = 1;
            }
        }
    }
}

bf_status bf_fit_patch(const float *patch, int S, const bf_fit_options *o, bf_peak_fit *out,
                       bf_error *err)
{
    bf_fit_options def;
    if (!o) {
        bf_fit_options_defaults(&def);
        o = &def;
    }
    bf_status st = check_options(o, err);
    if (st == BF_OK)
        st = check_patch(patch, S, err);
    if (st != BF_OK)
        return st;
    gsl_quiet();
    fit_ws ws;
    st = ws_alloc(&ws, S, o->sloped_background, err);
    if (st != BF_OK)
        return st;
    load_patch(&ws, patch);
    fit_one(&ws, o, out);
    ws_free(&ws);
    return BF_OK;
}

bf_status bf_fit_patches(const bf_patches *p, const bf_fit_options *o, int threads,
                         bf_peak_fit *out, bf_error *err)
{
    bf_fit_options def;
    if (!o) {
        bf_fit_options_defaults(&def);
        o = &def;
    }
    bf_status st = check_options(o, err);
    if (st != BF_OK)
        return st;
    const int S = p->size;
    if (S < 3 || S > 63)
        return bf_error_set(err, BF_ERR_INVALID, "patch size %d: expected 3..63", S);
    /* check every patch first: the first bad one (lowest index) is the error, whatever
     * the thread count */
    for (long i = 0; i < p->n; i++) {
        st = check_patch(p->patches + (size_t)i * S * S, S, err);
        if (st != BF_OK) {
            bf_error_prefix(err, "patch %ld", i);
            return st;
        }
    }
    if (threads <= 0)
        threads = bf_default_threads();
    if (threads > p->n)
        threads = p->n > 0 ? (int)p->n : 1;
    gsl_quiet();
    int failed = 0;
    bf_error first = {0};
#pragma omp parallel num_threads(threads)
    {
        fit_ws ws;
        bf_error terr = {0};
        if (ws_alloc(&ws, S, o->sloped_background, &terr) != BF_OK) {
#pragma omp critical(bf_fit_err)
            if (!failed) {
                failed = 1;
                first = terr;
            }
        }
#pragma omp barrier
        if (!failed) {
#pragma omp for schedule(dynamic, 32)
            for (long i = 0; i < p->n; i++) {
                load_patch(&ws, p->patches + (size_t)i * S * S);
                fit_one(&ws, o, &out[i]);
            }
        }
        ws_free(&ws);
    }
    if (failed) {
        if (err && err->code == BF_OK)
            *err = first;
        return first.code;
    }
    return BF_OK;
}
