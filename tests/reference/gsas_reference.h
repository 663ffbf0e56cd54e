/* tests/reference/gsas_reference.h — reads the GSAS-II reference patterns in
 * shared/reference/gsas2/ (files: docs/gsas2.md §11) for the fidelity tests. */
#ifndef BF_TEST_GSAS_REFERENCE_H
#define BF_TEST_GSAS_REFERENCE_H

#define GSAS_MAX_ROWS 4
#define GSAS_REFL_COLUMNS 18     /* TOF */
#define GSAS_CW_REFL_COLUMNS 15  /* CW */
/* column indices of reflections/NNN */
enum { GR_H, GR_K, GR_L, GR_MULT, GR_D, GR_TOF, GR_SIG, GR_GAM, GR_FOBS2, GR_FCALC2, GR_PHASE,
       GR_ICORR, GR_ALPHA, GR_BETA };
/* CW columns (gsas2_cw/README.md "HDF5 layout"): pos = Ka1 2theta, sig centideg^2, gam centideg */
enum { GRC_H, GRC_K, GRC_L, GRC_MULT, GRC_D, GRC_POS, GRC_SIG, GRC_GAM, GRC_FOBS2, GRC_FCALC2,
       GRC_PHASE, GRC_ICORR };

typedef struct {
    int n_rows, length;
    int n_cols;                           /* reflection columns: 18 (TOF) or 15 (CW) */
    double *x;                            /* [length] TOF (us) or 2theta (deg) */
    double *intensity;                    /* [n_rows * length] */
    double cell[GSAS_MAX_ROWS][6];
    int n_refl[GSAS_MAX_ROWS];
    double *refl[GSAS_MAX_ROWS];          /* [n_refl * n_cols] */
} gsas_reference;

/* 0 on success. */
int gsas_reference_read(const char *path, gsas_reference *ref);
void gsas_reference_free(gsas_reference *ref);

/* The TOF reference patterns (NOMAD bank 4): the three seed materials, and the two CIFs
 * of the CW set (gsas2_cw/README.md §8.9): triclinic 9001833 (row 0) and 2013358 (row 1:
 * partial occupancy, every atom anisotropic). */
typedef struct {
    const char *h5;   /* under reference/ */
    const char *cif;  /* under reference/ */
    int first, rows;  /* the file's rows first .. first + rows - 1 are compared */
} gsas_case;
#define N_GSAS_CASES 5
extern const gsas_case gsas_cases[N_GSAS_CASES];

/* Rwp with the least-squares scale k (docs/gsas2.md §10), over [lo, hi). */
double gsas_rwp(const double *ref, const double *ours, int lo, int hi);

#endif
