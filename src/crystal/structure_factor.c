/* crystal/structure_factor.c — structure factors as GSAS-II computes them
 * (docs/gsas2.md "Structure factor: the operator average"):
 *
 *   F(h) = sum_j frac_j (mult_j / nOps) sum_k f_j(s) T_jk(h) exp(2 pi i (h.(R_k x_j) + h.t_k))
 *
 * over every operator k (centring included: for an allowed reflection this equals GSAS-II's
 * sum over the point operators, each centring translation contributing the same), with
 * mult_j the site multiplicity in the conventional cell (bf_crystal_site_multiplicity),
 * T = exp(-2 pi^2 Uiso / d^2) for an isotropic atom and exp(-2 pi^2 h'^T B h'), h' = h.R_k,
 * B_ab = a*_a a*_b U_ab, for an anisotropic one. Atoms on or near special positions are
 * so averaged over the operators, not deduplicated into distinct images.
 *
 * The table (bf_reflection_table) keeps what does not depend on the cell: per isotropic
 * (scatterer, Uiso) group the operator sum without f and T; per anisotropic atom, the sums
 * over the operators that share one h' (up to sign: T(h') = T(-h')), with that h'. A
 * pattern then costs one exp per group and per (operator class, distinct U) of the
 * anisotropic atoms, plus f0(s) per scatterer for X-rays. */
#include "crystal_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SITE_TOL 2e-4  /* per fractional coordinate, as GSAS-II's site-symmetry test */
#define F_CACHE 64     /* scatterers whose f is computed once per |F|^2 call */

bf_radiation bf_radiation_neutron(bf_b_table table)
{
    return (bf_radiation){.kind = BF_RADIATION_NEUTRON, .b_table = table};
}

bf_radiation bf_radiation_xray(double wavelength_A)
{
    return (bf_radiation){.kind = BF_RADIATION_XRAY, .wavelength_A = wavelength_A};
}

/* ---- Scatterers ---------------------------------------------------------------- */

/* Canonical form of an element with an optional charge, so that the ways CIFs and
 * GSAS-II write it compare equal: "Ba2+", "Ba+2", "BA+2" -> "Ba+2"; "Na+", "Na1+" ->
 * "Na+1"; "O2-" -> "O-2"; "Si", "SI", "Si0+" -> "Si". 0 when it is not of that shape. */
static int ion_key(const char *sym, char out[16])
{
    char el[4];
    int charge;
    while (isspace((unsigned char)*sym))
        sym++;
    if (bf_type_symbol_split(sym, el, &charge) != 0)
        return 0;
    if (charge == 0)
        snprintf(out, 16, "%s", el);
    else
        snprintf(out, 16, "%s%c%d", el, charge > 0 ? '+' : '-', charge > 0 ? charge : -charge);
    return 1;
}

/* The scatterer of one atom under `rad`; err is left for the caller to prefix. */
static bf_status resolve_scatterer(const bf_atom *at, const bf_radiation *rad, bf_scatterer *s,
                                   bf_error *err)
{
    memset(s, 0, sizeof *s);
    snprintf(s->element, sizeof s->element, "%s", at->element);
    if (rad->kind == BF_RADIATION_NEUTRON) {
        snprintf(s->symbol, sizeof s->symbol, "%s", at->element);
        return bf_neutron_b(at->element, rad->b_table, &s->f_re, &s->f_im, err);
    }
    if (rad->kind != BF_RADIATION_XRAY)
        return bf_error_set(err, BF_ERR_INVALID, "radiation kind %d: neither neutrons nor X-rays",
                            (int)rad->kind);
    s->xray = 1;
    const char *sym = at->type_symbol[0] ? at->type_symbol : at->element;
    char key[16] = "", other[16];
    int have_key = ion_key(sym, key), found = 0;
    for (int i = 0; i < rad->n_f0 && i < BF_MAX_F0_OVERRIDES && !found; i++)
        if (have_key && ion_key(rad->f0[i].symbol, other) && strcmp(other, key) == 0) {
            s->f0 = rad->f0[i];
            found = 1;
        }
    if (!found) {
        bf_status st = bf_xray_f0_lookup(sym, &s->f0, err);
        if (st != BF_OK)
            return st;
    }
    if (!ion_key(s->f0.symbol, s->symbol))
        snprintf(s->symbol, sizeof s->symbol, "%s", s->f0.symbol);
    for (int i = 0; i < rad->n_fprime && i < BF_MAX_FPRIME_OVERRIDES; i++)
        if (strcasecmp(rad->fprime[i].element, at->element) == 0) {
            s->f_re = rad->fprime[i].f_prime;
            s->f_im = rad->fprime[i].f_double_prime;
            return BF_OK;
        }
    if (!(rad->wavelength_A > 0.0) || !isfinite(rad->wavelength_A))
        return bf_error_set(err, BF_ERR_INVALID,
                            "X-ray wavelength %g A: must be > 0 for the f', f'' of %s",
                            rad->wavelength_A, at->element);
    return bf_xray_anomalous(at->element, bf_xray_energy_keV(rad->wavelength_A), &s->f_re,
                             &s->f_im, err);
}

/* f of a scatterer at s2 = 1 / (4 d^2). */
static inline void scatterer_f(const bf_scatterer *s, double s2, double *fr, double *fi)
{
    *fr = s->xray ? bf_xray_f0(&s->f0, s2) + s->f_re : s->f_re;
    *fi = s->f_im;
}

/* ---- Site multiplicity ----------------------------------------------------------- */

static int stabilizer_count(const bf_crystal *c, const bf_atom *at)
{
    const double x[3] = {at->x, at->y, at->z};
    int n = 0;
    for (int k = 0; k < c->n_ops; k++) {
        const bf_symop *op = &c->ops[k];
        int fixed = 1;
        for (int j = 0; j < 3 && fixed; j++) {
            double r = op->rot[j][0] * x[0] + op->rot[j][1] * x[1] + op->rot[j][2] * x[2] +
                       op->trans[j] - x[j];
            fixed = fabs(r - round(r)) <= SITE_TOL;
        }
        n += fixed;
    }
    return n;
}

int bf_crystal_site_multiplicity(const bf_crystal *c, int atom)
{
    if (atom < 0 || atom >= c->n_atoms)
        return 0;
    int n = stabilizer_count(c, &c->atoms[atom]);
    return n > 0 ? c->n_ops / n : 0;
}

/* frac * mult / nOps of atom a, or an error when no operator fixes it. */
static bf_status atom_weight(const bf_crystal *c, int a, double *w, bf_error *err)
{
    int mult = bf_crystal_site_multiplicity(c, a);
    if (mult <= 0)
        return bf_error_set(err, BF_ERR_INVALID,
                            "%s: atom %s: no operator maps the site onto itself (the %d "
                            "operators lack the identity x,y,z)",
                            c->source, c->atoms[a].label, c->n_ops);
    *w = c->atoms[a].occupancy * (double)mult / (double)c->n_ops;
    return BF_OK;
}

/* ---- Building the table's structure-factor parts ---------------------------------- */

typedef struct {
    int u, scatterer;
} aniso_pair;

/* h.R_k (integers) and h.t_k for every operator. */
static void transform_index(const bf_crystal *c, const bf_hkl *r, int (*hp)[3], double *ht)
{
    const int h[3] = {r->h, r->k, r->l};
    for (int k = 0; k < c->n_ops; k++) {
        const bf_symop *op = &c->ops[k];
        for (int j = 0; j < 3; j++)
            hp[k][j] = h[0] * op->rot[0][j] + h[1] * op->rot[1][j] + h[2] * op->rot[2][j];
        ht[k] = h[0] * op->trans[0] + h[1] * op->trans[1] + h[2] * op->trans[2];
    }
}

/* e^{2 pi i (h'.x + h.t)} with the argument reduced to [0, 1) turns first. */
static inline void phase_factor(const int hp[3], double ht, const bf_atom *at, double *cs,
                                double *sn)
{
    double turns = hp[0] * at->x + hp[1] * at->y + hp[2] * at->z + ht;
    turns -= floor(turns);
    *cs = cos(2.0 * M_PI * turns);
    *sn = sin(2.0 * M_PI * turns);
}

static int same_sign_class(const int a[3], const int b[3])
{
    return (a[0] == b[0] && a[1] == b[1] && a[2] == b[2]) ||
           (a[0] == -b[0] && a[1] == -b[1] && a[2] == -b[2]);
}

static int push_term(bf_reflection_table *t, size_t *cap, size_t *n, const bf_aniso_term *term)
{
    if (*n == *cap) {
        size_t grown_cap = *cap ? 2 * *cap : 1024;
        bf_aniso_term *grown = realloc(t->aniso, grown_cap * sizeof *grown);
        if (grown == NULL)
            return 0;
        t->aniso = grown;
        *cap = grown_cap;
    }
    t->aniso[(*n)++] = *term;
    return 1;
}

bf_status bf_structure_factor_parts(const bf_crystal *c, const bf_radiation *rad,
                                    bf_reflection_table *t, bf_error *err)
{
    const int na = c->n_atoms, nops = c->n_ops;
    bf_status st = BF_OK;
    int *atom_scat = malloc((size_t)na * sizeof *atom_scat);
    int *atom_group = malloc((size_t)na * sizeof *atom_group);
    int *atom_u = malloc((size_t)na * sizeof *atom_u);
    double *atom_w = malloc((size_t)na * sizeof *atom_w);
    aniso_pair *pairs = malloc((size_t)na * sizeof *pairs);
    int (*hp)[3] = malloc((size_t)nops * sizeof *hp);
    double *ht = malloc((size_t)nops * sizeof *ht);
    int *cls = malloc((size_t)nops * sizeof *cls);
    int *rep = malloc((size_t)nops * sizeof *rep);
    t->scatterers = malloc((size_t)na * sizeof *t->scatterers);
    t->uiso_A2 = malloc((size_t)na * sizeof *t->uiso_A2);
    t->group_scatterer = malloc((size_t)na * sizeof *t->group_scatterer);
    t->aniso_u = malloc((size_t)na * sizeof *t->aniso_u);
    if (!atom_scat || !atom_group || !atom_u || !atom_w || !pairs || !hp || !ht || !cls || !rep ||
        !t->scatterers || !t->uiso_A2 || !t->group_scatterer || !t->aniso_u)
        goto nomem;
    t->f2_scale = rad->kind == BF_RADIATION_NEUTRON ? 0.01 : 1.0; /* fm^2 -> (1e-12 cm)^2 */
    const int fold = rad->kind == BF_RADIATION_NEUTRON;

    int n_pairs = 0;
    for (int a = 0; a < na; a++) {
        const bf_atom *at = &c->atoms[a];
        bf_scatterer s;
        if ((st = resolve_scatterer(at, rad, &s, err)) != BF_OK) {
            bf_error_prefix(err, "%s: atom %s", c->source, at->label);
            goto fail;
        }
        if ((st = atom_weight(c, a, &atom_w[a], err)) != BF_OK)
            goto fail;
        int k = 0;
        while (k < t->n_scatterers && (strcmp(t->scatterers[k].symbol, s.symbol) != 0 ||
                                       strcmp(t->scatterers[k].element, s.element) != 0))
            k++;
        if (k == t->n_scatterers)
            t->scatterers[t->n_scatterers++] = s;
        atom_scat[a] = k;
        atom_group[a] = atom_u[a] = -1;
        if (!at->aniso) {
            int g = 0;
            while (g < t->n_groups &&
                   (t->group_scatterer[g] != k || t->uiso_A2[g] != at->uiso_A2))
                g++;
            if (g == t->n_groups) {
                t->uiso_A2[g] = at->uiso_A2;
                t->group_scatterer[g] = k;
                t->n_groups++;
            }
            atom_group[a] = g;
            continue;
        }
        int u = 0;
        while (u < t->n_aniso_u && memcmp(t->aniso_u[u], at->u_aniso_A2, sizeof at->u_aniso_A2))
            u++;
        if (u == t->n_aniso_u)
            memcpy(t->aniso_u[t->n_aniso_u++], at->u_aniso_A2, sizeof at->u_aniso_A2);
        atom_u[a] = u;
        /* neutrons: f is a constant, folded into the terms (one term per class and U) */
        const int ks = fold ? -1 : k;
        int p = 0;
        while (p < n_pairs && (pairs[p].u != u || pairs[p].scatterer != ks))
            p++;
        if (p == n_pairs)
            pairs[n_pairs++] = (aniso_pair){u, ks};
    }
    if (t->n_aniso_u > 32767 || t->n_scatterers > 32767) {
        st = bf_error_set(err, BF_ERR_RANGE,
                          "%s: more than 32767 distinct U tensors or scatterers", c->source);
        goto fail;
    }
    /* pairs by U, so that a class's terms of one U follow each other (one exp for them) */
    for (int p = 1; p < n_pairs; p++)
        for (int q = p; q > 0 && pairs[q - 1].u > pairs[q].u; q--) {
            aniso_pair tmp = pairs[q];
            pairs[q] = pairs[q - 1];
            pairs[q - 1] = tmp;
        }

    size_t nf = (size_t)(t->n > 0 ? t->n : 1) * (size_t)(t->n_groups > 0 ? t->n_groups : 1);
    t->f_re = calloc(nf, sizeof *t->f_re);
    t->f_im = calloc(nf, sizeof *t->f_im);
    t->aniso_start = calloc((size_t)t->n + 1, sizeof *t->aniso_start);
    if (!t->f_re || !t->f_im || !t->aniso_start)
        goto nomem;
    size_t cap = 0, n_terms = 0;
    for (int i = 0; i < t->n; i++) {
        transform_index(c, &t->hkl[i], hp, ht);
        for (int a = 0; a < na; a++) {
            if (atom_group[a] < 0)
                continue;
            double re = 0.0, im = 0.0;
            for (int k = 0; k < nops; k++) {
                double cs, sn;
                phase_factor(hp[k], ht[k], &c->atoms[a], &cs, &sn);
                re += cs;
                im += sn;
            }
            size_t at = (size_t)i * (size_t)t->n_groups + (size_t)atom_group[a];
            t->f_re[at] += atom_w[a] * re;
            t->f_im[at] += atom_w[a] * im;
        }
        t->aniso_start[i + 1] = n_terms;
        if (n_pairs == 0)
            continue;
        /* operator classes: h' equal up to sign */
        int n_cls = 0;
        for (int k = 0; k < nops; k++) {
            int m = 0;
            while (m < n_cls && !same_sign_class(hp[rep[m]], hp[k]))
                m++;
            if (m == n_cls)
                rep[n_cls++] = k;
            cls[k] = m;
        }
        int last_u = -1, last_cls = -1;
        for (int m = 0; m < n_cls; m++)
            for (int p = 0; p < n_pairs; p++) {
                double re = 0.0, im = 0.0;
                for (int a = 0; a < na; a++) {
                    if (atom_u[a] != pairs[p].u ||
                        (pairs[p].scatterer >= 0 && atom_scat[a] != pairs[p].scatterer))
                        continue;
                    /* w (f' + i f'') with the constant f of a folded (neutron) term */
                    const bf_scatterer *sc = &t->scatterers[atom_scat[a]];
                    const double wr = atom_w[a] * (fold ? sc->f_re : 1.0),
                                 wi = atom_w[a] * (fold ? sc->f_im : 0.0);
                    for (int k = 0; k < nops; k++) {
                        if (cls[k] != m)
                            continue;
                        double cs, sn;
                        phase_factor(hp[k], ht[k], &c->atoms[a], &cs, &sn);
                        re += wr * cs - wi * sn;
                        im += wr * sn + wi * cs;
                    }
                }
                if (re == 0.0 && im == 0.0)
                    continue;
                const int *v = hp[rep[m]];
                bf_aniso_term term = {.hp = {(short)v[0], (short)v[1], (short)v[2]},
                                      .u = (short)pairs[p].u,
                                      .scatterer = (short)pairs[p].scatterer,
                                      .same_t = last_cls == m && last_u == pairs[p].u,
                                      .re = re,
                                      .im = im};
                if (!push_term(t, &cap, &n_terms, &term))
                    goto nomem;
                last_cls = m;
                last_u = pairs[p].u;
            }
        t->aniso_start[i + 1] = n_terms;
    }
    goto done;
nomem:
    st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for the structure factors",
                      c->source);
fail:
done:
    free(atom_scat);
    free(atom_group);
    free(atom_u);
    free(atom_w);
    free(pairs);
    free(hp);
    free(ht);
    free(cls);
    free(rep);
    return st;
}

double bf_reflection_table_f2(const bf_reflection_table *t, int i, double d_A,
                              const double astar_invA[3])
{
    const double inv_d2 = 1.0 / (d_A * d_A), s2 = 0.25 * inv_d2;
    double fr_c[F_CACHE], fi_c[F_CACHE];
    const int cached = t->n_scatterers <= F_CACHE;
    if (cached)
        for (int s = 0; s < t->n_scatterers; s++)
            scatterer_f(&t->scatterers[s], s2, &fr_c[s], &fi_c[s]);
    double re = 0.0, im = 0.0, fr, fi;
    for (int g = 0; g < t->n_groups; g++) {
        const double dw = exp(-2.0 * M_PI * M_PI * t->uiso_A2[g] * inv_d2);
        const size_t at = (size_t)i * (size_t)t->n_groups + (size_t)g;
        const double gr = dw * t->f_re[at], gi = dw * t->f_im[at];
        const int s = t->group_scatterer[g];
        if (cached) {
            fr = fr_c[s];
            fi = fi_c[s];
        } else {
            scatterer_f(&t->scatterers[s], s2, &fr, &fi);
        }
        re += fr * gr - fi * gi; /* (f' + i f'') (S_re + i S_im) */
        im += fr * gi + fi * gr;
    }
    if (t->aniso_start != NULL && t->aniso_start[i + 1] > t->aniso_start[i]) {
        if (astar_invA == NULL)
            return NAN;
        const double c = -2.0 * M_PI * M_PI;
        const double q[6] = {c * astar_invA[0] * astar_invA[0], c * astar_invA[1] * astar_invA[1],
                             c * astar_invA[2] * astar_invA[2],
                             2.0 * c * astar_invA[0] * astar_invA[1],
                             2.0 * c * astar_invA[0] * astar_invA[2],
                             2.0 * c * astar_invA[1] * astar_invA[2]};
        double T = 0.0;
        for (size_t n = t->aniso_start[i]; n < t->aniso_start[i + 1]; n++) {
            const bf_aniso_term *term = &t->aniso[n];
            if (!term->same_t) {
                const double h = term->hp[0], k = term->hp[1], l = term->hp[2];
                const double *u = t->aniso_u[term->u];
                T = exp(h * h * u[0] * q[0] + k * k * u[1] * q[1] + l * l * u[2] * q[2] +
                        h * k * u[3] * q[3] + h * l * u[4] * q[4] + k * l * u[5] * q[5]);
            }
            const double ar = T * term->re, ai = T * term->im;
            const int s = term->scatterer;
            if (s < 0) { /* f folded in */
                re += ar;
                im += ai;
                continue;
            }
            if (cached) {
                fr = fr_c[s];
                fi = fi_c[s];
            } else {
                scatterer_f(&t->scatterers[s], s2, &fr, &fi);
            }
            re += fr * ar - fi * ai;
            im += fr * ai + fi * ar;
        }
    }
    return (re * re + im * im) * t->f2_scale;
}

/* ---- The plain reference ------------------------------------------------------------ */

bf_status bf_structure_factor_direct(const bf_crystal *c, const bf_radiation *rad,
                                     const bf_cell *cell, int h, int k, int l, double *f_re,
                                     double *f_im, bf_error *err)
{
    *f_re = *f_im = 0.0;
    if (h == 0 && k == 0 && l == 0)
        return bf_error_set(err, BF_ERR_INVALID, "structure factor of 0 0 0: no d-spacing");
    bf_status st = bf_cell_validate(cell, "cell", err);
    if (st != BF_OK)
        return st;
    const double d = bf_cell_d_spacing(cell, h, k, l);
    double astar[3];
    bf_cell_reciprocal_lengths(cell, astar);
    const int hv[3] = {h, k, l};
    double re = 0.0, im = 0.0;
    for (int a = 0; a < c->n_atoms; a++) {
        const bf_atom *at = &c->atoms[a];
        bf_scatterer s;
        if ((st = resolve_scatterer(at, rad, &s, err)) != BF_OK) {
            bf_error_prefix(err, "%s: atom %s", c->source, at->label);
            return st;
        }
        double w, fr, fi;
        if ((st = atom_weight(c, a, &w, err)) != BF_OK)
            return st;
        scatterer_f(&s, 1.0 / (4.0 * d * d), &fr, &fi);
        const double *u6 = at->u_aniso_A2;
        const double U[3][3] = {{u6[0], u6[3], u6[4]}, {u6[3], u6[1], u6[5]},
                                {u6[4], u6[5], u6[2]}};
        for (int o = 0; o < c->n_ops; o++) {
            const bf_symop *op = &c->ops[o];
            double hp[3], x = 0.0;
            for (int j = 0; j < 3; j++)
                hp[j] = hv[0] * op->rot[0][j] + hv[1] * op->rot[1][j] + hv[2] * op->rot[2][j];
            /* h.(R x + t) */
            for (int j = 0; j < 3; j++)
                x += hv[j] * (op->rot[j][0] * at->x + op->rot[j][1] * at->y +
                              op->rot[j][2] * at->z + op->trans[j]);
            double T;
            if (at->aniso) {
                double q = 0.0;
                for (int p = 0; p < 3; p++)
                    for (int r = 0; r < 3; r++)
                        q += hp[p] * astar[p] * U[p][r] * astar[r] * hp[r];
                T = exp(-2.0 * M_PI * M_PI * q);
            } else {
                T = exp(-2.0 * M_PI * M_PI * at->uiso_A2 / (d * d));
            }
            const double cs = cos(2.0 * M_PI * x), sn = sin(2.0 * M_PI * x);
            re += w * T * (fr * cs - fi * sn);
            im += w * T * (fr * sn + fi * cs);
        }
    }
    *f_re = re;
    *f_im = im;
    return BF_OK;
}
