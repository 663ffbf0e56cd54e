/* sim/profile_cw.c — constant-wavelength peaks as GSAS-II computes them
 * (docs/gsas2-cw.md §8.2-8.6): positions, widths with the default sample
 * broadening, the Ka2 placement, Lorentz-polarisation, the profile window, and
 * the Thompson-Cox-Hastings pseudo-Voigt with Finger-Cox-Jephcoat axial-divergence
 * asymmetry exactly as GSAS-II's PSVFCJO evaluates it (its quirks included: the
 * mistyped pi of its Lorentzian, the e^-20 floor of its Gaussian, the quadrature
 * size from mixed units).
 *
 * bf_cw_profile_eval is the reference path (double precision; GSAS-II's Fortran
 * is single precision, which moves the last ~7th digit). The simulator uses the
 * table in this file (cw_table_*), checked against it by tests. */
#include "sim_internal.h"

#include "core/clones.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEG (M_PI / 180.0)
#define FWHM_PER_SIGMA_F 2.35482005   /* PSVOIGT's constant */
#define SQRT_2PI_F 2.506628275
#define PI_LORENTZ 3.1415292654       /* lorentz.for's pi, 2e-5 low (sic) */
#define SHL_FLOOR 0.002               /* getPowderProfile: shl = max(SH/L, 0.002) */
#define EXP_MINUS_20 2.061153622438558e-9

double bf_cw_position_deg(const bf_instrument *inst, double d_A)
{
    const double s = inst->lam1_A / (2.0 * d_A);
    if (!(s <= 1.0))
        return NAN;
    return 2.0 * asin(s) / DEG + inst->zero;
}

void bf_cw_peak_at(const bf_instrument *inst, const bf_sample *s, double tth_deg,
                   bf_cw_peak *out)
{
    const double theta = 0.5 * tth_deg * DEG, t = tan(theta), c = cos(theta);
    /* GetSampleSigGam, CW branch: isotropic size and microstrain (centidegrees) */
    const double size = 1.8 * inst->lam1_A / (M_PI * s->size_um * c);
    const double strain = 0.018 * s->mustrain * t / M_PI;
    const double g_size = size * (1.0 - s->size_mix), g_strain = strain * (1.0 - s->strain_mix);
    const double sig = inst->u * t * t + inst->v * t + inst->w +
                       (g_size * g_size + g_strain * g_strain) / (8.0 * M_LN2);
    const double gam = inst->x / c + inst->y * t + inst->z + size * s->size_mix +
                       strain * s->strain_mix;
    out->tth_deg = tth_deg;
    out->sig_cdeg2 = fmax(0.001, sig);
    out->gam_cdeg = fmax(0.001, gam);
    out->shl = fmax(inst->shl, SHL_FLOOR);
}

double bf_cw_ka2_position_deg(const bf_instrument *inst, double tth_deg)
{
    /* first order in dlambda, with pos (Zero included) in the tangent, as GSAS-II */
    return tth_deg + (360.0 / M_PI) * ((inst->lam2_A - inst->lam1_A) / inst->lam1_A) *
                         tan(0.5 * tth_deg * DEG);
}

double bf_cw_lorentz_polarization(const bf_instrument *inst, double tth_deg)
{
    const double theta = 0.5 * tth_deg * DEG, sn = sin(theta);
    double pol = 1.0;
    if (inst->kind == BF_INST_PXC) {
        const double p = inst->polariz, az = inst->azimuth_deg * DEG;
        const double c2 = cos(tth_deg * DEG), ca = cos(az), sa = sin(az);
        pol = ((1.0 - p) * ca * ca + p * sa * sa) * c2 * c2 + (1.0 - p) * sa * sa + p * ca * ca;
    }
    return pol / (2.0 * sn * sn * cos(theta));
}

void bf_cw_window(const bf_cw_peak *p, double *below_deg, double *above_deg)
{
    /* getWidthsCW: fwhm in degrees, shl added in degrees as coded */
    const double fwhm = 2.355 * sqrt(p->sig_cdeg2) / 100.0 + p->gam_cdeg / 100.0;
    double fmin = 50.0 * (fwhm + p->shl * fabs(cos(p->tth_deg * DEG))), fmax = 75.0 * fwhm;
    if (p->tth_deg > 90.0) {
        const double t = fmin;
        fmin = fmax;
        fmax = t;
    }
    *below_deg = fmin;
    *above_deg = fmax;
}

/* ---- The symmetric part: PSVOIGT -------------------------------------------- */
typedef struct {
    double fwhm, eta;                 /* TCH total FWHM (centideg) and Lorentzian fraction */
    double gauss_norm, inv_2s2;       /* G(D) = gauss_norm exp(max(-20, -D^2 inv_2s2)) */
    double lorentz_num;               /* L(D) = lorentz_num / (F^2 + 4 D^2) */
} tch_shape;

static void tch_shape_init(tch_shape *t, double sig_cdeg2, double gam_cdeg)
{
    const double fg = FWHM_PER_SIGMA_F * fmax(sqrt(sig_cdeg2), 0.001), fl = gam_cdeg;
    const double fg2 = fg * fg, fl2 = fl * fl;
    const double f5 = fg2 * fg2 * fg + 2.69269 * fg2 * fg2 * fl + 2.42843 * fg2 * fg * fl2 +
                      4.47163 * fg2 * fl2 * fl + 0.07842 * fg * fl2 * fl2 + fl2 * fl2 * fl;
    const double f = pow(f5, 0.2), q = fl / f;
    t->fwhm = f;
    t->eta = 1.36603 * q - 0.47719 * q * q + 0.11116 * q * q * q;
    const double s = f / FWHM_PER_SIGMA_F;
    t->gauss_norm = FWHM_PER_SIGMA_F / (SQRT_2PI_F * f);
    t->inv_2s2 = 1.0 / (2.0 * s * s);
    t->lorentz_num = f > 5e-6 ? 2.0 * f / PI_LORENTZ : 0.0;
}

static inline double tch_eval(const tch_shape *t, double d_cdeg)
{
    const double lorentz = t->lorentz_num / (t->fwhm * t->fwhm + 4.0 * d_cdeg * d_cdeg);
    const double z = d_cdeg * d_cdeg * t->inv_2s2;
    /* the clamp as PSVOIGT has it; exp(-20) is a constant, so far points skip the exp */
    const double gauss = t->gauss_norm * (z < 20.0 ? exp(-z) : EXP_MINUS_20);
    return t->eta * lorentz + (1.0 - t->eta) * gauss;
}

/* ---- The asymmetry: FCJ quadrature ------------------------------------------ */
#define FCJ_MAX_NODES 200

typedef struct {
    int n;                            /* nodes used (N/2) */
    double shift_cdeg[FCJ_MAX_NODES]; /* centre of node k relative to the peak, 100 (delta_k - 2theta) */
    double weight[FCJ_MAX_NODES];     /* W_k / sum W */
} fcj_kernel;

/* Gauss-Legendre nodes and weights on [-1, 1] (Newton on P_n; Numerical Recipes'
 * scheme, to full double precision). */
static void gauss_legendre(int n, double *x, double *w)
{
    for (int i = 0; i < (n + 1) / 2; i++) {
        double z = cos(M_PI * (i + 0.75) / (n + 0.5)), pp = 0.0;
        for (int it = 0; it < 100; it++) {
            double p1 = 1.0, p2 = 0.0;
            for (int j = 1; j <= n; j++) {
                const double p3 = p2;
                p2 = p1;
                p1 = ((2.0 * j - 1.0) * z * p2 - (j - 1.0) * p3) / j;
            }
            pp = n * (z * p1 - p2) / (z * z - 1.0);
            const double z1 = z;
            z = z1 - p1 / pp;
            if (fabs(z - z1) < 1e-15)
                break;
        }
        x[i] = z;                     /* positive root first */
        x[n - 1 - i] = -z;
        w[i] = w[n - 1 - i] = 2.0 / ((1.0 - z * z) * pp * pp);
    }
}

/* The quadrature size PSVFCJO picks: K from the spread in degrees over gamma in
 * centidegrees (mixed units as coded), rounded up to its list of sizes. */
static int fcj_quadrature_size(double spread_deg, double gam_cdeg)
{
    const int k = gam_cdeg > 0.0 ? (int)(300.0 * spread_deg / gam_cdeg) : (int)(200.0 * spread_deg);
    if (k <= 30)
        return k <= 2 ? 2 : k + (k & 1);
    if (k <= 120)
        return 10 * ((k + 9) / 10);
    if (k <= 300)
        return 20 * ((k + 19) / 20);
    return 400;
}

/* Gauss-Legendre rules by size, computed once per table build (sizes <= 400). */
typedef struct {
    double *x[401], *w[401];
} gl_cache;

static void gl_cache_free(gl_cache *c)
{
    for (int n = 0; n <= 400; n++) {
        free(c->x[n]);
        free(c->w[n]);
    }
}

/* Nodes and weights of the n-point rule; NULL when out of memory. */
static const double *gl_rule(gl_cache *c, int n, double *x, double *w, const double **weights)
{
    if (c == NULL) { /* the reference path: computed every time */
        gauss_legendre(n, x, w);
        *weights = w;
        return x;
    }
    if (c->x[n] == NULL) {
        c->x[n] = malloc((size_t)n * sizeof(double));
        c->w[n] = malloc((size_t)n * sizeof(double));
        if (c->x[n] == NULL || c->w[n] == NULL)
            return NULL;
        gauss_legendre(n, c->x[n], c->w[n]);
    }
    *weights = c->w[n];
    return c->x[n];
}

/* 2phi_min of FCJ with S/L = H/L = shl/2: acos(sqrt(1 + shl^2) cos 2theta), 0 or 180
 * where that leaves [-1, 1] (degrees). */
static double fcj_phi_min_deg(double tth_deg, double shl)
{
    const double t = sqrt(1.0 + shl * shl) * cos(tth_deg * DEG);
    return fabs(t) <= 1.0 ? acos(t) / DEG : (t > 0.0 ? 0.0 : 180.0);
}

static int fcj_size_at(double tth_deg, double shl, double gam_cdeg)
{
    return fcj_quadrature_size(fabs(tth_deg - fcj_phi_min_deg(tth_deg, shl)), gam_cdeg);
}

/* The FCJ kernel of a peak at tth_deg with asymmetry shl (A = B = shl / 2) on the
 * n-point rule (GSAS-II's choice: fcj_size_at); -1 when out of memory. cache may be
 * NULL. */
static int fcj_kernel_init(fcj_kernel *k, double tth_deg, double shl, int n, gl_cache *cache)
{
    const double c = cos(tth_deg * DEG), s2 = sin(tth_deg * DEG);
    const double phi_min = fcj_phi_min_deg(tth_deg, shl);
    const double spread = tth_deg - phi_min;
    if (fabs(spread) < 1e-9) { /* 2theta = 90 exactly: no asymmetry (PSVFCJO divides by 0) */
        k->n = 1;
        k->shift_cdeg[0] = 0.0;
        k->weight[0] = 1.0;
        return 0;
    }
    double xs[400], ws[400];
    const double *w = NULL, *x = gl_rule(cache, n, xs, ws, &w);
    if (x == NULL)
        return -1;
    double sum = 0.0;
    k->n = n / 2;
    for (int i = 0; i < k->n; i++) {
        const double delta = phi_min + spread * x[i];
        const double sd = sin(delta * DEG), cd = cos(delta * DEG);
        const double radicand = tth_deg > 45.0 ? cd * cd - c * c : s2 * s2 - sd * sd;
        const double f = radicand > 0.0 ? fabs(c) / sqrt(radicand) : 1.0;
        k->weight[i] = w[i] * (-1.0 + shl * f) / cd;
        k->shift_cdeg[i] = 100.0 * (delta - tth_deg);
        sum += k->weight[i];
    }
    for (int i = 0; i < k->n; i++)
        k->weight[i] /= sum;
    return 0;
}

/* P(D) per centidegree at D = 100 dx (centideg), given the kernel and shape. */
static double fcj_eval(const fcj_kernel *k, const tch_shape *t, double d_cdeg)
{
    double p = 0.0;
    for (int i = 0; i < k->n; i++)
        p += k->weight[i] * tch_eval(t, d_cdeg - k->shift_cdeg[i]);
    return p;
}

double bf_cw_profile_eval(const bf_cw_peak *p, double dx_deg)
{
    tch_shape t;
    fcj_kernel k;
    tch_shape_init(&t, p->sig_cdeg2, p->gam_cdeg);
    fcj_kernel_init(&k, p->tth_deg, p->shl, fcj_size_at(p->tth_deg, p->shl, p->gam_cdeg), NULL);
    return fcj_eval(&k, &t, 100.0 * dx_deg);
}

/* ---- The table (the fast path) ------------------------------------------------
 * With the instrument and sample fixed, a Ka1 peak's shape is a function of its
 * position alone (widths from theta, the FCJ kernel from 2theta), and so is its
 * Ka2 partner's (same widths, kernel at pos2(pos)). Each level j of a table holds
 * F_j P_j(u F_j) sampled in u = D / F (D in centideg, F the TCH FWHM) across the
 * peak's core: the kernel's span plus CORE_FWHM on both sides, widened to
 * 2 spans where the span is wide. A peak between levels blends the two rows at
 * its own u (cubic in u, linear in position). Beyond the core only the
 * Lorentzian part is left; the kernel-weighted mean of Lorentzians is, to second
 * order in the kernel's spread, a Lorentzian about the kernel's mean c with
 * F^2 -> F^2 - 12 var (from L + var/2 L''), added analytically out to GSAS-II's
 * window. */
#define CORE_FWHM 3.0                 /* Gaussian part < e^-24 (7 sigma) beyond this */
#define SAMPLES_PER_FWHM 32.0
#define LEVEL_STEP_DEG 0.1
#define PAD 1

/* The peak (widths, shl) of a level at Ka1 position pos, with the position its kernel
 * sits at (Ka2 tables: pos2), and GSAS-II's quadrature size there. */
static int level_peak(const bf_cw_table *t, double pos_deg, bf_cw_peak *p)
{
    bf_cw_peak_at(t->inst, &t->sample, pos_deg, p);
    if (t->ka2)
        p->tth_deg = bf_cw_ka2_position_deg(t->inst, pos_deg); /* kernel at pos2, widths at pos */
    return fcj_size_at(p->tth_deg, p->shl, p->gam_cdeg);
}

static bf_status build_level(bf_cw_table *t, bf_cw_level *lv, double pos, int quadrature,
                             gl_cache *cache, bf_error *err)
{
    bf_cw_peak p;
    level_peak(t, pos, &p);
    tch_shape shape;
    fcj_kernel k;
    tch_shape_init(&shape, p.sig_cdeg2, p.gam_cdeg);
    if (fcj_kernel_init(&k, p.tth_deg, p.shl, quadrature, cache) != 0)
        return bf_error_set(err, BF_ERR_NOMEM, "CW profile table: out of memory");
    double lo = 0.0, hi = 0.0, mean = 0.0, var = 0.0;
    for (int i = 0; i < k.n; i++) {
        lo = fmin(lo, k.shift_cdeg[i]);
        hi = fmax(hi, k.shift_cdeg[i]);
        mean += k.weight[i] * k.shift_cdeg[i];
    }
    for (int i = 0; i < k.n; i++)
        var += k.weight[i] * (k.shift_cdeg[i] - mean) * (k.shift_cdeg[i] - mean);
    const double f = shape.fwhm, span = hi - lo;
    /* 2 spans keep the tails' second-order expansion accurate; past 100 FWHM the
     * Lorentzian is below 3e-5 of the maximum, so a wider core buys nothing */
    const double margin = fmax(CORE_FWHM * f, fmin(2.0 * span, 100.0 * f));
    lv->u_lo = (lo - margin) / f;
    lv->u_hi = (hi + margin) / f;
    lv->n = (int)ceil((lv->u_hi - lv->u_lo) * SAMPLES_PER_FWHM) + 1;
    lv->du = (lv->u_hi - lv->u_lo) / (lv->n - 1);
    lv->mean_shift_cdeg = mean;
    lv->var_shift_cdeg2 = var;
    lv->values = malloc((size_t)(lv->n + 2 * PAD + 1) * sizeof *lv->values);
    if (lv->values == NULL)
        return bf_error_set(err, BF_ERR_NOMEM, "CW profile table: out of memory");
    for (int i = 0; i < lv->n + 2 * PAD + 1; i++)
        lv->values[i] = f * fcj_eval(&k, &shape, (lv->u_lo + (i - PAD) * lv->du) * f);
    return BF_OK;
}

/* Where the quadrature size changes between a and b (sizes na != nb): bisection. */
static double size_boundary(const bf_cw_table *t, double a, double b, int na)
{
    bf_cw_peak p;
    for (int it = 0; it < 60 && b - a > 1e-10; it++) {
        const double mid = 0.5 * (a + b);
        if (level_peak(t, mid, &p) == na)
            a = mid;
        else
            b = mid;
    }
    return b;
}

#define SCAN_STEP_DEG 0.002 /* finer than any stretch of one quadrature size seen */

/* Splits [lo, hi] into stretches of one quadrature size (t->segments). */
static bf_status find_segments(bf_cw_table *t, double lo, double hi, bf_error *err)
{
    int cap = 16;
    t->segments = malloc((size_t)cap * sizeof *t->segments);
    if (t->segments == NULL)
        return bf_error_set(err, BF_ERR_NOMEM, "CW profile table: out of memory");
    bf_cw_peak p;
    double start = lo;
    int n_cur = level_peak(t, lo, &p);
    while (start < hi) {
        double end = hi;
        for (double x = start; x < hi;) { /* scan to the next change of size */
            const double b = fmin(x + SCAN_STEP_DEG, hi);
            if (level_peak(t, b, &p) != n_cur) {
                end = size_boundary(t, x, b, n_cur);
                break;
            }
            x = b;
        }
        if (t->n_segments == cap) {
            cap *= 2;
            bf_cw_segment *grown = realloc(t->segments, (size_t)cap * sizeof *grown);
            if (grown == NULL)
                return bf_error_set(err, BF_ERR_NOMEM, "CW profile table: out of memory");
            t->segments = grown;
        }
        const int levels = 2 + (int)floor((end - start) / LEVEL_STEP_DEG);
        t->segments[t->n_segments++] = (bf_cw_segment){
            .lo_deg = start, .step_deg = (end - start) / (levels - 1),
            .first_level = t->n_levels, .n_levels = levels, .quadrature = n_cur};
        t->n_levels += levels;
        start = end;
        n_cur = level_peak(t, end, &p);
    }
    return BF_OK;
}

bf_status bf_cw_table_build(bf_cw_table *t, const bf_instrument *inst, const bf_sample *sample,
                            double pos_min_deg, double pos_max_deg, int ka2, bf_error *err)
{
    memset(t, 0, sizeof *t);
    t->inst = inst;
    t->sample = *sample;
    t->ka2 = ka2;
    /* a level's margin beyond the range; positions stay inside (0, 180) */
    const double lo = fmax(pos_min_deg - LEVEL_STEP_DEG, 1e-3);
    const double hi = fmin(pos_max_deg + LEVEL_STEP_DEG, 180.0 - 1e-3);
    bf_status st = find_segments(t, lo, hi, err);
    gl_cache *cache = st == BF_OK ? calloc(1, sizeof *cache) : NULL;
    t->levels = st == BF_OK ? calloc((size_t)t->n_levels, sizeof *t->levels) : NULL;
    if (st == BF_OK && (cache == NULL || t->levels == NULL))
        st = bf_error_set(err, BF_ERR_NOMEM, "CW profile table: out of memory");
    for (int s = 0; s < t->n_segments && st == BF_OK; s++) {
        const bf_cw_segment *seg = &t->segments[s];
        for (int i = 0; i < seg->n_levels && st == BF_OK; i++)
            st = build_level(t, &t->levels[seg->first_level + i], seg->lo_deg + i * seg->step_deg,
                             seg->quadrature, cache, err);
    }
    if (cache != NULL) {
        gl_cache_free(cache);
        free(cache);
    }
    if (st != BF_OK)
        bf_cw_table_free(t);
    return st;
}

void bf_cw_table_free(bf_cw_table *t)
{
    if (t == NULL)
        return;
    for (int j = 0; t->levels != NULL && j < t->n_levels; j++)
        free(t->levels[j].values);
    free(t->levels);
    free(t->segments);
    memset(t, 0, sizeof *t);
}

/* The two levels around Ka1 position pos (in its segment) and the blend weight. */
static const bf_cw_level *levels_at(const bf_cw_table *t, double pos_deg, double *frac)
{
    int lo = 0, hi = t->n_segments - 1;
    while (lo < hi) { /* last segment starting at or below pos */
        const int mid = (lo + hi + 1) / 2;
        if (t->segments[mid].lo_deg <= pos_deg)
            lo = mid;
        else
            hi = mid - 1;
    }
    const bf_cw_segment *seg = &t->segments[lo];
    const double u = (pos_deg - seg->lo_deg) / seg->step_deg;
    int j = (int)floor(u);
    j = j < 0 ? 0 : (j > seg->n_levels - 2 ? seg->n_levels - 2 : j);
    const double f = u - j;
    *frac = f < 0.0 ? 0.0 : (f > 1.0 ? 1.0 : f);
    return &t->levels[seg->first_level + j];
}

/* Catmull-Rom cubic through r[-1..2] at f in [0, 1). */
static inline double cubic(const double *r, double f)
{
    const double p0 = r[-1], p1 = r[0], p2 = r[1], p3 = r[2];
    return p1 + 0.5 * f * (p2 - p0 + f * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3 +
                                          f * (3.0 * (p1 - p2) + p3 - p0)));
}

/* The core: both levels' rows at u = (x - centre) u_per_deg, blended. The caller
 * keeps u inside both rows, so indices are only clamped (no branches: vectorised,
 * with per-CPU clones). */
BF_CLONES static void add_core(const double *restrict x, int lo, int hi, double centre_deg,
                               double u_per_deg, const bf_cw_level *l0, const bf_cw_level *l1,
                               double c0, double c1, double *restrict y)
{
    const double inv0 = 1.0 / l0->du, inv1 = 1.0 / l1->du;
    const double *r0 = l0->values + PAD, *r1 = l1->values + PAD;
    const int k0max = l0->n - 2, k1max = l1->n - 2;
    BF_SIMD_LOOP
    for (int i = lo; i < hi; i++) {
        const double u = (x[i] - centre_deg) * u_per_deg;
        double s0 = (u - l0->u_lo) * inv0, s1 = (u - l1->u_lo) * inv1;
        s0 = s0 > 0.0 ? s0 : 0.0; /* not fmax: a libm call would stop the vectoriser */
        s1 = s1 > 0.0 ? s1 : 0.0;
        int k0 = (int)s0, k1 = (int)s1;
        k0 = k0 > k0max ? k0max : k0;
        k1 = k1 > k1max ? k1max : k1;
        y[i] += c0 * cubic(r0 + k0, s0 - k0) + c1 * cubic(r1 + k1, s1 - k1);
    }
}

/* numpy.searchsorted(x, v) (left) on the uniform grid: first i with x[i] >= v. */
static int grid_search(const bf_grid *g, double v)
{
    int i = (int)floor((v - g->x[0]) / g->step);
    if (i < 0)
        i = 0;
    if (i > g->n)
        i = g->n;
    while (i < g->n && g->x[i] < v)
        i++;
    while (i > 0 && g->x[i - 1] >= v)
        i--;
    return i;
}

/* a / (b + 4 D^2), D = 100 (x - centre) centidegrees: most of a pattern's points lie
 * in some peak's tails (GSAS-II's windows are 125 FWHM wide), so this loop is the
 * simulator's hot spot; vectorised, with per-CPU clones. */
BF_CLONES static void add_tail(const bf_grid *g, int lo, int hi, double centre_deg, double a,
                               double b, double *restrict y)
{
    /* the grid is linear: D_i = D_lo + (i - lo) dD; single precision is ample for a
     * tail (relative 1e-7 of a value itself below 1e-2 of its peak) and twice as wide */
    const float d_lo = (float)(100.0 * (g->x[lo < g->n ? lo : 0] - centre_deg));
    const float dd = (float)(100.0 * g->step), af = (float)a, bf = (float)b;
    BF_SIMD_LOOP
    for (int i = lo; i < hi; i++) {
        const float d = d_lo + (float)(i - lo) * dd;
        y[i] += (double)(af / (bf + 4.0f * d * d));
    }
}

void bf_cw_table_add(const bf_cw_table *t, const bf_cw_peak *p, double centre_deg, double scale,
                     const bf_grid *g, double *y)
{
    bf_cw_peak at = *p;
    at.tth_deg = centre_deg;          /* the window is the line's own (Ka2: at pos2) */
    double below, above;
    bf_cw_window(&at, &below, &above);
    const int i_beg = grid_search(g, centre_deg - below), i_fin = grid_search(g, centre_deg + above);
    if (i_beg >= i_fin)
        return;
    tch_shape shape;
    tch_shape_init(&shape, p->sig_cdeg2, p->gam_cdeg);
    const double f = shape.fwhm;
    double wl;
    const bf_cw_level *l0 = levels_at(t, p->tth_deg, &wl), *l1 = l0 + 1;
    const double u_lo = fmax(l0->u_lo, l1->u_lo), u_hi = fmin(l0->u_hi, l1->u_hi);
    int c_beg = grid_search(g, centre_deg + u_lo * f / 100.0);
    int c_fin = grid_search(g, centre_deg + u_hi * f / 100.0);
    c_beg = c_beg < i_beg ? i_beg : (c_beg > i_fin ? i_fin : c_beg);
    c_fin = c_fin < c_beg ? c_beg : (c_fin > i_fin ? i_fin : c_fin);
    const double c0 = scale * (1.0 - wl) / f, c1 = scale * wl / f;
    add_core(g->x, c_beg, c_fin, centre_deg, 100.0 / f, l0, l1, c0, c1, y);
    /* tails: eta * Lorentzian about the kernel's mean, F^2 - 12 var */
    const double mean = (1.0 - wl) * l0->mean_shift_cdeg + wl * l1->mean_shift_cdeg;
    const double var = (1.0 - wl) * l0->var_shift_cdeg2 + wl * l1->var_shift_cdeg2;
    const double a = scale * shape.eta * shape.lorentz_num, b = f * f - 12.0 * var;
    const double centre_tail = centre_deg + mean / 100.0;
    add_tail(g, i_beg, c_beg, centre_tail, a, b, y);
    add_tail(g, c_fin, i_fin, centre_tail, a, b, y);
}
