/* cli/cmd_fit_peaks.c — `braggflow fit-peaks`: the conventional pseudo-Voigt fit of
 * every patch of a patch file (fit.h), written to fits.h5, with a summary (speed,
 * convergence and, when the file knows the true centres, the centre error); with
 * --labelled, the patches with their fitted centres as training labels (seed 002's
 * labelling step, DESIGN §9), optionally split 80/20 as BraggNN splits. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/fit.h"
#include "cli/cli.h"

enum { OPT_FP_DATA = 3000, OPT_FP_OUT, OPT_FP_THREADS, OPT_FP_MAX_ITER, OPT_FP_READ_SIGMA,
       OPT_FP_NO_MASK, OPT_FP_LABELLED, OPT_FP_LABELLED_VAL, OPT_FP_HELP };

static const char *usage =
    "usage: braggflow fit-peaks --data patches.h5 --out fits.h5 [--threads N]\n"
    "                           [--max-iter N] [--read-sigma S] [--no-mask]\n"
    "                           [--labelled L.h5 [--labelled-val V.h5]]\n\n"
    "Fits one 2-D pseudo-Voigt (centre, Gaussian and Lorentzian widths along two\n"
    "rotated axes, rotation, mixing eta, height) on a sloped background to every\n"
    "patch, by weighted least squares (GSL trust-region Levenberg-Marquardt, analytic\n"
    "Jacobian; weights 1 / (model + read_sigma^2), recomputed once from the first\n"
    "fit). A second peak reaching into the patch is masked when it shows as a second\n"
    "maximum or in the residuals. A fit that does not converge is kept and flagged.\n"
    "Writes fits.h5 (centre, peak, background, chi2, iterations, converged, ...; see\n"
    "docs/peaks.md) and prints on stderr the number of patches, how many converged,\n"
    "the speed, and, when the patch file holds the true centres (sample-peaks), the\n"
    "centre error in px (mean and 50/75/95/99.5th percentiles).\n"
    "--labelled writes training labels for `train --model braggnn`: the patches whose\n"
    "fit converged with its centre inside the patch, in file order, with `centre` set\n"
    "to the fitted centre (kind \"fitted\"; the simulator's truth is left out).\n"
    "With --labelled-val the first 80 %% of them go to L.h5, the rest to V.h5\n"
    "(BraggNN's split).\n\n"
    "options:\n"
    "  --data FILE.h5      patch file (sample-peaks output, or imported BraggNN patches)\n"
    "  --out FILE.h5       fits (written to a temporary file, then renamed)\n"
    "  --threads N         fitting threads (0 or absent: all cores)\n"
    "  --max-iter N        iterations per weighting pass (default 100)\n"
    "  --read-sigma S      Gaussian read noise in counts for the weights (default 2)\n"
    "  --no-mask           never mask a neighbouring peak\n"
    "  --labelled FILE.h5  patches labelled with their fitted centres (a patch file)\n"
    "  --labelled-val FILE.h5  the last 20 %% of those labels, for --val\n\n"
    "example:\n"
    "  braggflow sample-peaks --count 2000 --out patches.h5\n"
    "  braggflow fit-peaks --data patches.h5 --out fits.h5 --threads 1\n"
    "  braggflow fit-peaks --data new.h5 --out fits.h5 --labelled l.h5 --labelled-val v.h5\n"
    "  braggflow train --model braggnn --train l.h5 --val v.h5 --init m.safetensors \\\n"
    "      --epochs 5 --out m2.safetensors\n";

int cmd_fit_peaks(int argc, char **argv)
{
    static const struct option longopts[] = {{"data", required_argument, 0, OPT_FP_DATA},
                                             {"out", required_argument, 0, OPT_FP_OUT},
                                             {"threads", required_argument, 0, OPT_FP_THREADS},
                                             {"max-iter", required_argument, 0, OPT_FP_MAX_ITER},
                                             {"read-sigma", required_argument, 0,
                                              OPT_FP_READ_SIGMA},
                                             {"no-mask", no_argument, 0, OPT_FP_NO_MASK},
                                             {"labelled", required_argument, 0,
                                              OPT_FP_LABELLED},
                                             {"labelled-val", required_argument, 0,
                                              OPT_FP_LABELLED_VAL},
                                             {"help", no_argument, 0, OPT_FP_HELP},
                                             {0, 0, 0, 0}};
    const char *data = NULL, *out = NULL, *lab_path = NULL, *val_path = NULL;
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
        case OPT_FP_LABELLED: lab_path = optarg; break;
        case OPT_FP_LABELLED_VAL: val_path = optarg; break;
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
    if (val_path && !lab_path)
        return bf_cli_usage_error("fit-peaks", "--labelled-val needs --labelled");
    const char *outs[] = {out, lab_path, val_path};
    for (int i = 1; i < 3; i++) {
        if (!outs[i])
            continue;
        if (!bf_path_has_suffix(outs[i], ".h5") && !bf_path_has_suffix(outs[i], ".hdf5"))
            return bf_cli_usage_error("fit-peaks", "%s must end in .h5",
                                      i == 1 ? "--labelled" : "--labelled-val");
        for (int j = 0; j < i; j++)
            if (outs[j] && !strcmp(outs[i], outs[j]))
                return bf_cli_usage_error("fit-peaks", "'%s' is given as two outputs", outs[i]);
    }

    bf_fit_options o;
    bf_fit_options_defaults(&o);
    if (max_iter > 0)
        o.max_iter = (int)max_iter;
    if (read_sigma > 0)
        o.read_sigma = read_sigma;
    if (no_mask)
        o.mask_neighbour = 0;

    bf_error err = {0};
    bf_patches p = {0}, lab = {0}, part[2] = {{0}};
    long *rows = NULL, *from = NULL, not_conv = 0, outside = 0, n_part[2] = {0, 0};
    bf_peak_errors label_err = {0};
    bf_peak_fit *fits = NULL;
    double *e = NULL;
    char hex[65], source[4096 + 100];
    bf_status st = bf_patches_read_h5(data, &p, &err);
    if (st == BF_OK)
        st = bf_sha256_file_hex(data, hex, &err);
    /* fail before fitting, not after it, when an output is unwritable */
    for (int i = 0; i < 3 && st == BF_OK; i++) {
        bf_atomic_file probe = {0};
        if (outs[i] && (st = bf_atomic_begin(&probe, outs[i], 1, &err)) == BF_OK)
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
    if (st == BF_OK)
        snprintf(source, sizeof source, "patches=%s sha256=%s", data, hex);
    if (st == BF_OK && lab_path) {
        /* every label in memory, and split, before any file is written */
        char lsource[sizeof source + 4096 + 200];
        snprintf(lsource, sizeof lsource,
                 "fitted centres (braggflow fit-peaks, not a truth) of %s; fits=%s", source,
                 out);
        if (!(from = malloc((size_t)p.n * sizeof *from)))
            st = bf_error_set(&err, BF_ERR_NOMEM, "out of memory for %ld labels", p.n);
        if (st == BF_OK)
            st = bf_patches_label_with_fits(&p, fits, lsource, &lab, from, &not_conv, &outside,
                                            &err);
        /* the labels' own error, where the patch file knows the truth */
        double *truth = NULL;
        if (st == BF_OK && p.centre && (truth = malloc((size_t)lab.n * 2 * sizeof *truth))) {
            for (long k = 0; k < lab.n; k++)
                truth[2 * k] = p.centre[2 * from[k]], truth[2 * k + 1] = p.centre[2 * from[k] + 1];
            if (bf_peak_errors_of(lab.centre, truth, lab.n, &label_err, &err) != BF_OK)
                label_err.n = 0;
        }
        free(truth);
        if (st == BF_OK) {
            n_part[0] = val_path ? lab.n * 4 / 5 : lab.n;
            n_part[1] = lab.n - n_part[0];
            if (val_path && (n_part[0] < 1 || n_part[1] < 1))
                st = bf_error_set(&err, BF_ERR_INVALID,
                                  "%s: %ld usable fits cannot be split 80/20 into --labelled "
                                  "and --labelled-val",
                                  data, lab.n);
        }
        if (st == BF_OK && !(rows = malloc((size_t)lab.n * sizeof *rows)))
            st = bf_error_set(&err, BF_ERR_NOMEM, "out of memory for %ld labels", lab.n);
        for (long i = 0; st == BF_OK && i < lab.n; i++)
            rows[i] = i;
        for (int k = 0; k < (val_path ? 2 : 1) && st == BF_OK; k++) {
            st = bf_patches_select(&lab, rows + (k ? n_part[0] : 0), n_part[k], &part[k], &err);
            if (st == BF_OK)
                snprintf(part[k].source, sizeof part[k].source,
                         "%s; %ld of %ld fits kept (converged, centre inside the patch); %s "
                         "rows %ld..%ld of the kept",
                         lab.source, lab.n, p.n, k ? "validation" : "training",
                         k ? n_part[0] : 0, (k ? lab.n : n_part[0]) - 1);
        }
    }
    if (st == BF_OK)
        st = bf_fits_write_h5(fits, p.n, p.size, source, out, &err);
    for (int k = 0; k < 2 && st == BF_OK; k++)
        if (outs[1 + k])
            st = bf_patches_write_h5(&part[k], outs[1 + k], &err);
    free(rows);
    free(from);
    bf_patches_free(&lab);
    bf_patches_free(&part[0]);
    bf_patches_free(&part[1]);
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
    if (lab_path) {
        fprintf(stderr,
                "braggflow fit-peaks: labels: %ld of %ld patches with their fitted centres "
                "(%ld not converged, %ld with the centre outside the patch left out) -> %s "
                "(%ld)",
                n_part[0] + n_part[1], p.n, not_conv, outside, lab_path, n_part[0]);
        if (val_path)
            fprintf(stderr, ", %s (%ld)", val_path, n_part[1]);
        fputc('\n', stderr);
        if (label_err.n)
            fprintf(stderr,
                    "braggflow fit-peaks: label error (px, the %ld labels against the true "
                    "centres): mean %.4f, p50 %.4f, p75 %.4f, p95 %.4f, p99.5 %.4f\n",
                    label_err.n, label_err.mean, label_err.p50, label_err.p75, label_err.p95,
                    label_err.p995);
    }
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
