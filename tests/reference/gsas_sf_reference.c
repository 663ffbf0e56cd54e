/* tests/reference/gsas_sf_reference.c — see gsas_sf_reference.h. */
#include "gsas_sf_reference.h"

#include <ctype.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gsas_sf_open(const char *path, gsas_sf_file *f)
{
    memset(f, 0, sizeof *f);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (h < 0)
        return -1;
    f->file = h;
    return 0;
}

void gsas_sf_close(gsas_sf_file *f)
{
    if (f->file > 0)
        H5Fclose((hid_t)f->file);
    f->file = 0;
}

double *gsas_sf_doubles(const gsas_sf_file *f, const char *name, int *rows, int *cols)
{
    hid_t ds = H5Dopen2((hid_t)f->file, name, H5P_DEFAULT);
    if (ds < 0)
        return NULL;
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[2] = {1, 1};
    int rank = H5Sget_simple_extent_ndims(sp);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    if (rank == 1)
        dims[1] = 1;
    double *buf = malloc(dims[0] * dims[1] * sizeof *buf);
    if (buf && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        free(buf);
        buf = NULL;
    }
    *rows = (int)dims[0];
    *cols = (int)dims[1];
    H5Sclose(sp);
    H5Dclose(ds);
    return buf;
}

int gsas_sf_string(const gsas_sf_file *f, const char *name, int row, char *out, size_t outsz)
{
    out[0] = 0;
    hid_t ds = H5Dopen2((hid_t)f->file, name, H5P_DEFAULT);
    if (ds < 0)
        return -1;
    hid_t type = H5Dget_type(ds), sp = H5Dget_space(ds);
    size_t size = H5Tget_size(type);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    int rc = -1;
    char *buf = NULL;
    if (!H5Tis_variable_str(type) && row >= 0 && (hsize_t)row < n &&
        (buf = calloc((size_t)n, size + 1)) != NULL) {
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, size);
        if (H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
            size_t len = 0;
            const char *s = buf + (size_t)row * size;
            while (len < size && s[len])
                len++;
            snprintf(out, outsz, "%.*s", (int)len, s);
            rc = 0;
        }
        H5Tclose(mem);
    }
    free(buf);
    H5Sclose(sp);
    H5Tclose(type);
    H5Dclose(ds);
    return rc;
}

char *gsas_sf_attribute(const gsas_sf_file *f, const char *object, const char *attr)
{
    hid_t a = H5Aopen_by_name((hid_t)f->file, object, attr, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        return NULL;
    hid_t type = H5Aget_type(a);
    char *copy = NULL;
    if (H5Tis_variable_str(type) > 0) {
        hid_t mem = H5Tcopy(type); /* same character set: HDF5 converts none */
        char *s = NULL;
        if (H5Aread(a, mem, &s) >= 0 && s != NULL) {
            copy = strdup(s);
            H5free_memory(s);
        }
        H5Tclose(mem);
    }
    H5Tclose(type);
    H5Aclose(a);
    return copy;
}

int gsas_sf_atom_mults(const gsas_sf_file *f, const char *material, gsas_sf_atom *atoms, int max)
{
    char name[256];
    snprintf(name, sizeof name, "materials/%s/atoms", material);
    hid_t ds = H5Dopen2((hid_t)f->file, name, H5P_DEFAULT);
    if (ds < 0)
        return -1;
    hid_t sp = H5Dget_space(ds);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    int rc = -1;
    if ((int)n <= max) {
        typedef struct {
            char label[8];
            int mult;
        } row;
        row *buf = calloc((size_t)n ? (size_t)n : 1, sizeof *buf);
        hid_t str = H5Tcopy(H5T_C_S1);
        H5Tset_size(str, 8);
        H5Tset_strpad(str, H5T_STR_NULLPAD);
        hid_t mem = H5Tcreate(H5T_COMPOUND, sizeof(row));
        H5Tinsert(mem, "label", HOFFSET(row, label), str);
        H5Tinsert(mem, "mult", HOFFSET(row, mult), H5T_NATIVE_INT);
        if (buf && H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
            for (hsize_t i = 0; i < n; i++) {
                snprintf(atoms[i].label, sizeof atoms[i].label, "%.8s", buf[i].label);
                atoms[i].mult = buf[i].mult;
            }
            rc = (int)n;
        }
        H5Tclose(mem);
        H5Tclose(str);
        free(buf);
    }
    H5Sclose(sp);
    H5Dclose(ds);
    return rc;
}

double gsas_json_number(const char *from, const char *to, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(from, pat);
    if (p == NULL || p >= to)
        return NAN;
    return strtod(p + strlen(pat), NULL);
}

int gsas_json_array(const char *from, const char *to, const char *key, double *v, int n)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": [", key);
    const char *p = strstr(from, pat);
    if (p == NULL || p >= to)
        return -1;
    p += strlen(pat);
    for (int i = 0; i < n; i++) {
        char *end;
        v[i] = strtod(p, &end);
        if (end == p)
            return -1;
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return 0;
}

int gsas_sf_xray_radiation(const char *json, double wavelength_A, bf_radiation *rad)
{
    *rad = bf_radiation_xray(wavelength_A);
    const char *p = json;
    for (;;) {
        const char *obj = strstr(p, "{\"fprime\"");
        if (obj == NULL)
            break;
        const char *end = strchr(obj, '}');
        if (end == NULL)
            return -1;
        /* the key: the quoted string before ": {" */
        const char *q = obj;
        while (q > json && q[-1] != '"')
            q--; /* q -> after the closing quote... walk to the opening one */
        const char *close = q - 1, *open = close - 1;
        while (open > json && *open != '"')
            open--;
        char key[16];
        snprintf(key, sizeof key, "%.*s", (int)(close - open - 1), open + 1);
        if (rad->n_f0 >= BF_MAX_F0_OVERRIDES)
            return -1;
        bf_xray_f0_coeffs *c = &rad->f0[rad->n_f0++];
        snprintf(c->symbol, sizeof c->symbol, "%s", key);
        c->c = gsas_json_number(obj, end, "fc");
        if (gsas_json_array(obj, end, "fa", c->a, 4) || gsas_json_array(obj, end, "fb", c->b, 4) ||
            isnan(c->c))
            return -1;
        char el[4] = {0};
        for (int i = 0; i < 3 && isalpha((unsigned char)key[i]); i++)
            el[i] = key[i];
        int seen = 0;
        for (int i = 0; i < rad->n_fprime && !seen; i++)
            seen = strcmp(rad->fprime[i].element, el) == 0;
        if (!seen) {
            if (rad->n_fprime >= BF_MAX_FPRIME_OVERRIDES)
                return -1;
            bf_fprime_override *o = &rad->fprime[rad->n_fprime++];
            snprintf(o->element, sizeof o->element, "%s", el);
            o->f_prime = gsas_json_number(obj, end, "fprime");
            o->f_double_prime = gsas_json_number(obj, end, "fdoubleprime");
            if (isnan(o->f_prime) || isnan(o->f_double_prime))
                return -1;
        }
        p = end + 1;
    }
    return rad->n_f0 > 0 ? 0 : -1;
}
