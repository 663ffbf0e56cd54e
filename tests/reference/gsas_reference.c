/* tests/reference/gsas_reference.c — see gsas_reference.h. */
#include "gsas_reference.h"
#include "gsas_sf_reference.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const gsas_case gsas_cases[N_GSAS_CASES] = {
    {"gsas2/gsas2_tof_cubic_1001460.h5", "seed-workflow/1001460.cif", 0, 2},
    {"gsas2/gsas2_tof_trigonal_1522004.h5", "seed-workflow/1522004.cif", 0, 2},
    {"gsas2/gsas2_tof_tetragonal_1531431.h5", "seed-workflow/1531431.cif", 0, 2},
    {"gsas2_cw/gsas2_tof_neutron_nomad_newcifs.h5", "gsas2_cw/cifs/9001833.cif", 0, 1},
    {"gsas2_cw/gsas2_tof_neutron_nomad_newcifs.h5", "gsas2_cw/cifs/2013358.cif", 1, 1},
};

static double *read_all(hid_t file, const char *name, hsize_t dims[2], int *rank)
{
    gsas_sf_file f = {.file = file};
    int rows = 0, cols = 0;
    double *v = gsas_sf_doubles(&f, name, &rows, &cols);
    dims[0] = (hsize_t)rows;
    dims[1] = (hsize_t)cols;
    *rank = cols > 1 ? 2 : 1;
    return v;
}

int gsas_reference_read(const char *path, gsas_reference *ref)
{
    memset(ref, 0, sizeof *ref);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return -1;
    hsize_t dims[2];
    int rank, rc = -1;
    double *cell = NULL;
    /* gsas2/ names them tof and intensity, gsas2_cw/ x and ycalc */
    int named_x = H5Lexists(f, "x", H5P_DEFAULT) > 0;
    ref->x = read_all(f, named_x ? "x" : "tof", dims, &rank);
    if (ref->x == NULL)
        goto done;
    ref->length = (int)dims[0];
    ref->intensity = read_all(f, named_x ? "ycalc" : "intensity", dims, &rank);
    if (ref->intensity == NULL || (int)dims[1] != ref->length || dims[0] > GSAS_MAX_ROWS)
        goto done;
    ref->n_rows = (int)dims[0];
    cell = read_all(f, "cell", dims, &rank);
    if (cell == NULL)
        goto done;
    memcpy(ref->cell, cell, (size_t)ref->n_rows * 6 * sizeof *cell);
    /* the TOF file of gsas2_cw/ also names them x and ycalc: tell by the x unit */
    const int cw = named_x && ref->x[0] < 180.0;
    for (int r = 0; r < ref->n_rows; r++) {
        char name[64];
        snprintf(name, sizeof name, "reflections/%03d", r);
        ref->refl[r] = read_all(f, name, dims, &rank);
        if (ref->refl[r] == NULL ||
            dims[1] != (hsize_t)(cw ? GSAS_CW_REFL_COLUMNS : GSAS_REFL_COLUMNS))
            goto done;
        ref->n_cols = (int)dims[1];
        ref->n_refl[r] = (int)dims[0];
    }
    rc = 0;
done:
    free(cell);
    H5Fclose(f);
    if (rc != 0)
        gsas_reference_free(ref);
    return rc;
}

void gsas_reference_free(gsas_reference *ref)
{
    free(ref->x);
    free(ref->intensity);
    for (int r = 0; r < GSAS_MAX_ROWS; r++)
        free(ref->refl[r]);
    memset(ref, 0, sizeof *ref);
}

double gsas_rwp(const double *ref, const double *ours, int lo, int hi)
{
    double ro = 0.0, oo = 0.0, rr = 0.0;
    for (int i = lo; i < hi; i++) {
        ro += ref[i] * ours[i];
        oo += ours[i] * ours[i];
        rr += ref[i] * ref[i];
    }
    const double k = oo > 0.0 ? ro / oo : 0.0;
    double num = 0.0;
    for (int i = lo; i < hi; i++) {
        const double e = ref[i] - k * ours[i];
        num += e * e;
    }
    return sqrt(num / rr);
}
