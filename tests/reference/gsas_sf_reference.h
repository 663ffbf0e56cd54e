/* tests/reference/gsas_sf_reference.h — reads what the structure-factor tests need from the
 * GSAS-II reference files in shared/reference/gsas2_cw/ (layout: its README, "HDF5
 * layout"): reflection lists, cells, CIF names, the atoms' site multiplicities and the
 * X-ray scattering factors GSAS-II used (scattering_json). */
#ifndef BF_TEST_GSAS_SF_REFERENCE_H
#define BF_TEST_GSAS_SF_REFERENCE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "braggflow/crystal.h"

typedef struct {
    int64_t file;   /* hid_t */
} gsas_sf_file;

typedef struct {
    char label[16];
    int mult;
} gsas_sf_atom;

/* 0 on success. */
int gsas_sf_open(const char *path, gsas_sf_file *f);
void gsas_sf_close(gsas_sf_file *f);
/* A float64 dataset (1-D: cols = 1), malloc'd; NULL when absent. */
double *gsas_sf_doubles(const gsas_sf_file *f, const char *name, int *rows, int *cols);
/* Row `row` of a fixed-length string dataset; 0 on success. */
int gsas_sf_string(const gsas_sf_file *f, const char *name, int row, char *out, size_t outsz);
/* A variable-length string attribute, malloc'd; NULL when absent. */
char *gsas_sf_attribute(const gsas_sf_file *f, const char *object, const char *attr);
/* materials/<material>/atoms: label and GSAS-II's site multiplicity; the count or -1. */
int gsas_sf_atom_mults(const gsas_sf_file *f, const char *material, gsas_sf_atom *atoms,
                       int max);
/* The number after "key": inside [from, to) of a JSON text, or NAN. */
double gsas_json_number(const char *from, const char *to, const char *key);
/* The n numbers of the array after "key": inside [from, to); 0, or -1 when missing. */
int gsas_json_array(const char *from, const char *to, const char *key, double *v, int n);
/* X-rays at wavelength_A with f0 coefficients and f', f'' from a material's
 * scattering_json ({"Ba+2": {"fprime": .., "fdoubleprime": .., "fa": [..], "fb": [..],
 * "fc": ..}, ...}) as overrides; 0 on success. */
int gsas_sf_xray_radiation(const char *json, double wavelength_A, bf_radiation *rad);

#endif
