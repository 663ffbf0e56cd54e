/* braggflow/crystal.h — unit cells, symmetry operators, CIF reading (libcif),
 * neutron scattering lengths, reflection lists and structure factors.
 *
 * Units: lengths in Angstrom, angles in degrees, Uiso in Angstrom^2,
 * scattering lengths in fm (1 fm = 1e-13 cm). Structure factors are reported
 * as |F|^2 in GSAS-II's units, (1e-12 cm)^2 = F_fm^2 / 100. */
#ifndef BRAGGFLOW_CRYSTAL_H
#define BRAGGFLOW_CRYSTAL_H

#include "braggflow/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Unit cell ------------------------------------------------------- */
typedef struct {
    double a, b, c;             /* Angstrom */
    double alpha, beta, gamma;  /* degrees */
} bf_cell;

/* Checks lengths > 0, angles in (0, 180), and a real cell (positive volume^2).
 * `what` names the cell in the message (e.g. "--cell"). */
bf_status bf_cell_validate(const bf_cell *cell, const char *what, bf_error *err);
double bf_cell_volume(const bf_cell *cell);                     /* Angstrom^3 */
/* Reciprocal metric tensor G* (1/Angstrom^2): 1/d^2 = h^T G* h. */
void bf_cell_reciprocal_metric(const bf_cell *cell, double gstar[3][3]);
double bf_cell_d_spacing(const bf_cell *cell, int h, int k, int l); /* Angstrom */
/* Largest |h|, |k|, |l| any reflection with d >= dmin can have: |h| <= a/dmin etc. */
void bf_cell_index_bounds(const bf_cell *cell, double dmin_A, int *hmax, int *kmax, int *lmax);

/* ---- Symmetry --------------------------------------------------------- */
typedef struct {
    int rot[3][3];      /* fractional: x' = rot . x + trans */
    double trans[3];
} bf_symop;

/* Parses one operator in CIF "x,y,z" notation ("-y+1/2, x, z+0.25", "1/2+x,...").
 * Returns BF_ERR_PARSE with a message quoting the text on failure. */
bf_status bf_symop_parse(const char *xyz, bf_symop *op, bf_error *err);
/* Operators for a Hermann-Mauguin or Hall symbol via spglib's database. */
bf_status bf_symops_from_symbol(const char *hm_or_hall, bf_symop **ops, int *n_ops,
                                bf_error *err);

/* ---- Scattering lengths ------------------------------------------------ */
/* Which table of coherent neutron scattering lengths (natural isotopic abundance):
 * GSAS-II's (the default: patterns then compare with GSAS-II's) or Sears 1992 (NIST). */
typedef enum { BF_B_TABLE_GSAS2, BF_B_TABLE_SEARS } bf_b_table;
const char *bf_b_table_name(bf_b_table t);             /* "gsas2", "sears" */
int bf_b_table_parse(const char *s, bf_b_table *out);  /* 0, or -1 for anything else */
/* b and its imaginary part b'' (fm; b'' only in GSAS-II's table, e.g. natural boron) for
 * an element symbol ("O", "Nb"; case as printed). BF_ERR_INVALID, naming the element,
 * for an unknown one, one the table lacks, or a resonant absorber (Gd, Sm, Cd, ... in
 * GSAS-II's table: wavelength-dependent). */
bf_status bf_neutron_b(const char *element, bf_b_table table, double *b_fm, double *b_imag_fm,
                       bf_error *err);
/* Element of a CIF type symbol: "Ba2+", "La+3", "O-2", "Nb5+", "Fe" -> "Ba", "La", ... */
bf_status bf_element_from_type_symbol(const char *type_symbol, char element[4], bf_error *err);

/* ---- Crystal structure -------------------------------------------------- */
typedef struct {
    char label[32];
    char type_symbol[16];
    char element[4];
    double x, y, z;          /* fractional */
    double occupancy;        /* default 1 */
    double uiso_A2;          /* from Uiso, or Biso/(8 pi^2); default 0.01 as in GSAS-II */
} bf_atom;

typedef struct {
    char name[128];          /* data block name */
    char source[4096];       /* file it came from */
    char spacegroup[64];     /* H-M symbol as given, or "" */
    bf_cell cell;            /* the CIF's own cell */
    bf_symop *ops;           /* full list incl. centring translations; ops[0] need not be identity */
    int n_ops;
    bf_atom *atoms;          /* asymmetric unit */
    int n_atoms;
} bf_crystal;

/* Reads the first data block of a CIF. Errors name the file and, where the
 * parser knows it, the line and the item ("x.cif:37: _cell_length_c: ..."). */
bf_status bf_crystal_read_cif(const char *path, bf_crystal *out, bf_error *err);
/* Same from memory (fuzzing); `name` is used in messages. */
bf_status bf_crystal_read_cif_text(const char *text, size_t len, const char *name,
                                   bf_crystal *out, bf_error *err);
void bf_crystal_free(bf_crystal *c);

/* ---- Reflections -------------------------------------------------------- */
typedef struct {
    int h, k, l;
    int mult;                /* powder multiplicity in the Laue class */
} bf_hkl;

/* Laue-unique, not systematically absent reflections inside an index box,
 * with their structure factors split by Uiso group so that |F|^2 for any cell
 * (which changes d and so the Debye-Waller factor) is a short sum:
 *   F(hkl, d) = sum_g exp(-2 pi^2 U_g / d^2) * (f_re[i*n_groups+g] + i f_im[...]).
 * Absences come from the operators (h.R = h with h.t not an integer), not
 * from F = 0, as in GSAS-II; accidental zeros are kept. */
typedef struct {
    int n;
    bf_hkl *hkl;
    int n_groups;
    double *uiso_A2;         /* [n_groups] */
    double *f_re, *f_im;     /* [n * n_groups], fm */
    int hmax, kmax, lmax;    /* the box it covers */
} bf_reflection_table;

/* Every reflection of the box with its structure factor per Uiso group, the atoms'
 * neutron scattering lengths from `table` (bf_neutron_b: an element it lacks is an
 * error naming the file and the atom). */
bf_status bf_reflection_table_build(const bf_crystal *c, bf_b_table table, int hmax, int kmax,
                                    int lmax, bf_reflection_table *out, bf_error *err);
void bf_reflection_table_free(bf_reflection_table *t);
/* |F|^2 of entry i at spacing d, in (1e-12 cm)^2. */
double bf_reflection_table_f2(const bf_reflection_table *t, int i, double d_A);

/* Convenience for tests and the `reflections` command: the orbit of (h,k,l)
 * under the Laue group of the operators, and whether two hkl are equivalent. */
int bf_hkl_equivalent(const bf_crystal *c, int h1, int k1, int l1, int h2, int k2, int l2);

#ifdef __cplusplus
}
#endif
#endif
