/* cli/cmd_fit_peaks.c — `braggflow fit-peaks`: the conventional pseudo-Voigt fit of
 * every patch of a patch file (fit.h), written to fits.h5, with a summary (speed,
 * convergence and, when the file knows the true centres, the centre error). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "braggflow/fit.h"
#include "cli/cli.h"

enum { OPT_FP_DATA = 3000, OPT_FP_OUT, OPT_FP_THREADS, OPT_FP_MAX_ITER, OPT_FP_READ_SIGMA,
       OPT_FP_NO_MASK, OPT_FP_HELP };

static const char *usage =
    "usage: braggflow fit-peaks --data patches.h5 --out fits.h5 [--threads N]\n"
    "                           [--max-iter N] [--read-sigma S] [--no-mask]\n\n"
    "Fits one 2-D pseudo-Voigt (centre, Gaussian and Lorentzian widths along two\n"
    "rotated axes, rotation, mixing eta, height) on a sloped background to every\n"
    "patch, by weighted least squares (GSL trust-region Levenberg-Marquardt, analytic\n"
    "Jacobian; weights 1 / (model + read_sigma^2), recomputed once from the first\n"
    "fit). A second peak reaching into the patch is masked when it shows as a second\n"
    "maximum or in the residuals. A fit that does not converge is kept and flagged.\n"
    "Writes fits.h5 (centre, peak, background, chi2, iterations, converged, ...; see\n"
    "docs/peaks.md) and prints on stderr the number of patches, how many converged,\n"
    "the speed, and, when the patch file holds the true centres (sample-peaks), the\n"
    "centre error in px (mean and 50/75/95/99.5th percentiles).\n\n"
    "options:\n"
    "  --data FILE.h5      patch file (sample-peaks output, or imported BraggNN patches)\n"
    "  --out FILE.h5       fits (written to a temporary file, then renamed)\n"
    "  --threads N         fitting threads (0 or absent: all cores)\n"
    "  --max-iter N        iterations per weighting pass (default 100)\n"
    "  --read-sigma S      Gaussian read noise in counts for the weights (default 2)\n"
    "  --no-mask           never mask a neighbouring peak\n\n"
    "example:\n"
    "  braggflow sample-peaks --count 2000 --out patches.h5\n"
    "  braggflow fit-peaks --data patches.h5 --out fits.h5 --threads 1\n";

int cmd_fit_peaks(int argc, char **argv)
{
    static const struct option longopts[] = {{"data", required_argument, 0, OPT_FP_DATA},
                                             {"out", required_argument, 0, OPT_FP_OUT},
                                             {"threads", required_argument, 0, OPT_FP_THREADS},
                                             {"max-iter", required_argument, 0, OPT_FP_MAX_ITER},
                                             {"read-sigma", required_argument, 0,
                                              OPT_FP_READ_SIGMA},
                                             {"no-mask", no_argument, 0, OPT_FP_NO_MASK},
                                             {"help", no_argument, 0, OPT_FP_HELP},
                                             {0, 0, 0, 0}};
    const char *data = NULL, *out = NULL;
    long threads = 0, max_iter = 0;
    double read_sigma = 0;
    int no_mask = 0, opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_FP_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_FP_DATA: data = optarg; break;
        case OPT_FP_OUT: out = optarg; break;
        case OPT_FP_THREADS:
            if (bf_cli_parse_count("fit-peaks", "--threads", optarg, 0, 4096, &threads))
                return BF_EXIT_FAIL;
            break;
        case OPT_FP_MAX_ITER:
            if (bf_cli_parse_count("fit-peaks", "--max-iter", optarg, 1, 100000, &max_iter))
                return BF_EXIT_FAIL;
            break;
        case OPT_FP_READ_SIGMA:
            if (bf_cli_parse_positive("fit-peaks", "--read-sigma", optarg, 1e6, &read_sigma))
                return BF_EXIT_FAIL;
            break;
        case OPT_FP_NO_MASK: no_mask = 1; break;
        default: return bf_cli_bad_option("fit-peaks", opt == ':' ? ':' : '?', argv);
        }
    }
    if (optind < argc)
        return bf_cli_usage_error("fit-peaks", "unexpected argument '%s'", argv[optind]);
    if (!data)
        return bf_cli_usage_error("fit-peaks", "--data is required");
    if (!out)
        return bf_cli_usage_error("fit-peaks", "--out is required");
    if (!bf_path_has_suffix(out, ".h5") && !bf_path_has_suffix(out, ".hdf5"))
        return bf_cli_usage_error("fit-peaks", "--out must end in .h5");

    bf_fit_options o;
    bf_fit_options_defaults(&o);
    if (max_iter > 0)
        o.max_iter = (int)max_iter;
    if (read_sigma > 0)
        o.read_sigma = read_sigma;
    if (no_mask)
        o.mask_neighbour = 0;

    bf_error err = {0};
    bf_patches p = {0};
    bf_peak_fit *fits = NULL;
    double *e = NULL;
    char hex[65], source[4096 + 100];
    bf_status st = bf_patches_read_h5(data, &p, &err);
    if (st == BF_OK)
        st = bf_sha256_file_hex(data, hex, &err);
    if (st == BF_OK) {
        /* fail before fitting, not after it, when --out is unwritable */
        bf_atomic_file probe = {0};
        st = bf_atomic_begin(&probe, out, 1, &err);
        bf_atomic_abort(&probe);
    }
    if (st == BF_OK && !(fits = malloc((size_t)p.n * sizeof *fits)))
        st = bf_error_set(&err, BF_ERR_NOMEM, "out of memory for %ld fits", p.n);
    double dt = 0;
    if (st == BF_OK) {
        const double t0 = bf_now_seconds();
        st = bf_fit_patches(&p, &o, (int)threads, fits, &err);
        dt = bf_now_seconds() - t0;
        if (st != BF_OK)
            bf_error_prefix(&err, "%s", data);
    }
    if (st == BF_OK) {
        snprintf(source, sizeof source, "patches=%s sha256=%s", data, hex);
        st = bf_fits_write_h5(fits, p.n, p.size, source, out, &err);
    }
    if (st != BF_OK) {
        bf_patches_free(&p);
        free(fits);
        return bf_cli_fail(&err);
    }
    long conv = 0, masked = 0;
    for (long i = 0; i < p.n; i++) {
        conv += fits[i].converged != 0;
        masked += fits[i].masked > 0;
    }
    const int nthreads = threads > 0 ? (int)threads : bf_default_threads();
    fprintf(stderr,
            "braggflow fit-peaks: %ld patches of %d x %d -> %s: %ld converged (%.1f %%), %ld with "
            "a neighbour masked; %.0f patches/s on %d threads (%.3f ms of core time per fit)\n",
            p.n, p.size, p.size, out, conv, 100.0 * conv / p.n, masked, p.n / dt, nthreads,
            1e3 * dt * nthreads / p.n);
    if (p.centre && (e = malloc(2 * (size_t)p.n * sizeof *e))) {
        bf_peak_errors pe;
        for (long i = 0; i < p.n; i++)
            e[2 * i] = fits[i].peak.row, e[2 * i + 1] = fits[i].peak.col;
        if (bf_peak_errors_of(e, p.centre, p.n, &pe, &err) == BF_OK)
            fprintf(stderr,
                    "braggflow fit-peaks: centre error (px, all %ld fits): mean %.4f, p50 %.4f, "
                    "p75 %.4f, p95 %.4f, p99.5 %.4f\n",
                    p.n, pe.mean, pe.p50, pe.p75, pe.p95, pe.p995);
    }
    free(e);
    free(fits);
    bf_patches_free(&p);
    return BF_EXIT_OK;
}
