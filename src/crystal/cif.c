/* crystal/cif.c — reads a crystal structure from one data block of a CIF 1.1 / 2.0 file
 * with libcif (the COMCIFS CIF API): the one named, else the first with atom sites.
 *
 * Items read (CIF core dictionary; old and new DDL names both accepted):
 *   cell      _cell_length_a/b/c (required), _cell_angle_alpha/beta/gamma (default 90)
 *   symmetry  explicit operators (_space_group_symop_operation_xyz or
 *             _symmetry_equiv_pos_as_xyz) win; else a Hall symbol; else an H-M
 *             symbol (spglib's database). An 'R' symbol without a ':R'/':H'
 *             suffix takes rhombohedral axes when the cell has a = b = c and
 *             alpha = beta = gamma != 90, hexagonal axes otherwise.
 *   atoms     _atom_site_label, _atom_site_type_symbol (else the label's
 *             leading letters), _atom_site_fract_x/y/z (required),
 *             _atom_site_occupancy (default 1), _atom_site_U_iso_or_equiv or
 *             _atom_site_B_iso_or_equiv / (8 pi^2) (default 0.01 A^2, GSAS-II's),
 *             _atom_site_adp_type (Uani / Bani: the atom must be in the aniso loop)
 *   aniso     _atom_site_aniso_label with _atom_site_aniso_U_11 .. _U_23, or _B_ij
 *             (U = B / 8 pi^2), or _beta_ij (U_ij = beta_ij / (2 pi^2 a*_i a*_j), the
 *             CIF cell's a*): the atoms listed are anisotropic (Uiso then unused, as in
 *             GSAS-II); '?' or '.' there is an error.
 * Semantic errors name the line where the offending item's name first appears. */
#include "crystal_internal.h"

#include <cif.h>
#include <cif_error.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_UISO_A2 0.01   /* GSAS-II's default when a CIF gives no displacement */

typedef struct {
    const char *name;          /* file name for messages */
    const char *text;          /* the CIF text, to locate items by line */
    bf_error *err;
    int syntax_error;          /* set by the parser's error callback */
    int cif2;                  /* the text starts with CIF 2.0's magic line */
    size_t tolerated_line, tolerated_column; /* the first tolerated quirk, or 0 */
    int tolerated_code;
} cif_ctx;

/* 1-based line of the first occurrence of item (case-insensitive) at the
 * start of a token, or 0. */
static int line_of_item(const cif_ctx *ctx, const char *item)
{
    size_t n = strlen(item);
    int line = 1;
    for (const char *p = ctx->text; *p; p++) {
        if (*p == '\n') {
            line++;
            continue;
        }
        if ((p == ctx->text || isspace((unsigned char)p[-1])) && strncasecmp(p, item, n) == 0 &&
            (p[n] == 0 || isspace((unsigned char)p[n])))
            return line;
    }
    return 0;
}

static bf_status item_error(const cif_ctx *ctx, bf_status code, const char *item, const char *fmt,
                            ...) __attribute__((format(printf, 4, 5)));
static bf_status item_error(const cif_ctx *ctx, bf_status code, const char *item, const char *fmt,
                            ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int line = line_of_item(ctx, item);
    if (line > 0)
        return bf_error_set(ctx->err, code, "%s:%d: %s: %s", ctx->name, line, item, what);
    return bf_error_set(ctx->err, code, "%s: %s: %s", ctx->name, item, what);
}

static int on_parse_error(int code, size_t line, size_t column, const UChar *text, size_t length,
                          void *data)
{
    cif_ctx *ctx = data;
    const char *why = (code >= 0 && code < cif_nerr) ? cif_errlist[code] : "syntax error";
    /* CIF 1.1 readers (GSAS-II's among them) take '[' and ']' inside an unquoted value
     * as part of it (SHELXL writes "Fc^*^=kFc[1+0.001xFc^2^..."); libcif's CIF 1.1 mode
     * ends the value there and recovers. Tolerated, with a warning: what braggflow reads
     * (cell, symmetry, atom sites) is checked item by item anyway. */
    if (code == CIF_INVALID_BARE_VALUE && !ctx->cif2) {
        if (!ctx->tolerated_line) {
            ctx->tolerated_line = line;
            ctx->tolerated_column = column;
            ctx->tolerated_code = code;
        }
        return 0;
    }
    if (!ctx->syntax_error)
        bf_error_set(ctx->err, BF_ERR_PARSE, "%s:%zu:%zu: CIF syntax error: %s", ctx->name, line,
                     column, why);
    ctx->syntax_error = 1;
    /* Let libcif recover and finish: aborting from here leaks inside libcif
     * 0.4 (found by fuzz_cif). The first error is what gets reported. */
    return 0;
}

/* 1 when block has a loop holding item. */
static int has_loop(cif_block_tp *block, const char *item)
{
    UChar *name = NULL;
    cif_loop_tp *loop = NULL;
    int found = cif_cstr_to_ustr(item, -1, &name) == CIF_OK &&
                cif_container_get_item_loop(block, name, &loop) == CIF_OK;
    if (loop)
        cif_loop_free(loop);
    free(name);
    return found;
}

static int count_blocks(cif_block_tp **blocks)
{
    int n = 0;
    while (blocks[n])
        n++;
    return n;
}

/* ASCII copy of a value's text (non-ASCII characters become '?'). */
static int value_text(cif_value_tp *v, char *out, size_t outsz)
{
    UChar *u = NULL;
    if (cif_value_get_text(v, &u) != CIF_OK || u == NULL) {
        out[0] = 0;
        return 0;
    }
    size_t n = 0;
    for (const UChar *p = u; *p && n + 1 < outsz; p++)
        out[n++] = *p < 128 ? (char)*p : '?';
    out[n] = 0;
    free(u);
    return 1;
}

static int is_missing(cif_value_tp *v)
{
    cif_kind_tp kind = cif_value_kind(v);
    return kind == CIF_UNK_KIND || kind == CIF_NA_KIND;
}

/* Numeric value, s.u. in parentheses allowed ("8.7670(1)"). */
static int value_number(cif_value_tp *v, double *out)
{
    if (is_missing(v) || cif_value_get_number(v, out) != CIF_OK)
        return 0;
    return isfinite(*out);
}

/* A scalar item by name; NULL when absent (caller frees with cif_value_free). */
static cif_value_tp *get_scalar(cif_block_tp *block, const char *item)
{
    UChar *name = NULL;
    cif_value_tp *v = NULL;
    if (cif_cstr_to_ustr(item, -1, &name) != CIF_OK)
        return NULL;
    int rc = cif_container_get_value(block, name, &v);
    free(name);
    if (rc != CIF_OK && rc != CIF_AMBIGUOUS_ITEM) {
        if (v)
            cif_value_free(v);
        return NULL;
    }
    return v;
}

static bf_status read_number(const cif_ctx *ctx, cif_block_tp *block, const char *item,
                             int required, double dflt, double *out)
{
    cif_value_tp *v = get_scalar(block, item);
    bf_status st = BF_OK;
    if (v == NULL || is_missing(v)) {
        if (required)
            st = item_error(ctx, BF_ERR_INVALID, item, "missing (the cell needs it)");
        else
            *out = dflt;
    } else if (!value_number(v, out)) {
        char text[64];
        value_text(v, text, sizeof text);
        st = item_error(ctx, BF_ERR_PARSE, item, "'%s' is not a number", text);
    }
    if (v)
        cif_value_free(v);
    return st;
}

static int read_text(cif_block_tp *block, const char *item, char *out, size_t outsz)
{
    cif_value_tp *v = get_scalar(block, item);
    int ok = v != NULL && !is_missing(v) && value_text(v, out, outsz) && out[0] != 0;
    if (v)
        cif_value_free(v);
    return ok;
}

/* ---- Loops: one callback per packet --------------------------------------- */
typedef bf_status (*packet_fn)(const cif_ctx *ctx, cif_packet_tp *pkt, void *user);

/* Calls fn for every packet of the loop holding `item`. *found = 0 when absent. */
static bf_status for_each_packet(const cif_ctx *ctx, cif_block_tp *block, const char *item,
                                 packet_fn fn, void *user, int *found)
{
    UChar *name = NULL;
    cif_loop_tp *loop = NULL;
    cif_pktitr_tp *it = NULL;
    cif_packet_tp *pkt = NULL;
    bf_status st = BF_OK;
    *found = 0;
    if (cif_cstr_to_ustr(item, -1, &name) != CIF_OK)
        return bf_error_set(ctx->err, BF_ERR_NOMEM, "%s: out of memory", ctx->name);
    if (cif_container_get_item_loop(block, name, &loop) != CIF_OK)
        goto done;
    *found = 1;
    if (cif_loop_get_packets(loop, &it) != CIF_OK) {
        st = item_error(ctx, BF_ERR_PARSE, item, "cannot read the loop");
        goto done;
    }
    while (st == BF_OK) {
        int rc = cif_pktitr_next_packet(it, &pkt);
        if (rc == CIF_FINISHED)
            break;
        if (rc != CIF_OK) {
            st = item_error(ctx, BF_ERR_PARSE, item, "cannot read the loop");
            break;
        }
        st = fn(ctx, pkt, user);
    }
done:
    if (pkt)
        cif_packet_free(pkt);
    if (it)
        if (cif_pktitr_close(it) != CIF_OK) { /* read-only: nothing to lose */ }
    if (loop)
        cif_loop_free(loop);
    free(name);
    return st;
}

static cif_value_tp *packet_item(cif_packet_tp *pkt, const char *item)
{
    UChar *name = NULL;
    cif_value_tp *v = NULL;
    if (cif_cstr_to_ustr(item, -1, &name) != CIF_OK)
        return NULL;
    if (cif_packet_get_item(pkt, name, &v) != CIF_OK)
        v = NULL;
    free(name);
    return v; /* owned by the packet */
}

/* ---- Symmetry operators ------------------------------------------------------ */
typedef struct {
    const char *item;
    bf_symop *ops;
    int n, cap;
} symop_list;

static bf_status add_symop(symop_list *list, const bf_symop *op, const cif_ctx *ctx)
{
    for (int i = 0; i < list->n; i++)
        if (memcmp(list->ops[i].rot, op->rot, sizeof op->rot) == 0 &&
            fabs(list->ops[i].trans[0] - op->trans[0]) < 1e-6 &&
            fabs(list->ops[i].trans[1] - op->trans[1]) < 1e-6 &&
            fabs(list->ops[i].trans[2] - op->trans[2]) < 1e-6)
            return BF_OK; /* repeated operator */
    if (list->n == list->cap) {
        int cap = list->cap ? 2 * list->cap : 64;
        bf_symop *grown = realloc(list->ops, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            return bf_error_set(ctx->err, BF_ERR_NOMEM, "%s: out of memory", ctx->name);
        list->ops = grown;
        list->cap = cap;
    }
    list->ops[list->n++] = *op;
    return BF_OK;
}

static bf_status symop_packet(const cif_ctx *ctx, cif_packet_tp *pkt, void *user)
{
    symop_list *list = user;
    cif_value_tp *v = packet_item(pkt, list->item);
    char text[128];
    if (v == NULL || is_missing(v) || !value_text(v, text, sizeof text))
        return item_error(ctx, BF_ERR_PARSE, list->item, "missing operator");
    bf_symop op;
    bf_error local = {0};
    if (bf_symop_parse(text, &op, &local) != BF_OK)
        return item_error(ctx, BF_ERR_PARSE, list->item, "%s", local.msg);
    return add_symop(list, &op, ctx);
}

static int cell_is_rhombohedral(const bf_cell *c)
{
    return fabs(c->a - c->b) < 1e-6 && fabs(c->a - c->c) < 1e-6 &&
           fabs(c->alpha - c->beta) < 1e-6 && fabs(c->alpha - c->gamma) < 1e-6 &&
           fabs(c->alpha - 90.0) > 1e-6;
}

static bf_status read_symmetry(const cif_ctx *ctx, cif_block_tp *block, bf_crystal *out)
{
    static const char *const op_items[] = {"_space_group_symop_operation_xyz",
                                           "_symmetry_equiv_pos_as_xyz"};
    static const char *const hall_items[] = {"_space_group_name_Hall",
                                             "_symmetry_space_group_name_Hall"};
    static const char *const hm_items[] = {"_space_group_name_H-M_alt",
                                           "_symmetry_space_group_name_H-M"};
    for (int i = 0; i < 2; i++)
        if (read_text(block, hm_items[i], out->spacegroup, sizeof out->spacegroup))
            break;
    for (int i = 0; i < 2; i++) {
        symop_list list = {.item = op_items[i]};
        int found = 0;
        bf_status st = for_each_packet(ctx, block, op_items[i], symop_packet, &list, &found);
        if (st != BF_OK || (found && list.n == 0)) {
            free(list.ops);
            return st != BF_OK ? st : item_error(ctx, BF_ERR_PARSE, op_items[i], "empty loop");
        }
        if (found) {
            out->ops = list.ops;
            out->n_ops = list.n;
            return BF_OK;
        }
    }
    char symbol[80];
    const char *item = NULL;
    for (int i = 0; i < 2 && item == NULL; i++)
        if (read_text(block, hall_items[i], symbol, sizeof symbol))
            item = hall_items[i];
    for (int i = 0; i < 2 && item == NULL; i++)
        if (read_text(block, hm_items[i], symbol, sizeof symbol)) {
            item = hm_items[i];
            char *first = symbol + strspn(symbol, " ");
            if (toupper((unsigned char)*first) == 'R' && strchr(symbol, ':') == NULL)
                strncat(symbol, cell_is_rhombohedral(&out->cell) ? ":R" : ":H",
                        sizeof symbol - strlen(symbol) - 1);
        }
    if (item == NULL)
        return bf_error_set(ctx->err, BF_ERR_INVALID,
                            "%s: no space group (give _symmetry_space_group_name_H-M, a Hall "
                            "symbol or _symmetry_equiv_pos_as_xyz)",
                            ctx->name);
    bf_error local = {0};
    if (bf_symops_from_symbol(symbol, &out->ops, &out->n_ops, &local) != BF_OK)
        return item_error(ctx, BF_ERR_INVALID, item, "%s", local.msg);
    return BF_OK;
}

/* ---- Atom sites --------------------------------------------------------------- */
typedef struct {
    bf_atom *atoms;
    unsigned char *wants_aniso; /* [cap]: _atom_site_adp_type Uani or Bani */
    int n, cap;
} atom_list;

static bf_status packet_number(const cif_ctx *ctx, cif_packet_tp *pkt, const char *item,
                               const char *label, int required, double dflt, double *out)
{
    cif_value_tp *v = packet_item(pkt, item);
    if (v == NULL || is_missing(v)) {
        if (required)
            return item_error(ctx, BF_ERR_INVALID, item, "atom %s: missing", label);
        *out = dflt;
        return BF_OK;
    }
    if (!value_number(v, out)) {
        char text[64];
        value_text(v, text, sizeof text);
        return item_error(ctx, BF_ERR_PARSE, item, "atom %s: '%s' is not a number", label, text);
    }
    return BF_OK;
}

static bf_status atom_packet(const cif_ctx *ctx, cif_packet_tp *pkt, void *user)
{
    atom_list *list = user;
    bf_atom a = {0};
    cif_value_tp *label = packet_item(pkt, "_atom_site_label");
    cif_value_tp *type = packet_item(pkt, "_atom_site_type_symbol");
    if (label && !is_missing(label))
        value_text(label, a.label, sizeof a.label);
    if (type && !is_missing(type))
        value_text(type, a.type_symbol, sizeof a.type_symbol);
    if (a.label[0] == 0)
        snprintf(a.label, sizeof a.label, "%s%d", a.type_symbol, list->n + 1);
    bf_error local = {0};
    if (a.type_symbol[0] != 0) {
        if (bf_element_from_type_symbol(a.type_symbol, a.element, &local) != BF_OK)
            return item_error(ctx, BF_ERR_INVALID, "_atom_site_type_symbol", "atom %s: %s",
                              a.label, local.msg);
    } else if (!bf_element_from_label(a.label, a.element)) {
        return item_error(ctx, BF_ERR_INVALID, "_atom_site_label",
                          "atom %s: no element in the label and no _atom_site_type_symbol",
                          a.label);
    }
    bf_status st;
    if ((st = packet_number(ctx, pkt, "_atom_site_fract_x", a.label, 1, 0, &a.x)) ||
        (st = packet_number(ctx, pkt, "_atom_site_fract_y", a.label, 1, 0, &a.y)) ||
        (st = packet_number(ctx, pkt, "_atom_site_fract_z", a.label, 1, 0, &a.z)) ||
        (st = packet_number(ctx, pkt, "_atom_site_occupancy", a.label, 0, 1.0, &a.occupancy)))
        return st;
    double biso = NAN;
    if ((st = packet_number(ctx, pkt, "_atom_site_U_iso_or_equiv", a.label, 0, NAN, &a.uiso_A2)) ||
        (st = packet_number(ctx, pkt, "_atom_site_B_iso_or_equiv", a.label, 0, NAN, &biso)))
        return st;
    if (isnan(a.uiso_A2))
        a.uiso_A2 = isnan(biso) ? DEFAULT_UISO_A2 : biso / (8.0 * M_PI * M_PI);
    if (a.occupancy < 0.0 || a.uiso_A2 < 0.0)
        return item_error(ctx, BF_ERR_INVALID, "_atom_site_occupancy",
                          "atom %s: occupancy and Uiso must not be negative", a.label);
    char adp[16] = "";
    cif_value_tp *adp_type = packet_item(pkt, "_atom_site_adp_type");
    if (adp_type == NULL)
        adp_type = packet_item(pkt, "_atom_site_thermal_displace_type"); /* DDL1 alias */
    if (adp_type && !is_missing(adp_type))
        value_text(adp_type, adp, sizeof adp);
    if (list->n == list->cap) {
        int cap = list->cap ? 2 * list->cap : 16;
        bf_atom *grown = realloc(list->atoms, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            return bf_error_set(ctx->err, BF_ERR_NOMEM, "%s: out of memory", ctx->name);
        list->atoms = grown;
        unsigned char *flags = realloc(list->wants_aniso, (size_t)cap);
        if (flags == NULL)
            return bf_error_set(ctx->err, BF_ERR_NOMEM, "%s: out of memory", ctx->name);
        list->wants_aniso = flags;
        list->cap = cap;
    }
    list->wants_aniso[list->n] = !strcasecmp(adp, "Uani") || !strcasecmp(adp, "Bani");
    list->atoms[list->n++] = a;
    return BF_OK;
}

/* ---- Anisotropic displacements ------------------------------------------------------ */
/* U_ij, B_ij = 8 pi^2 U_ij, or beta_ij = 2 pi^2 a*_i a*_j U_ij (CIF core dictionary). */
static const char *const aniso_items[3][6] = {
    {"_atom_site_aniso_U_11", "_atom_site_aniso_U_22", "_atom_site_aniso_U_33",
     "_atom_site_aniso_U_12", "_atom_site_aniso_U_13", "_atom_site_aniso_U_23"},
    {"_atom_site_aniso_B_11", "_atom_site_aniso_B_22", "_atom_site_aniso_B_33",
     "_atom_site_aniso_B_12", "_atom_site_aniso_B_13", "_atom_site_aniso_B_23"},
    {"_atom_site_aniso_beta_11", "_atom_site_aniso_beta_22", "_atom_site_aniso_beta_33",
     "_atom_site_aniso_beta_12", "_atom_site_aniso_beta_13", "_atom_site_aniso_beta_23"}};

typedef struct {
    atom_list *atoms;
    double astar[3];          /* of the CIF's cell, for beta_ij */
    unsigned char *listed;    /* [atoms->n] */
} aniso_list;

static bf_status aniso_packet(const cif_ctx *ctx, cif_packet_tp *pkt, void *user)
{
    aniso_list *list = user;
    char label[32] = "";
    cif_value_tp *v = packet_item(pkt, "_atom_site_aniso_label");
    if (v == NULL || is_missing(v) || !value_text(v, label, sizeof label) || label[0] == 0)
        return item_error(ctx, BF_ERR_INVALID, "_atom_site_aniso_label", "missing label");
    int a = 0;
    while (a < list->atoms->n && strcmp(list->atoms->atoms[a].label, label) != 0)
        a++;
    if (a == list->atoms->n)
        return item_error(ctx, BF_ERR_INVALID, "_atom_site_aniso_label",
                          "atom %s: not in the _atom_site_label loop", label);
    if (list->listed[a])
        return item_error(ctx, BF_ERR_INVALID, "_atom_site_aniso_label",
                          "atom %s: listed twice", label);
    int kind = 0;
    while (kind < 3 && packet_item(pkt, aniso_items[kind][0]) == NULL)
        kind++;
    if (kind == 3)
        return item_error(ctx, BF_ERR_INVALID, "_atom_site_aniso_label",
                          "atom %s: no _atom_site_aniso_U_11, _B_11 or _beta_11", label);
    static const int axes[6][2] = {{0, 0}, {1, 1}, {2, 2}, {0, 1}, {0, 2}, {1, 2}};
    double u[6];
    for (int m = 0; m < 6; m++) {
        const char *item = aniso_items[kind][m];
        cif_value_tp *x = packet_item(pkt, item);
        if (x == NULL)
            return item_error(ctx, BF_ERR_INVALID, aniso_items[kind][0],
                              "atom %s: the loop lacks %s", label, item);
        if (is_missing(x))
            return item_error(ctx, BF_ERR_INVALID, item, "atom %s: missing value ('?' or '.')",
                              label);
        if (!value_number(x, &u[m])) {
            char text[64];
            value_text(x, text, sizeof text);
            return item_error(ctx, BF_ERR_PARSE, item, "atom %s: '%s' is not a number", label,
                              text);
        }
        if (kind == 1)
            u[m] /= 8.0 * M_PI * M_PI;
        else if (kind == 2)
            u[m] /= 2.0 * M_PI * M_PI * list->astar[axes[m][0]] * list->astar[axes[m][1]];
    }
    bf_atom *at = &list->atoms->atoms[a];
    memcpy(at->u_aniso_A2, u, sizeof u);
    at->aniso = 1;
    list->listed[a] = 1;
    /* T = exp(-2 pi^2 h'^T B h') <= 1 for every h' only when U is positive definite
     * (leading minors); GSAS-II computes with it anyway, so do we, with a warning */
    const double m2 = u[0] * u[1] - u[3] * u[3];
    const double m3 = u[0] * (u[1] * u[2] - u[5] * u[5]) - u[3] * (u[3] * u[2] - u[5] * u[4]) +
                      u[4] * (u[3] * u[5] - u[1] * u[4]);
    if (!(u[0] > 0.0 && m2 > 0.0 && m3 > 0.0))
        bf_warn("%s: atom %s: anisotropic U is not positive definite (read as given)",
                ctx->name, label);
    return BF_OK;
}

/* The _atom_site_aniso_ loop, if any, into the atoms; then every Uani/Bani atom must have
 * been in it. */
static bf_status read_aniso(const cif_ctx *ctx, cif_block_tp *block, const bf_cell *cell,
                            atom_list *atoms)
{
    aniso_list list = {.atoms = atoms, .listed = calloc((size_t)atoms->n, 1)};
    if (list.listed == NULL)
        return bf_error_set(ctx->err, BF_ERR_NOMEM, "%s: out of memory", ctx->name);
    bf_cell_reciprocal_lengths(cell, list.astar);
    int found = 0;
    bf_status st = for_each_packet(ctx, block, "_atom_site_aniso_label", aniso_packet, &list,
                                   &found);
    for (int a = 0; a < atoms->n && st == BF_OK; a++)
        if (atoms->wants_aniso[a] && !list.listed[a])
            st = item_error(ctx, BF_ERR_INVALID, "_atom_site_adp_type",
                            "atom %s: Uani but not in the _atom_site_aniso_ loop",
                            atoms->atoms[a].label);
    free(list.listed);
    return st;
}

static bf_status read_block(const cif_ctx *ctx, cif_block_tp *block, bf_crystal *out)
{
    static const char *const cell_items[6] = {"_cell_length_a", "_cell_length_b",
                                              "_cell_length_c", "_cell_angle_alpha",
                                              "_cell_angle_beta", "_cell_angle_gamma"};
    double cell[6];
    for (int i = 0; i < 6; i++) {
        bf_status st = read_number(ctx, block, cell_items[i], i < 3, 90.0, &cell[i]);
        if (st != BF_OK)
            return st;
    }
    out->cell = (bf_cell){cell[0], cell[1], cell[2], cell[3], cell[4], cell[5]};
    bf_error local = {0};
    if (bf_cell_validate(&out->cell, "cell", &local) != BF_OK)
        return item_error(ctx, BF_ERR_INVALID, "_cell_length_a", "%s", local.msg);
    bf_status st = read_symmetry(ctx, block, out);
    if (st != BF_OK)
        return st;
    atom_list atoms = {0};
    int found = 0;
    st = for_each_packet(ctx, block, "_atom_site_fract_x", atom_packet, &atoms, &found);
    if (st == BF_OK && atoms.n == 0)
        st = bf_error_set(ctx->err, BF_ERR_INVALID,
                          "%s: no atom sites (_atom_site_fract_x/y/z loop)", ctx->name);
    if (st == BF_OK)
        st = read_aniso(ctx, block, &out->cell, &atoms);
    free(atoms.wants_aniso);
    if (st != BF_OK) {
        free(atoms.atoms);
        return st;
    }
    out->atoms = atoms.atoms;
    out->n_atoms = atoms.n;
    return BF_OK;
}

/* data block code as ASCII ("" when it has none) */
static void block_code(cif_block_tp *block, char *out, size_t outsz)
{
    UChar *code = NULL;
    out[0] = 0;
    if (cif_container_get_code(block, &code) == CIF_OK && code != NULL) {
        size_t n = 0;
        for (const UChar *p = code; *p && n + 1 < outsz; p++)
            out[n++] = *p < 128 ? (char)*p : '?';
        out[n] = 0;
    }
    free(code);
}

/* Index of the block named `want` (case-insensitive, "data_" prefix optional), or an
 * error listing the blocks there are. */
static bf_status find_block(const char *name, cif_block_tp **blocks, const char *want,
                            int *chosen, bf_error *err)
{
    if (strncasecmp(want, "data_", 5) == 0)
        want += 5;
    char code[128], list[1024] = "";
    size_t used = 0;
    for (int b = 0; blocks[b]; b++) {
        block_code(blocks[b], code, sizeof code);
        if (strcasecmp(code, want) == 0) {
            *chosen = b;
            return BF_OK;
        }
        if (used < sizeof list - 1) {
            int n = snprintf(list + used, sizeof list - used, "%sdata_%s", b ? ", " : "", code);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    return bf_error_set(err, BF_ERR_INVALID, "%s: no data block '%s' (the file has: %s)", name,
                        want, list);
}

bf_status bf_crystal_read_cif_text(const char *text, size_t len, const char *name,
                                   bf_crystal *out, bf_error *err)
{
    return bf_crystal_read_cif_text_block(text, len, name, NULL, out, err);
}

bf_status bf_crystal_read_cif_text_block(const char *text, size_t len, const char *name,
                                         const char *block, bf_crystal *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->source, sizeof out->source, "%s", name);
    /* libcif wants a stream and item lookups want NUL-terminated text */
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", name);
    memcpy(copy, text, len);
    copy[len] = 0;
    cif_ctx ctx = {.name = name, .text = copy, .err = err,
                   .cif2 = len >= 10 && !strncmp(copy, "#\\#CIF_2.0", 10)};
    struct cif_parse_opts_s *opts = NULL;
    cif_tp *cif = NULL;
    cif_block_tp **blocks = NULL;
    FILE *stream = NULL;
    bf_status st = BF_OK;

    if (len == 0) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: empty file", name);
        goto done;
    }
    stream = fmemopen(copy, len, "r");
    if (stream == NULL || cif_parse_options_create(&opts) != CIF_OK) {
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: cannot set up the CIF parser", name);
        goto done;
    }
    opts->error_callback = on_parse_error;
    opts->user_data = &ctx;
    opts->default_encoding_name = "UTF-8";
    if (cif_parse(stream, opts, &cif) != CIF_OK || ctx.syntax_error) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: CIF syntax error", name);
        goto done;
    }
    if (ctx.tolerated_line)
        bf_warn("%s:%zu:%zu: '[' or ']' inside an unquoted value, read as CIF 1.1 readers read "
                "it (libcif: %s)", name, ctx.tolerated_line, ctx.tolerated_column,
                cif_errlist[ctx.tolerated_code]);
    if (cif_get_all_blocks(cif, &blocks) != CIF_OK || blocks == NULL || blocks[0] == NULL) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: no data block (data_NAME)", name);
        goto done;
    }
    int chosen = 0;
    if (block != NULL && block[0] != 0) {
        if ((st = find_block(name, blocks, block, &chosen, err)) != BF_OK)
            goto done;
        block_code(blocks[chosen], out->name, sizeof out->name);
    } else {
        /* several data blocks (a paper's CIF: one per compound, or a global block first):
         * the first with atom sites */
        int with_sites = 0;
        for (int b = 0; blocks[b]; b++)
            if (has_loop(blocks[b], "_atom_site_fract_x") && with_sites++ == 0)
                chosen = b;
        block_code(blocks[chosen], out->name, sizeof out->name);
        if (with_sites > 1 || (chosen > 0 && blocks[1]))
            bf_warn("%s: %d data blocks, %d with atom sites: read data_%s (choose one with "
                    "--block)", name, count_blocks(blocks), with_sites, out->name);
    }
    st = read_block(&ctx, blocks[chosen], out);
done:
    if (blocks) {
        for (cif_block_tp **b = blocks; *b; b++)
            cif_container_free(*b);
        free(blocks);
    }
    if (cif)
        if (cif_destroy(cif) != CIF_OK) { /* nothing more to release */ }
    free(opts);
    if (stream)
        fclose(stream);
    free(copy);
    if (st != BF_OK)
        bf_crystal_free(out);
    return st;
}

bf_status bf_crystal_read_cif(const char *path, bf_crystal *out, bf_error *err)
{
    return bf_crystal_read_cif_block(path, NULL, out, err);
}

bf_status bf_crystal_read_cif_block(const char *path, const char *block, bf_crystal *out,
                                    bf_error *err)
{
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    bf_status st = bf_read_file(path, &text, &len, err);
    if (st == BF_OK)
        st = bf_crystal_read_cif_text_block(text, len, path, block, out, err);
    free(text);
    return st;
}

void bf_crystal_free(bf_crystal *c)
{
    if (c == NULL)
        return;
    free(c->ops);
    free(c->atoms);
    c->ops = NULL;
    c->atoms = NULL;
    c->n_ops = c->n_atoms = 0;
}
