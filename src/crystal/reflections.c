/* crystal/reflections.c — Laue-unique reflection lists with powder
 * multiplicities, systematic absences.
 *
 * The structure factors themselves: structure_factor.c.
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
    bf_status st = BF_OK;

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

    st = bf_structure_factor_parts(c, rad, out, err);
    if (st != BF_OK)
        goto fail;
    out->hmax = hmax;
    out->kmax = kmax;
    out->lmax = lmax;
    return BF_OK;
nomem:
    st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory building reflections", c->source);
fail:
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
    free(t->scatterers);
    free(t->group_scatterer);
    free(t->aniso_u);
    free(t->aniso_start);
    free(t->aniso);
    memset(t, 0, sizeof *t);
}

