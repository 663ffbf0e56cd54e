/* braggflow/crystal.h — unit cells, symmetry operators, CIF reading (libcif),
 * neutron scattering lengths, reflection lists and structure factors.
 *
 * Units: lengths in Angstrom, angles in degrees, Uiso in Angstrom^2,
 * scattering lengths in fm (1 fm = 1e-13 cm), X-ray scattering factors in electrons.
 * Structure factors are reported as |F|^2 in GSAS-II's units: (1e-12 cm)^2 = F_fm^2 / 100
 * for neutrons, electrons^2 for X-rays. */
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
/* a*, b*, c* (1/Angstrom): the square roots of the diagonal of G*. */
void bf_cell_reciprocal_lengths(const bf_cell *cell, double astar_invA[3]);
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

/* ---- X-ray scattering factors (crystal/xray_ff.c) ------------------------ */
/* f0(s) = sum_i a_i exp(-b_i s^2) + c (Cromer & Waber, International Tables Vol. IV;
 * docs/gsas2-cw.md §8.8). `symbol` is the table entry used ("O-2", "Ba+2", "Ba"). */
typedef struct {
    double a[4], b[4], c;
    char symbol[8];
} bf_xray_f0_coeffs;
/* Coefficients for a CIF type symbol: the ionic entry when the table has it ("Ca2+" and
 * "Ca+2" both select Ca+2), else the neutral element. BF_ERR_INVALID naming the symbol
 * when the table has neither. */
bf_status bf_xray_f0_lookup(const char *type_symbol, bf_xray_f0_coeffs *out, bf_error *err);
/* f0 in electrons at s2 = (sin(theta)/lambda)^2 = 1 / (4 d^2), 1/Angstrom^2. */
double bf_xray_f0(const bf_xray_f0_coeffs *c, double s2_invA2);
/* Anomalous dispersion f', f'' (electrons) of an element at a photon energy (keV).
 * BF_ERR_INVALID naming the element when it has no data. */
bf_status bf_xray_anomalous(const char *element, double energy_keV, double *f_prime,
                            double *f_double_prime, bf_error *err);
/* Photon energy of a wavelength: 12.397639 / lambda keV (GSAS-II's constant). */
double bf_xray_energy_keV(double wavelength_A);

/* ---- Radiation: what scatters, and how strongly ---------------------------- */
typedef enum { BF_RADIATION_NEUTRON, BF_RADIATION_XRAY } bf_radiation_kind;
#define BF_MAX_FPRIME_OVERRIDES 16
#define BF_MAX_F0_OVERRIDES 16
typedef struct {
    char element[4];
    double f_prime, f_double_prime;   /* electrons */
} bf_fprime_override;
typedef struct {
    bf_radiation_kind kind;
    bf_b_table b_table;               /* neutrons: which scattering-length table */
    double wavelength_A;              /* X-rays: f', f'' at this wavelength (Lam, or Lam1) */
    int n_fprime;                     /* X-rays: f', f'' given by the user replace the table's */
    bf_fprime_override fprime[BF_MAX_FPRIME_OVERRIDES];   /* matched by element */
    int n_f0;                         /* X-rays: f0 coefficients given by the user replace the
                                       * table's; matched by .symbol to the atom's type symbol,
                                       * charge written either way ("Ba+2" = "Ba2+" = "BA+2") */
    bf_xray_f0_coeffs f0[BF_MAX_F0_OVERRIDES];
} bf_radiation;
/* Parses user f', f'' values "Ba:-1.0499:8.4588 Ti:0.2181:1.8068" (items separated by
 * spaces or commas) into out[] (at most BF_MAX_FPRIME_OVERRIDES); `what` names the
 * option or key in messages. */
bf_status bf_fprime_overrides_parse(const char *text, const char *what, bf_fprime_override *out,
                                    int *n, bf_error *err);
/* Neutrons with scattering lengths from `table` (the other fields zero). */
bf_radiation bf_radiation_neutron(bf_b_table table);
/* X-rays of one wavelength (Angstrom), no overrides. */
bf_radiation bf_radiation_xray(double wavelength_A);

/* ---- Crystal structure -------------------------------------------------- */
typedef struct {
    char label[32];
    char type_symbol[16];
    char element[4];
    double x, y, z;          /* fractional */
    double occupancy;        /* default 1 */
    double uiso_A2;          /* from Uiso, or Biso/(8 pi^2); default 0.01 as in GSAS-II */
    int aniso;               /* 1: u_aniso_A2 is used in the structure factor, uiso_A2 is not
                              * (an atom of the _atom_site_aniso_ loop) */
    double u_aniso_A2[6];    /* U11 U22 U33 U12 U13 U23 (Angstrom^2, CIF convention; from
                              * U_ij, B_ij / (8 pi^2) or beta_ij / (2 pi^2 a*_i a*_j)) */
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

/* Reads the data block of a CIF that has atom sites (the first such, with a warning when
 * there are several). Errors name the file and, where the parser knows it, the line and
 * the item ("x.cif:37: _cell_length_c: ..."). */
bf_status bf_crystal_read_cif(const char *path, bf_crystal *out, bf_error *err);
/* Same with the block chosen by name (data_NAME without "data_", case-insensitive);
 * block NULL or "" = bf_crystal_read_cif's rule. A name the file lacks is an error
 * listing the blocks it has. */
bf_status bf_crystal_read_cif_block(const char *path, const char *block, bf_crystal *out,
                                    bf_error *err);
/* Same from memory (fuzzing, tests); `name` is used in messages. */
bf_status bf_crystal_read_cif_text(const char *text, size_t len, const char *name,
                                   bf_crystal *out, bf_error *err);
bf_status bf_crystal_read_cif_text_block(const char *text, size_t len, const char *name,
                                         const char *block, bf_crystal *out, bf_error *err);
/* Multiplicity of atom `atom` in the conventional cell as GSAS-II counts it: n_ops / the
 * number of operators (centring included) that map the site onto itself, to 2e-4 in each
 * fractional coordinate modulo 1 (so 0.3333 is 1/3). 0 when no operator does (a list
 * without the identity). */
int bf_crystal_site_multiplicity(const bf_crystal *c, int atom);
void bf_crystal_free(bf_crystal *c);

/* ---- Reflections -------------------------------------------------------- */
typedef struct {
    int h, k, l;
    int mult;                /* powder multiplicity in the Laue class */
} bf_hkl;

/* What scatters: one per distinct (f0 entry, element) for X-rays, per element for neutrons.
 * f = b + i b'' (fm) for neutrons; f0(s) + f' + i f'' (electrons) for X-rays. */
typedef struct {
    char symbol[16];          /* neutrons: the element; X-rays: the f0 entry ("Ba+2") */
    char element[4];
    int xray;
    double f_re, f_im;        /* neutrons: b, b''; X-rays: f', f'' */
    bf_xray_f0_coeffs f0;     /* X-rays */
} bf_scatterer;

/* One anisotropic term of entry i: an operator class of the reflection (the operators
 * whose h' = h.R agree up to sign, so T(h') = exp(-2 pi^2 h'^T B h') agrees), one distinct
 * U tensor and one scatterer: F += f_scatterer * T * (re + i im) (for neutrons, whose f
 * does not depend on d, f is in re + i im and the term sums every scatterer of that U). */
typedef struct {
    short hp[3];              /* h' = h.R of the class (any member) */
    short u;                  /* index into aniso_u */
    short scatterer;          /* -1: f folded into re, im (neutrons: f is a constant) */
    short same_t;             /* 1: T equals the previous term's (same class and U) */
    double re, im;            /* sum over the class and the atoms: frac mult/nOps e^{i phase} */
} bf_aniso_term;

/* Laue-unique, not systematically absent reflections inside an index box, with their
 * structure factors split so that F for any cell (which changes d and a*) is a short sum
 * (docs/gsas2.md "Structure factor"; GSAS-II's operator average, every operator summed):
 *   F(hkl) = sum_g f_{s(g)}(d) exp(-2 pi^2 U_g / d^2) (f_re[i*n_groups+g] + i f_im[...])
 *          + sum_{terms of i} f_{s(term)}(d) exp(-2 pi^2 sum_ab h'_a h'_b a*_a a*_b U_ab)
 *            (re + i im),
 * the first over the (scatterer, Uiso) groups of the isotropic atoms, the second over the
 * anisotropic atoms' terms. Absences come from the operators (h.R = h with h.t not an
 * integer), not from F = 0, as in GSAS-II; accidental zeros are kept. */
typedef struct {
    int n;
    bf_hkl *hkl;
    int n_scatterers;
    bf_scatterer *scatterers;
    int n_groups;
    double *uiso_A2;         /* [n_groups] */
    int *group_scatterer;    /* [n_groups] */
    double *f_re, *f_im;     /* [n * n_groups]: sum frac mult/nOps e^{i phase}, no f */
    int n_aniso_u;
    double (*aniso_u)[6];    /* [n_aniso_u] distinct U11 U22 U33 U12 U13 U23 (A^2) */
    size_t *aniso_start;     /* [n + 1]: terms of entry i are aniso[aniso_start[i] ..] */
    bf_aniso_term *aniso;
    double f2_scale;         /* 0.01: fm^2 -> (1e-12 cm)^2 (neutrons); 1 (X-rays) */
    int hmax, kmax, lmax;    /* the box it covers */
} bf_reflection_table;

/* Every reflection of the box with its structure factor parts, the atoms' scattering
 * from `rad` (neutrons: bf_neutron_b; X-rays: f0 from rad->f0 or bf_xray_f0_lookup, f',
 * f'' from rad->fprime or bf_xray_anomalous at rad->wavelength_A). An element or symbol
 * without data is an error naming the file and the atom. */
bf_status bf_reflection_table_build(const bf_crystal *c, const bf_radiation *rad, int hmax,
                                    int kmax, int lmax, bf_reflection_table *out,
                                    bf_error *err);
void bf_reflection_table_free(bf_reflection_table *t);
/* |F|^2 of entry i at spacing d, in (1e-12 cm)^2 (neutrons) or electrons^2 (X-rays).
 * astar_invA = the reciprocal lengths a*, b*, c* of the current cell (used by
 * anisotropic displacements; bf_cell_reciprocal_lengths); it may be NULL only when the
 * table has no anisotropic atom (else the result is NaN). */
double bf_reflection_table_f2(const bf_reflection_table *t, int i, double d_A,
                              const double astar_invA[3]);

/* Reference: F of one reflection (any hkl, absent or not) straight from the formula,
 * every operator and atom summed at the cell `cell` (d and a* from it): the plain
 * version the table is tested against. F in fm (neutrons) or electrons (X-rays). */
bf_status bf_structure_factor_direct(const bf_crystal *c, const bf_radiation *rad,
                                     const bf_cell *cell, int h, int k, int l, double *f_re,
                                     double *f_im, bf_error *err);

/* Convenience for tests and the `reflections` command: the orbit of (h,k,l)
 * under the Laue group of the operators, and whether two hkl are equivalent. */
int bf_hkl_equivalent(const bf_crystal *c, int h1, int k1, int l1, int h2, int k2, int l2);

#ifdef __cplusplus
}
#endif
#endif
