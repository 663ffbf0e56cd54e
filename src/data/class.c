/* data/class.c — symmetry classes: which cell parameters are free, fixed or
 * tied, their boxes, and the |p - q| > tol constraints that keep a sampled
 * cell inside its class (a tetragonal cell with a = c would be cubic). */
#include "braggflow/data.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const bf_cell_param_names[BF_N_CELL_PARAMS] = {"a", "b", "c", "alpha", "beta", "gamma"};

/* The seed's published boxes (DESIGN §4): cubic a in [2.5, 5.5] A; trigonal
 * and tetragonal lengths in [3.5, 4.5] A; the rhombohedral angle in
 * [30, 119.5] degrees. */
#define SEED_CUBIC_LO 2.5
#define SEED_CUBIC_HI 5.5
#define SEED_LEN_LO 3.5
#define SEED_LEN_HI 4.5
#define SEED_ALPHA_LO 30.0
#define SEED_ALPHA_HI 119.5

static void set_free(bf_param_rule *r, double lo, double hi)
{
    memset(r, 0, sizeof *r);
    r->kind = BF_PARAM_FREE;
    r->lo = lo;
    r->hi = hi;
}

static void set_fixed(bf_param_rule *r, double value)
{
    memset(r, 0, sizeof *r);
    r->kind = BF_PARAM_FIXED;
    r->value = value;
}

static void set_tied(bf_param_rule *r, int to)
{
    memset(r, 0, sizeof *r);
    r->kind = BF_PARAM_TIED;
    r->tied_to = to;
}

static void add_constraint(bf_class_spec *c, int p, int q, double q_value, double tol)
{
    bf_constraint *k = &c->constraint[c->n_constraints++];
    k->p_param = p;
    k->q_param = q;
    k->q_value = q_value;
    k->tol = tol;
}

bf_status bf_class_builtin(const char *name, bf_class_spec *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    if (strcmp(name, "cubic") == 0) {
        out->label = BF_CLASS_CUBIC;
        set_free(&out->rule[BF_P_A], SEED_CUBIC_LO, SEED_CUBIC_HI);
        set_tied(&out->rule[BF_P_B], BF_P_A);
        set_tied(&out->rule[BF_P_C], BF_P_A);
        for (int p = BF_P_ALPHA; p <= BF_P_GAMMA; p++)
            set_fixed(&out->rule[p], 90.0);
    } else if (strcmp(name, "trigonal") == 0) {
        /* Rhombohedral setting: a = b = c, alpha = beta = gamma != 90. */
        out->label = BF_CLASS_TRIGONAL;
        set_free(&out->rule[BF_P_A], SEED_LEN_LO, SEED_LEN_HI);
        set_tied(&out->rule[BF_P_B], BF_P_A);
        set_tied(&out->rule[BF_P_C], BF_P_A);
        set_free(&out->rule[BF_P_ALPHA], SEED_ALPHA_LO, SEED_ALPHA_HI);
        set_tied(&out->rule[BF_P_BETA], BF_P_ALPHA);
        set_tied(&out->rule[BF_P_GAMMA], BF_P_ALPHA);
        add_constraint(out, BF_P_ALPHA, -1, 90.0, 0.2);
    } else if (strcmp(name, "tetragonal") == 0) {
        out->label = BF_CLASS_TETRAGONAL;
        set_free(&out->rule[BF_P_A], SEED_LEN_LO, SEED_LEN_HI);
        set_tied(&out->rule[BF_P_B], BF_P_A);
        set_free(&out->rule[BF_P_C], SEED_LEN_LO, SEED_LEN_HI);
        for (int p = BF_P_ALPHA; p <= BF_P_GAMMA; p++)
            set_fixed(&out->rule[p], 90.0);
        add_constraint(out, BF_P_A, BF_P_C, 0.0, 0.001);
    } else {
        return bf_error_set(err, BF_ERR_INVALID,
                            "'%s' is not a built-in class (cubic, trigonal, tetragonal)", name);
    }
    snprintf(out->name, sizeof out->name, "%s", name);
    return BF_OK;
}

const char *bf_class_builtin_name(int label)
{
    switch (label) {
    case BF_CLASS_TRIGONAL: return "trigonal";
    case BF_CLASS_TETRAGONAL: return "tetragonal";
    case BF_CLASS_CUBIC: return "cubic";
    }
    return NULL;
}

int bf_class_n_free(const bf_class_spec *cls)
{
    int n = 0;
    for (int p = 0; p < BF_N_CELL_PARAMS; p++)
        n += cls->rule[p].kind == BF_PARAM_FREE;
    return n;
}

void bf_class_make_cell(const bf_class_spec *cls, const double *free_values, bf_cell *cell)
{
    double v[BF_N_CELL_PARAMS] = {0};
    int j = 0;
    for (int p = 0; p < BF_N_CELL_PARAMS; p++) {
        const bf_param_rule *r = &cls->rule[p];
        if (r->kind == BF_PARAM_FREE)
            v[p] = free_values[j++];
        else if (r->kind == BF_PARAM_FIXED)
            v[p] = r->value;
    }
    /* Ties second: a tie may point forward (validate insists on a FREE target). */
    for (int p = 0; p < BF_N_CELL_PARAMS; p++) {
        const bf_param_rule *r = &cls->rule[p];
        if (r->kind == BF_PARAM_TIED && r->tied_to >= 0 && r->tied_to < BF_N_CELL_PARAMS)
            v[p] = v[r->tied_to];
    }
    cell->a = v[BF_P_A];
    cell->b = v[BF_P_B];
    cell->c = v[BF_P_C];
    cell->alpha = v[BF_P_ALPHA];
    cell->beta = v[BF_P_BETA];
    cell->gamma = v[BF_P_GAMMA];
}

static void cell_values(const bf_cell *cell, double v[BF_N_CELL_PARAMS])
{
    v[BF_P_A] = cell->a;
    v[BF_P_B] = cell->b;
    v[BF_P_C] = cell->c;
    v[BF_P_ALPHA] = cell->alpha;
    v[BF_P_BETA] = cell->beta;
    v[BF_P_GAMMA] = cell->gamma;
}

static int same_value(double x, double y)
{
    return fabs(x - y) <= 1e-9 * (1.0 + fabs(x) + fabs(y));
}

static int constraint_ok(const bf_constraint *k, const double v[BF_N_CELL_PARAMS])
{
    double q = k->q_param >= 0 ? v[k->q_param] : k->q_value;
    return fabs(v[k->p_param] - q) > k->tol;
}

/* A real cell: positive lengths, angles in (0, 180) and positive volume^2
 * (alpha = 120 in a rhombohedral cell is flat). Grid sweeps over the seed's
 * trigonal box reach such edges; dropping them beats failing the whole run. */
static int cell_is_real(const double v[BF_N_CELL_PARAMS])
{
    for (int p = 0; p < 3; p++)
        if (!(v[p] > 0) || !isfinite(v[p]))
            return 0;
    const double deg = M_PI / 180.0;
    double cs[3];
    for (int p = 0; p < 3; p++) {
        double ang = v[BF_P_ALPHA + p];
        if (!(ang > 0 && ang < 180))
            return 0;
        cs[p] = cos(ang * deg);
    }
    double vol2 = 1 - cs[0] * cs[0] - cs[1] * cs[1] - cs[2] * cs[2] + 2 * cs[0] * cs[1] * cs[2];
    return vol2 > 1e-9;
}

int bf_class_accepts(const bf_class_spec *cls, const bf_cell *cell)
{
    double v[BF_N_CELL_PARAMS];
    cell_values(cell, v);
    for (int p = 0; p < BF_N_CELL_PARAMS; p++) {
        const bf_param_rule *r = &cls->rule[p];
        switch (r->kind) {
        case BF_PARAM_FREE:
            if (!(v[p] >= r->lo && v[p] <= r->hi))
                return 0;
            break;
        case BF_PARAM_FIXED:
            if (!same_value(v[p], r->value))
                return 0;
            break;
        case BF_PARAM_TIED:
            if (r->tied_to < 0 || r->tied_to >= BF_N_CELL_PARAMS || !same_value(v[p], v[r->tied_to]))
                return 0;
            break;
        }
    }
    for (int k = 0; k < cls->n_constraints; k++)
        if (!constraint_ok(&cls->constraint[k], v))
            return 0;
    return cell_is_real(v);
}

static void describe_constraint(const bf_constraint *k, char *buf, size_t n)
{
    if (k->q_param >= 0)
        snprintf(buf, n, "|%s - %s| > %g", bf_cell_param_names[k->p_param],
                 bf_cell_param_names[k->q_param], k->tol);
    else
        snprintf(buf, n, "|%s - %g| > %g", bf_cell_param_names[k->p_param], k->q_value, k->tol);
}

/* Probe points for "is any cell of the box acceptable": a lattice with both
 * ends of every free range (at most ~1e5 points) plus fixed-seed random draws.
 * Constraints are slabs |p - q| <= tol, so a box they cover entirely is found. */
static int find_accepted_point(const bf_class_spec *cls, int skip_constraints, int only_constraint)
{
    int free_idx[BF_N_CELL_PARAMS], n_free = 0;
    for (int p = 0; p < BF_N_CELL_PARAMS; p++)
        if (cls->rule[p].kind == BF_PARAM_FREE)
            free_idx[n_free++] = p;
    bf_class_spec probe = *cls;
    if (skip_constraints)
        probe.n_constraints = 0;
    if (only_constraint >= 0) {
        probe.constraint[0] = cls->constraint[only_constraint];
        probe.n_constraints = 1;
    }
    static const int per_dim[BF_N_CELL_PARAMS + 1] = {1, 2001, 301, 41, 17, 9, 6};
    int m = per_dim[n_free];
    long total = 1;
    for (int j = 0; j < n_free; j++)
        total *= m;
    double x[BF_N_CELL_PARAMS];
    bf_cell cell;
    for (long i = 0; i < total; i++) {
        long rest = i;
        for (int j = n_free - 1; j >= 0; j--) {
            const bf_param_rule *r = &cls->rule[free_idx[j]];
            long t = rest % m;
            rest /= m;
            x[j] = m > 1 ? r->lo + (r->hi - r->lo) * (double)t / (m - 1) : r->lo;
        }
        bf_class_make_cell(&probe, x, &cell);
        if (bf_class_accepts(&probe, &cell))
            return 1;
    }
    bf_rng rng;
    bf_rng_init(&rng, 0x5eedu, 0);
    for (int i = 0; i < 100000; i++) {
        for (int j = 0; j < n_free; j++) {
            const bf_param_rule *r = &cls->rule[free_idx[j]];
            x[j] = bf_rng_uniform_range(&rng, r->lo, r->hi);
        }
        bf_class_make_cell(&probe, x, &cell);
        if (bf_class_accepts(&probe, &cell))
            return 1;
    }
    return 0;
}

static int is_length(int p) { return p <= BF_P_C; }

bf_status bf_class_validate(const bf_class_spec *cls, bf_error *err)
{
    const char *cn = cls->name[0] ? cls->name : "(unnamed)";
    for (int p = 0; p < BF_N_CELL_PARAMS; p++) {
        const bf_param_rule *r = &cls->rule[p];
        const char *key = bf_cell_param_names[p];
        const char *unit = is_length(p) ? "Angstrom" : "degrees";
        double vmax = is_length(p) ? INFINITY : 180.0;
        switch (r->kind) {
        case BF_PARAM_FREE:
            if (!isfinite(r->lo) || !isfinite(r->hi) || r->lo > r->hi)
                return bf_error_set(err, BF_ERR_INVALID, "class %s: %s: empty box [%g, %g]", cn,
                                    key, r->lo, r->hi);
            if (!(r->lo > 0) || !(r->hi < vmax))
                return bf_error_set(err, BF_ERR_INVALID,
                                    "class %s: %s: box [%g, %g] must lie in (0, %g) %s", cn, key,
                                    r->lo, r->hi, vmax, unit);
            if (r->step < 0 || !isfinite(r->step))
                return bf_error_set(err, BF_ERR_INVALID, "class %s: %s_step: %g must be > 0", cn,
                                    key, r->step);
            break;
        case BF_PARAM_FIXED:
            if (!(r->value > 0) || !(r->value < vmax))
                return bf_error_set(err, BF_ERR_INVALID, "class %s: %s: %g must lie in (0, %g) %s",
                                    cn, key, r->value, vmax, unit);
            break;
        case BF_PARAM_TIED:
            if (r->tied_to < 0 || r->tied_to >= BF_N_CELL_PARAMS ||
                cls->rule[r->tied_to].kind != BF_PARAM_FREE)
                return bf_error_set(err, BF_ERR_INVALID,
                                    "class %s: %s: may only be tied to a free parameter", cn, key);
            if (is_length(p) != is_length(r->tied_to))
                return bf_error_set(err, BF_ERR_INVALID,
                                    "class %s: %s: cannot be tied to %s (length vs angle)", cn, key,
                                    bf_cell_param_names[r->tied_to]);
            break;
        default:
            return bf_error_set(err, BF_ERR_INVALID, "class %s: %s: unknown rule", cn, key);
        }
    }
    if (cls->n_constraints < 0 || cls->n_constraints > BF_MAX_CONSTRAINTS)
        return bf_error_set(err, BF_ERR_INVALID, "class %s: constraint: at most %d", cn,
                            BF_MAX_CONSTRAINTS);
    for (int k = 0; k < cls->n_constraints; k++) {
        const bf_constraint *c = &cls->constraint[k];
        if (c->p_param < 0 || c->p_param >= BF_N_CELL_PARAMS || c->q_param >= BF_N_CELL_PARAMS ||
            c->q_param == c->p_param || !(c->tol >= 0) || !isfinite(c->tol) ||
            (c->q_param < 0 && !isfinite(c->q_value)))
            return bf_error_set(err, BF_ERR_INVALID, "class %s: constraint %d: malformed", cn, k + 1);
    }
    if (!find_accepted_point(cls, 1, -1))
        return bf_error_set(err, BF_ERR_INVALID,
                            "class %s: no cell in the box is a real cell (check the angles)", cn);
    if (!find_accepted_point(cls, 0, -1)) {
        /* Name the constraint that alone rules the box out, if one does. */
        char what[96];
        for (int k = 0; k < cls->n_constraints; k++) {
            if (!find_accepted_point(cls, 0, k)) {
                const bf_constraint *c = &cls->constraint[k];
                const bf_param_rule *r = &cls->rule[c->p_param];
                describe_constraint(c, what, sizeof what);
                if (r->kind == BF_PARAM_FREE)
                    return bf_error_set(err, BF_ERR_INVALID,
                                        "class %s: %s: box [%g, %g] lies entirely where "
                                        "constraint %s fails",
                                        cn, bf_cell_param_names[c->p_param], r->lo, r->hi, what);
                return bf_error_set(err, BF_ERR_INVALID,
                                    "class %s: constraint: %s fails everywhere in the box", cn, what);
            }
        }
        return bf_error_set(err, BF_ERR_INVALID,
                            "class %s: constraint: the constraints together exclude every cell "
                            "in the box",
                            cn);
    }
    return BF_OK;
}
