/* cli/cmd_peaks.c — `braggflow peaks`: Bragg-peak centres of detector patches with a
 * trained BraggNN (or a bare BraggNN state_dict), and their errors in pixels against
 * the true centres or a conventional fit's. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/fit.h"
#include "braggflow/task.h"
#include "cli/cli.h"

enum { OPT_FITS = 4100 };

static const char *usage =
    "usage: braggflow peaks --model M.safetensors --data patches.h5 [--out centres.csv]\n"
    "                       [--fits fits.h5] [--batch 512] [--threads N] [--device D]\n\n"
    "Runs a peaks model (a checkpoint of `braggflow train --model braggnn`, or a bare\n"
    "BraggNN state_dict saved with safetensors.torch.save_file) over raw patches (each\n"
    "min-max scaled as in training) and writes index,row_px,col_px: the centre in\n"
    "patch pixel coordinates, pixel k spanning [k, k+1) (docs/peaks.md). Without --out\n"
    "the CSV goes to stdout.\n"
    "When the file holds true centres (simulated or imported patches) the error in\n"
    "pixels is printed on stderr: mean and 50/75/95/99.5th percentiles, next to the\n"
    "conventional fit's when --fits gives one (`braggflow fit-peaks`), and for\n"
    "simulated patches also split by peak height and for patches with a neighbour.\n"
    "Without true centres, --fits serves as the reference.\n\n"
    "options:\n"
    "  --model FILE        peaks checkpoint (*.safetensors)\n"
    "  --data FILE.h5      patches (sample-peaks / import-peaks layout)\n"
    "  --out FILE.csv      centres (written to a temporary file, then renamed)\n"
    "  --fits FILE.h5      conventional fits of the same patches (fit-peaks)\n"
    "  --batch N           inference batch (default 512)\n"
    "  --threads N         threads (0 or absent: all cores)\n"
    BF_CLI_DEVICE_HELP "\n"
    "example:\n"
    "  braggflow sample-peaks --seed 9 --count 2000 --out test.h5\n"
    "  braggflow fit-peaks --data test.h5 --out fits.h5\n"
    "  braggflow peaks --model peaks.safetensors --data test.h5 --fits fits.h5 --out c.csv\n";

static bf_status write_csv(const char *path, const double *c, long n, bf_error *err)
{
    bf_atomic_file af = {0};
    bf_status st = BF_OK;
    FILE *f = stdout;
    if (path) {
        st = bf_atomic_begin(&af, path, 1, err);
        f = af.fp;
    }
    if (st != BF_OK)
        return st;
    fprintf(f, "index,row_px,col_px\n");
    for (long i = 0; i < n; i++)
        fprintf(f, "%ld,%.6f,%.6f\n", i, c[2 * i], c[2 * i + 1]);
    if (!path)
        return fflush(stdout) == 0 ? BF_OK : bf_error_set(err, BF_ERR_IO, "stdout: write failed");
    if (ferror(f)) {
        bf_atomic_abort(&af);
        return bf_error_set(err, BF_ERR_IO, "%s: write failed", path);
    }
    return bf_atomic_commit(&af, err);
}

/* One row of the error table for the patches i with keep[i] (NULL: all). */
static bf_status print_row(const char *label, const double *pred, const double *ref,
                           const unsigned char *keep, long n, bf_error *err)
{
    double *p = malloc(sizeof(double) * 2 * (size_t)(n ? n : 1));
    double *r = malloc(sizeof(double) * 2 * (size_t)(n ? n : 1));
    if (!p || !r) {
        free(p);
        free(r);
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    }
    long k = 0;
    for (long i = 0; i < n; i++)
        if (!keep || keep[i]) {
            p[2 * k] = pred[2 * i], p[2 * k + 1] = pred[2 * i + 1];
            r[2 * k] = ref[2 * i], r[2 * k + 1] = ref[2 * i + 1];
            k++;
        }
    bf_peak_errors e;
    bf_status st = bf_peak_errors_of(p, r, k, &e, err);
    if (st == BF_OK && k > 0)
        fprintf(stderr, "  %-26s %7ld %8.4f %8.4f %8.4f %8.4f %8.4f\n", label, k, e.mean, e.p50,
                e.p75, e.p95, e.p995);
    free(p);
    free(r);
    return st;
}

/* Both methods on one subset of patches. */
static bf_status print_subset(const char *what, const double *nn, const double *fit,
                              const double *ref, const unsigned char *keep, long n,
                              bf_error *err)
{
    char label[64];
    snprintf(label, sizeof label, "%s braggnn", what);
    bf_status st = print_row(label, nn, ref, keep, n, err);
    if (st == BF_OK && fit) {
        snprintf(label, sizeof label, "%s fit", what);
        st = print_row(label, fit, ref, keep, n, err);
    }
    return st;
}

static bf_status print_errors(const bf_patches *p, const double *nn, const double *fit,
                              const char *data, bf_error *err)
{
    const double *ref = p->centre ? p->centre : fit;
    /* a fitted file's centres are labels from the fit (fit-peaks --labelled), not a truth */
    const char *ref_name = !p->centre                   ? "the conventional fit"
                           : !strcmp(p->kind, "fitted") ? "the file's fitted centres"
                                                        : "the true centres";
    fprintf(stderr, "error (px) against %s, %ld patches:\n  %-26s %7s %8s %8s %8s %8s %8s\n",
            ref_name, p->n, "", "n", "mean", "p50", "p75", "p95", "p99.5");
    const double *fit_col = p->centre ? fit : NULL;
    bf_status st = print_subset("all", nn, fit_col, ref, NULL, p->n, err);
    if (st != BF_OK || !p->peak)
        return st;
    /* simulated patches: by peak height (counts) and with / without a neighbour */
    unsigned char *keep = malloc((size_t)p->n);
    if (!keep)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    static const double edges[] = {0, 158, 500, 1581, INFINITY}; /* half decades from 50 */
    for (int b = 0; st == BF_OK && b < 4; b++) {
        char what[48];
        if (b == 0)
            snprintf(what, sizeof what, "height < %.0f", edges[1]);
        else if (b < 3)
            snprintf(what, sizeof what, "height %.0f-%.0f", edges[b], edges[b + 1]);
        else
            snprintf(what, sizeof what, "height > %.0f", edges[b]);
        for (long i = 0; i < p->n; i++)
            keep[i] = p->peak[i].amplitude >= edges[b] && p->peak[i].amplitude < edges[b + 1];
        st = print_subset(what, nn, fit_col, ref, keep, p->n, err);
    }
    if (p->neighbour)
        for (int with = 1; st == BF_OK && with >= 0; with--) {
            for (long i = 0; i < p->n; i++)
                keep[i] = (p->neighbour[i] != 0) == with;
            st = print_subset(with ? "with a neighbour" : "single peak", nn, fit_col, ref, keep,
                              p->n, err);
        }
    free(keep);
    (void)data;
    return st;
}

int cmd_peaks(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, 0, OPT_MODEL}, {"data", required_argument, 0, OPT_DATA},
        {"out", required_argument, 0, OPT_OUT},     {"fits", required_argument, 0, OPT_FITS},
        {"batch", required_argument, 0, OPT_BATCH}, {"threads", required_argument, 0, OPT_THREADS},
        {"device", required_argument, 0, OPT_DEVICE},
        {"help", no_argument, 0, OPT_HELP},         {0, 0, 0, 0}};
    const char *model = NULL, *data = NULL, *out = NULL, *fits_path = NULL, *device = NULL;
    const bf_backend *be = NULL;
    long batch = 512, threads = 0;
    int opt, rc = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_MODEL: model = optarg; break;
        case OPT_DATA: data = optarg; break;
        case OPT_OUT: out = optarg; break;
        case OPT_FITS: fits_path = optarg; break;
        case OPT_DEVICE: device = optarg; break;
        case OPT_BATCH: rc = bf_cli_parse_count("peaks", "--batch", optarg, 1, 65536, &batch); break;
        case OPT_THREADS:
            rc = bf_cli_parse_count("peaks", "--threads", optarg, 0, 4096, &threads);
            break;
        default: return bf_cli_bad_option("peaks", opt == ':' ? ':' : '?', argv);
        }
    }
    if (rc)
        return rc;
    if (optind < argc)
        return bf_cli_usage_error("peaks", "unexpected argument '%s'", argv[optind]);
    if (!model || !data)
        return bf_cli_usage_error("peaks", "--model and --data are required");
    if (out && !bf_path_has_suffix(out, ".csv"))
        return bf_cli_usage_error("peaks", "--out must end in .csv");
    if ((rc = bf_cli_device("peaks", device, &be)) != 0)
        return rc;

    bf_error err = {0};
    bf_model *m = NULL;
    bf_checkpoint_info *info = calloc(1, sizeof *info);
    bf_patches p = {0};
    bf_peak_fit *fits = NULL;
    double *centres = NULL, *fit_c = NULL;
    long n_fits = 0;
    int fit_S = 0;
    bf_backend_cpu()->set_threads((int)threads);
    be->set_threads((int)threads);
    bf_status st = info ? bf_task_load("peaks", model, be, &m, info, &err)
                        : bf_error_set(&err, BF_ERR_NOMEM, "out of memory");
    if (st == BF_OK)
        st = bf_patches_read_h5(data, &p, &err);
    if (st == BF_OK && fits_path) {
        st = bf_fits_read_h5(fits_path, &fits, &n_fits, &fit_S, &err);
        if (st == BF_OK && (n_fits != p.n || fit_S != p.size))
            st = bf_error_set(&err, BF_ERR_INVALID, "%s: %ld fits of %d x %d patches, %s holds "
                              "%ld of %d x %d", fits_path, n_fits, fit_S, fit_S, data, p.n,
                              p.size, p.size);
    }
    if (st == BF_OK && !(centres = malloc(sizeof(double) * 2 * (size_t)p.n)))
        st = bf_error_set(&err, BF_ERR_NOMEM, "out of memory");
    double t0 = bf_now_seconds();
    if (st == BF_OK)
        st = bf_peaks_predict(m, &p, data, (int)batch, centres, &err);
    double dt = bf_now_seconds() - t0;
    if (st == BF_OK)
        st = write_csv(out, centres, p.n, &err);
    if (st == BF_OK) {
        fprintf(stderr, "braggflow peaks: %ld patches in %.3f s (%.0f patches/s)%s%s\n", p.n, dt,
                dt > 0 ? p.n / dt : 0.0, out ? " -> " : "", out ? out : "");
        if (fits && !(fit_c = malloc(sizeof(double) * 2 * (size_t)p.n)))
            st = bf_error_set(&err, BF_ERR_NOMEM, "out of memory");
        for (long i = 0; fit_c && i < p.n; i++)
            fit_c[2 * i] = fits[i].peak.row, fit_c[2 * i + 1] = fits[i].peak.col;
        if (st == BF_OK && (p.centre || fit_c))
            st = print_errors(&p, centres, fit_c, data, &err);
    }
    free(centres);
    free(fit_c);
    free(fits);
    free(info);
    bf_patches_free(&p);
    bf_model_destroy(m);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
