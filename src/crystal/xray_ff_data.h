/* crystal/xray_ff_data.h — the X-ray form-factor table behind bf_xray_f0_lookup
 * (crystal/xray_ff_data.c; not part of the public API: the tests read it whole). */
#ifndef BRAGGFLOW_XRAY_FF_DATA_H
#define BRAGGFLOW_XRAY_FF_DATA_H

#include <stddef.h>

typedef struct {
    const char *symbol;   /* "Ba", "Ba+2", "O-2" (GSAS-II's spelling) */
    int z, charge;        /* atomic number; charge in units of e (O-2: -2) */
    double a[4], b[4], c; /* f0(s) = sum a_i exp(-b_i s^2) + c, s in 1/Angstrom */
} bf_xray_ff_entry;

/* Ordered by Z, each element's neutral atom first; all elements H (1) .. Cf (98). */
extern const bf_xray_ff_entry bf_xray_ff_table[];
extern const size_t bf_xray_ff_table_n;

#endif
