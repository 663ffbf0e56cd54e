/* crystal/reflections.c — Laue-unique reflection lists with powder
 * multiplicities, systematic absences and neutron structure factors.
 *
 * Miller indices are row vectors: an operator (R, t) maps hkl to hkl.R, and
 * F(hkl.R) = F(hkl) exp(-2 pi i hkl.t). A reflection is systematically absent
 * when some operator fixes it (hkl.R = hkl) with hkl.t not an integer. The
 * Laue group is {R, -R}; its orbit of hkl gives the powder multiplicity. */
#include "crystal_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAUE_OPS 96

typedef struct {
    int rot[MAX_LAUE_OPS][3][3];
    int n;
} laue_group;

static void hkl_times_rot(const int h[3], const int r[3][3], int out[3])
{
    for (int j = 0; j < 3; j++)
        out[j] = h[0] * r[0][j] + h[1] * r[1][j] + h[2] * r[2][j];
}

/* Distinct rotations R and -R of the operators. */
static void laue_group_build(const bf_crystal *c, laue_group *g)
{
    g->n = 0;
    for (int i = 0; i < c->n_ops; i++) {
        for (int sign = 1; sign >= -1; sign -= 2) {
            int r[3][3];
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    r[a][b] = sign * c->ops[i].rot[a][b];
            int seen = 0;
            for (int k = 0; k < g->n && !seen; k++)
                seen = memcmp(g->rot[k], r, sizeof r) == 0;
            if (!seen && g->n < MAX_LAUE_OPS)
                memcpy(g->rot[g->n++], r, sizeof r);
        }
    }
}

static int hkl_greater(const int a[3], const int b[3])
{
    if (a[0] != b[0])
        return a[0] > b[0];
    if (a[1] != b[1])
        return a[1] > b[1];
    return a[2] > b[2];
}

/* Multiplicity of h if it is the (lexicographically largest) representative
 * of its Laue orbit, else 0. */
static int laue_representative_mult(const laue_group *g, const int h[3])
{
    int orbit[MAX_LAUE_OPS][3];
    int n = 0;
    for (int i = 0; i < g->n; i++) {
        int e[3];
        hkl_times_rot(h, g->rot[i], e);
        if (hkl_greater(e, h))
            return 0;
        int seen = 0;
        for (int k = 0; k < n && !seen; k++)
            seen = orbit[k][0] == e[0] && orbit[k][1] == e[1] && orbit[k][2] == e[2];
        if (!seen)
            memcpy(orbit[n++], e, sizeof e);
    }
    return n;
}

static int systematically_absent(const bf_crystal *c, const int h[3])
{
    for (int i = 0; i < c->n_ops; i++) {
        int e[3];
        hkl_times_rot(h, c->ops[i].rot, e);
        if (e[0] != h[0] || e[1] != h[1] || e[2] != h[2])
            continue;
        double phase = h[0] * c->ops[i].trans[0] + h[1] * c->ops[i].trans[1] +
                       h[2] * c->ops[i].trans[2];
        if (fabs(phase - round(phase)) > 1e-6)
            return 1;
    }
    return 0;
}

int bf_hkl_equivalent(const bf_crystal *c, int h1, int k1, int l1, int h2, int k2, int l2)
{
    laue_group g;
    laue_group_build(c, &g);
    const int h[3] = {h1, k1, l1};
    for (int i = 0; i < g.n; i++) {
        int e[3];
        hkl_times_rot(h, g.rot[i], e);
        if (e[0] == h2 && e[1] == k2 && e[2] == l2)
            return 1;
    }
    return 0;
}

/* ---- Atom positions in the conventional cell -------------------------------- */
typedef struct {
    double r[3];
    double weight_fm, weight_imag_fm;  /* occupancy * (b + i b'') */
    int group;               /* Uiso group */
} site;

static int same_position(const double a[3], const double b[3])
{
    for (int j = 0; j < 3; j++) {
        double d = fabs(a[j] - b[j]);
        d = fmin(d, 1.0 - d); /* periodic */
        if (d > 1e-4)
            return 0;
    }
    return 1;
}

/* Every distinct image of every atom: sum over these = GSAS-II's sum over all
 * operators weighted by site multiplicity / number of operators. */
static bf_status expand_sites(const bf_crystal *c, const bf_radiation *rad, const double *groups,
                              int n_groups, site **out, int *n_out, bf_error *err)
{
    site *s = malloc((size_t)c->n_atoms * (size_t)(c->n_ops > 0 ? c->n_ops : 1) * sizeof *s);
    if (s == NULL)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory expanding atom sites", c->source);
    int n = 0;
    for (int a = 0; a < c->n_atoms; a++) {
        const bf_atom *at = &c->atoms[a];
        double b = 0, b_imag = 0;
        bf_status st = rad->kind == BF_RADIATION_NEUTRON
                           ? bf_neutron_b(at->element, rad->b_table, &b, &b_imag, err)
                           : bf_error_set(err, BF_ERR_UNSUPPORTED, "X-ray structure factors: "
                                          "not implemented yet");
        if (st != BF_OK) {
            free(s);
            bf_error_prefix(err, "%s: atom %s", c->source, at->label);
            return st;
        }
        int group = 0;
        while (group < n_groups && groups[group] != at->uiso_A2)
            group++;
        int first = n;
        for (int i = 0; i < c->n_ops; i++) {
            const bf_symop *op = &c->ops[i];
            double x[3] = {at->x, at->y, at->z}, r[3];
            for (int j = 0; j < 3; j++)
                r[j] = bf_wrap_fraction(op->rot[j][0] * x[0] + op->rot[j][1] * x[1] +
                                        op->rot[j][2] * x[2] + op->trans[j]);
            int seen = 0;
            for (int k = first; k < n && !seen; k++)
                seen = same_position(s[k].r, r);
            if (!seen) {
                memcpy(s[n].r, r, sizeof r);
                s[n].weight_fm = at->occupancy * b;
                s[n].weight_imag_fm = at->occupancy * b_imag;
                s[n].group = group;
                n++;
            }
        }
    }
    *out = s;
    *n_out = n;
    return BF_OK;
}

bf_radiation bf_radiation_neutron(bf_b_table table)
{
    return (bf_radiation){.kind = BF_RADIATION_NEUTRON, .b_table = table};
}

bf_status bf_reflection_table_build(const bf_crystal *c, const bf_radiation *rad, int hmax,
                                    int kmax, int lmax, bf_reflection_table *out,
                                    bf_error *err)
{
    memset(out, 0, sizeof *out);
    if (c->n_ops <= 0 || c->n_atoms <= 0)
        return bf_error_set(err, BF_ERR_INVALID, "%s: no symmetry operators or no atoms",
                            c->source);
    if (hmax < 0 || kmax < 0 || lmax < 0 || hmax > 200 || kmax > 200 || lmax > 200)
        return bf_error_set(err, BF_ERR_RANGE,
                            "%s: index box %d x %d x %d is outside 0..200", c->source, hmax,
                            kmax, lmax);
    laue_group g;
    laue_group_build(c, &g);
    site *sites = NULL;
    int n_sites = 0;
    bf_status st = BF_OK;

    out->uiso_A2 = malloc((size_t)c->n_atoms * sizeof *out->uiso_A2);
    if (out->uiso_A2 == NULL)
        goto nomem;
    for (int a = 0; a < c->n_atoms; a++) {
        int seen = 0;
        for (int k = 0; k < out->n_groups && !seen; k++)
            seen = out->uiso_A2[k] == c->atoms[a].uiso_A2;
        if (!seen)
            out->uiso_A2[out->n_groups++] = c->atoms[a].uiso_A2;
    }
    st = expand_sites(c, rad, out->uiso_A2, out->n_groups, &sites, &n_sites, err);
    if (st != BF_OK)
        goto fail;

    /* At most about half the box survives (Friedel pairs); grow as needed. */
    size_t cap = 256;
    out->hkl = malloc(cap * sizeof *out->hkl);
    if (out->hkl == NULL)
        goto nomem;
    for (int h = -hmax; h <= hmax; h++)
        for (int k = -kmax; k <= kmax; k++)
            for (int l = -lmax; l <= lmax; l++) {
                const int v[3] = {h, k, l};
                if (h == 0 && k == 0 && l == 0)
                    continue;
                int mult = laue_representative_mult(&g, v);
                if (mult == 0 || systematically_absent(c, v))
                    continue;
                if ((size_t)out->n == cap) {
                    cap *= 2;
                    bf_hkl *grown = realloc(out->hkl, cap * sizeof *grown);
                    if (grown == NULL)
                        goto nomem;
                    out->hkl = grown;
                }
                out->hkl[out->n++] = (bf_hkl){h, k, l, mult};
            }

    size_t nf = (size_t)(out->n > 0 ? out->n : 1) * (size_t)out->n_groups;
    out->f_re = calloc(nf, sizeof *out->f_re);
    out->f_im = calloc(nf, sizeof *out->f_im);
    if (out->f_re == NULL || out->f_im == NULL)
        goto nomem;
    for (int i = 0; i < out->n; i++) {
        const bf_hkl *r = &out->hkl[i];
        for (int s = 0; s < n_sites; s++) {
            double phase = 2.0 * M_PI * (r->h * sites[s].r[0] + r->k * sites[s].r[1] +
                                         r->l * sites[s].r[2]);
            size_t at = (size_t)i * (size_t)out->n_groups + (size_t)sites[s].group;
            /* (b + i b'') e^{i phase}: b'' (an absorber's) rotates its share by 90 deg */
            double cs = cos(phase), sn = sin(phase);
            out->f_re[at] += sites[s].weight_fm * cs - sites[s].weight_imag_fm * sn;
            out->f_im[at] += sites[s].weight_fm * sn + sites[s].weight_imag_fm * cs;
        }
    }
    out->hmax = hmax;
    out->kmax = kmax;
    out->lmax = lmax;
    free(sites);
    return BF_OK;
nomem:
    st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory building reflections", c->source);
fail:
    free(sites);
    bf_reflection_table_free(out);
    return st;
}

void bf_reflection_table_free(bf_reflection_table *t)
{
    if (t == NULL)
        return;
    free(t->hkl);
    free(t->uiso_A2);
    free(t->f_re);
    free(t->f_im);
    memset(t, 0, sizeof *t);
}

double bf_reflection_table_f2(const bf_reflection_table *t, int i, double d_A,
                              const double astar_invA[3])
{
    (void)astar_invA;
    double re = 0.0, im = 0.0;
    for (int g = 0; g < t->n_groups; g++) {
        double dw = exp(-2.0 * M_PI * M_PI * t->uiso_A2[g] / (d_A * d_A));
        size_t at = (size_t)i * (size_t)t->n_groups + (size_t)g;
        re += dw * t->f_re[at];
        im += dw * t->f_im[at];
    }
    return (re * re + im * im) / 100.0; /* fm^2 -> (1e-12 cm)^2 */
}
