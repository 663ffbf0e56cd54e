/* braggflow/fit.h — conventional Bragg-peak fitting (DESIGN §7): a 2-D pseudo-Voigt
 * (sim.h's bf_peak2d + bf_background2d) least-squares fit per patch with GSL's
 * nonlinear least squares (trust region, Levenberg-Marquardt) and an analytic
 * Jacobian, threaded over patches. It labels real patches and is the baseline
 * BraggNN is measured against. Coordinates as sim.h (pixel k spans [k, k+1)). */
#ifndef BRAGGFLOW_FIT_H
#define BRAGGFLOW_FIT_H

#include "braggflow/core.h"
#include "braggflow/data.h"
#include "braggflow/sim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    bf_peak2d peak;                   /* fitted centre, widths, rotation, eta, height;
                                       * canonical (bf_peak2d_canonical) */
    bf_background2d background;
    double chi2;                      /* sum of weighted squared residuals */
    double chi2_per_dof;
    int iterations;
    int converged;                    /* 1: GSL's tests met within max_iter; 0: flagged */
    int status;                       /* GSL status of the last call (0 = success) */
    int masked;                       /* pixels masked as a neighbouring peak's (0: none) */
} bf_peak_fit;

typedef struct {
    int max_iter;                     /* per pass (100) */
    double xtol, gtol, ftol;          /* tests (1e-4, 1e-6, 1e-6): peak_fit.c run_pass */
    int sloped_background;            /* 1: fit level + two slopes; 0: level only */
    double read_sigma;                /* weights 1 / (max(model, 0) + read_sigma^2) (2) */
    int passes;                       /* weights from the model: pass 1 at the initial
                                       * guess, each later pass at the previous fit (2) */
    int mask_neighbour;               /* 1: after pass 1, mask the pixels nearer a second
                                       * peak seen in the residuals and refit (1) */
} bf_fit_options;

void bf_fit_options_defaults(bf_fit_options *o);
/* The one form of a peak that several parameter sets describe: sigma_u >= sigma_v
 * (else both width pairs swap and theta gains pi/2) and theta in [0, pi). */
void bf_peak2d_canonical(bf_peak2d *p);

/* Fits one S x S patch. A patch the fit cannot handle (no signal, non-finite
 * values) is an error; a fit that does not converge is not (converged = 0). */
bf_status bf_fit_patch(const float *patch, int S, const bf_fit_options *o, bf_peak_fit *out,
                       bf_error *err);
/* Fits every patch of p on `threads` threads (0 = all cores); out[p->n]. */
bf_status bf_fit_patches(const bf_patches *p, const bf_fit_options *o, int threads,
                         bf_peak_fit *out, bf_error *err);

/* fits.h5: centre (N, 2) float64 (row, col), peak (N, 9), background (N, 3),
 * chi2 (N), chi2_per_dof (N) float64, iterations (N) int32, converged (N) uint8,
 * status (N) int32, masked (N) int32; attributes version, kind ("fits"), patch_size,
 * source (the patches file and its SHA-256). Written atomically. */
bf_status bf_fits_write_h5(const bf_peak_fit *fits, long n, int S, const char *source,
                           const char *path, bf_error *err);
/* Reads fits.h5 back: *out (caller frees) holds n fits. */
bf_status bf_fits_read_h5(const char *path, bf_peak_fit **out, long *n, int *S, bf_error *err);

/* Training labels from the fit (seed 002's loop, DESIGN §9: the conventional analysis
 * labels the share of the data the surrogate is retrained on). out holds, in file
 * order, the patches of p whose fit can serve as a label: converged, with its centre
 * inside the patch ([0, S) along both axes); out->centre is that fitted centre. The
 * simulator's truth (peak, background, read_sigma, neighbour, neighbour_peak) is left
 * out, so nothing downstream trains or scores on it unawares; an imported file's
 * frame_index, origin, npeaks and deviation stay. kind "fitted", source = `source`.
 * *not_converged and *outside (either may be NULL) count the patches left out;
 * rows (NULL, or room for p->n) receives the row of p each label came from. A file
 * with no usable fit is an error. */
bf_status bf_patches_label_with_fits(const bf_patches *p, const bf_peak_fit *fits,
                                     const char *source, bf_patches *out, long *rows,
                                     long *not_converged, long *outside, bf_error *err);

#ifdef __cplusplus
}
#endif
#endif
