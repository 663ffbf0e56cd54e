/* sim/peak2d.c — the 2-D pseudo-Voigt Bragg peak of a detector patch and its
 * analytic gradient (sim.h "Bragg-peak detector patches", DESIGN §7). The same
 * function renders simulated patches and is the model of the conventional fit
 * (fit/peak_fit.c), so its Jacobian lives here, next to the value it differentiates. */
#include "braggflow/sim.h"

#include <math.h>

/* Rotation and inverse squared widths of one peak: computed once per patch. */
typedef struct {
    double ct, st;                    /* cos(theta), sin(theta) */
    double isu2, isv2, igu2, igv2;    /* 1 / sigma_u^2, ... */
} peak_consts;

static peak_consts consts_of(const bf_peak2d *p)
{
    peak_consts k;
    k.ct = cos(p->theta);
    k.st = sin(p->theta);
    k.isu2 = 1.0 / (p->sigma_u * p->sigma_u);
    k.isv2 = 1.0 / (p->sigma_v * p->sigma_v);
    k.igu2 = 1.0 / (p->gamma_u * p->gamma_u);
    k.igv2 = 1.0 / (p->gamma_v * p->gamma_v);
    return k;
}

/* Peak value (no background) at (r, c); when g != NULL its 9 derivatives in
 * bf_peak2d order:
 *   du/drow = -sin, du/dcol = -cos, dv/drow = -cos, dv/dcol = sin,
 *   du/dtheta = v, dv/dtheta = -u,
 *   dG/du = -G u / su^2, dG/dsu = G u^2 / su^3,
 *   dL/du = -2 L^2 u / gu^2, dL/dgu = 2 L^2 u^2 / gu^3 (likewise v). */
static inline double peak_at(const bf_peak2d *p, const peak_consts *k, double r, double c,
                             double *g)
{
    const double dr = r - p->row, dc = c - p->col;
    const double u = dc * k->ct + dr * k->st;
    const double v = -dc * k->st + dr * k->ct;
    const double uu = u * u, vv = v * v;
    const double G = exp(-0.5 * (uu * k->isu2 + vv * k->isv2));
    const double L = 1.0 / (1.0 + uu * k->igu2 + vv * k->igv2);
    const double eta = p->eta, A = p->amplitude;
    const double shape = eta * L + (1.0 - eta) * G;
    if (g) {
        const double aG = A * (1.0 - eta) * G; /* A (1 - eta) G */
        const double aL2 = 2.0 * A * eta * L * L; /* 2 A eta L^2 */
        /* dI/du, dI/dv */
        const double du = -aG * u * k->isu2 - aL2 * u * k->igu2;
        const double dv = -aG * v * k->isv2 - aL2 * v * k->igv2;
        g[0] = -du * k->st - dv * k->ct;               /* row */
        g[1] = -du * k->ct + dv * k->st;               /* col */
        g[2] = aG * uu * k->isu2 / p->sigma_u;         /* sigma_u */
        g[3] = aG * vv * k->isv2 / p->sigma_v;         /* sigma_v */
        g[4] = aL2 * uu * k->igu2 / p->gamma_u;        /* gamma_u */
        g[5] = aL2 * vv * k->igv2 / p->gamma_v;        /* gamma_v */
        g[6] = du * v - dv * u;                        /* theta */
        g[7] = A * (L - G);                            /* eta */
        g[8] = shape;                                  /* amplitude */
    }
    return A * shape;
}

void bf_peak2d_add(const bf_peak2d *p, int S, double *img)
{
    const peak_consts k = consts_of(p);
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++)
            img[(size_t)i * S + j] += peak_at(p, &k, i + 0.5, j + 0.5, NULL);
}

void bf_background2d_add(const bf_background2d *bg, int S, double *img)
{
    const double h = 0.5 * S;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++)
            img[(size_t)i * S + j] +=
                bg->level + bg->slope_row * (i + 0.5 - h) + bg->slope_col * (j + 0.5 - h);
}

double bf_peak2d_eval(const bf_peak2d *p, const bf_background2d *bg, int S, double r, double c,
                      double *grad)
{
    const peak_consts k = consts_of(p);
    const double h = 0.5 * S;
    double v = peak_at(p, &k, r, c, grad);
    if (bg) {
        v += bg->level + bg->slope_row * (r - h) + bg->slope_col * (c - h);
    }
    if (grad) {
        grad[9] = 1.0;
        grad[10] = r - h;
        grad[11] = c - h;
    }
    return v;
}

void bf_peak2d_eval_patch(const bf_peak2d *p, const bf_background2d *bg, int S, double *img,
                          double *jac)
{
    const peak_consts k = consts_of(p);
    const double h = 0.5 * S;
    for (int i = 0; i < S; i++) {
        const double r = i + 0.5;
        for (int j = 0; j < S; j++) {
            const double c = j + 0.5;
            const size_t pix = (size_t)i * S + j;
            double *g = jac ? jac + pix * (BF_PEAK2D_NPARAM + BF_BG2D_NPARAM) : NULL;
            double v = peak_at(p, &k, r, c, g);
            if (bg)
                v += bg->level + bg->slope_row * (r - h) + bg->slope_col * (c - h);
            if (g) {
                g[9] = 1.0;
                g[10] = r - h;
                g[11] = c - h;
            }
            img[pix] = v;
        }
    }
}
