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
typedef struct {
    char element[4];
    double f_prime, f_double_prime;   /* electrons */
} bf_fprime_override;
typedef struct {
    bf_radiation_kind kind;
    bf_b_table b_table;               /* neutrons: which scattering-length table */
    double wavelength_A;              /* X-rays: f', f'' at this wavelength (Lam, or Lam1) */
    int n_fprime;                     /* X-rays: f', f'' given by the user replace the table's */
    bf_fprime_override fprime[BF_MAX_FPRIME_OVERRIDES];
} bf_radiation;
/* Parses user f', f'' values "Ba:-1.0499:8.4588 Ti:0.2181:1.8068" (items separated by
 * spaces or commas) into out[] (at most BF_MAX_FPRIME_OVERRIDES); `what` names the
 * option or key in messages. */
bf_status bf_fprime_overrides_parse(const char *text, const char *what, bf_fprime_override *out,
                                    int *n, bf_error *err);
/* Neutrons with scattering lengths from `table` (the other fields zero). */
bf_radiation bf_radiation_neutron(bf_b_table table);

/* ---- Crystal structure -------------------------------------------------- */
typedef struct {
    char label[32];
    char type_symbol[16];
    char element[4];
    double x, y, z;          /* fractional */
    double occupancy;        /* default 1 */
    double uiso_A2;          /* from Uiso, or Biso/(8 pi^2); default 0.01 as in GSAS-II */
    int aniso;               /* 1: u_aniso_A2 is used in the structure factor, uiso_A2 is not */
    double u_aniso_A2[6];    /* U11 U22 U33 U12 U13 U23 (Angstrom^2, CIF convention) */
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
 * scattering from `rad` (neutrons: bf_neutron_b; an element it lacks is an error
 * naming the file and the atom). */
bf_status bf_reflection_table_build(const bf_crystal *c, const bf_radiation *rad, int hmax,
                                    int kmax, int lmax, bf_reflection_table *out,
                                    bf_error *err);
void bf_reflection_table_free(bf_reflection_table *t);
/* |F|^2 of entry i at spacing d, in (1e-12 cm)^2 (neutrons) or electrons^2 (X-rays).
 * astar_invA = the reciprocal lengths a*, b*, c* of the current cell (used by
 * anisotropic displacements; bf_cell_reciprocal_lengths). */
double bf_reflection_table_f2(const bf_reflection_table *t, int i, double d_A,
                              const double astar_invA[3]);

/* Convenience for tests and the `reflections` command: the orbit of (h,k,l)
 * under the Laue group of the operators, and whether two hkl are equivalent. */
int bf_hkl_equivalent(const bf_crystal *c, int h1, int k1, int l1, int h2, int k2, int l2);

#ifdef __cplusplus
}
#endif
#endif
