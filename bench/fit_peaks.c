/* bench/fit_peaks.c — speed and accuracy of the conventional pseudo-Voigt fit
 * (fit.h) on simulated default patches (data.h bf_patches_simulate, 11 x 11, 10 %
 * with a neighbour): patches/s on one core and on all threads, mean core time per
 * fit, convergence rate and the Euclidean centre error (px, mean and 50/75/95/99.5th
 * percentiles, all fits and without neighbours). The peer is seed 002's conventional
 * analysis, about 2.5 ms of core time per peak (DESIGN §7) = 400 patches/s per core.
 *
 * usage: bench_fit_peaks [--patches N] [--threads T] [--seed S] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "braggflow/fit.h"

#define PEER_PATCHES_PER_CORE_S 400.0 /* seed 002: 2.5 ms of core time per peak */

/* The error statistics of the fits of patches i with keep[i] (all when keep is NULL). */
static void print_errors(const char *name, const bf_peak_fit *fits, const bf_patches *p,
                         const uint8_t *skip, const char *tail)
{
    double *fit = malloc(sizeof(double) * 2 * (size_t)p->n);
    double *truth = malloc(sizeof(double) * 2 * (size_t)p->n);
    long k = 0;
    for (long i = 0; fit && truth && i < p->n; i++)
        if (!skip || !skip[i]) {
            fit[2 * k] = fits[i].peak.row, fit[2 * k + 1] = fits[i].peak.col;
            truth[2 * k] = p->centre[2 * i], truth[2 * k + 1] = p->centre[2 * i + 1];
            k++;
        }
    bf_peak_errors e;
    if (!fit || !truth || bf_peak_errors_of(fit, truth, k, &e, NULL) != BF_OK || k == 0)
        printf("  \"%s\": null%s\n", name, tail);
    else
        printf("  \"%s\": {\"n\": %ld, \"mean\": %.4f, \"p50\": %.4f, \"p75\": %.4f, "
               "\"p95\": %.4f, \"p99_5\": %.4f}%s\n",
               name, k, e.mean, e.p50, e.p75, e.p95, e.p995, tail);
    free(fit);
    free(truth);
}

int main(int argc, char **argv)
{
    long n = 2000;
    int threads = bf_default_threads();
    unsigned long long seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--patches") == 0)
            n = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = strtoull(argv[i + 1], NULL, 10);
    }
    if (n < 1 || threads < 1) {
        fprintf(stderr, "bench_fit_peaks: --patches and --threads must be >= 1\n");
        return 2;
    }
    bf_peaks_config cfg;
    bf_peaks_config_defaults(&cfg);
    cfg.count = n;
    cfg.seed = seed;
    bf_patches p;
    bf_error err = {0};
    if (bf_patches_simulate(&cfg, threads, &p, &err) != BF_OK) {
        fprintf(stderr, "bench_fit_peaks: %s\n", err.msg);
        return 2;
    }
    bf_peak_fit *one = malloc((size_t)n * sizeof *one), *all = malloc((size_t)n * sizeof *all);
    if (!one || !all) {
        fprintf(stderr, "bench_fit_peaks: out of memory\n");
        return 2;
    }
    bf_fit_options o;
    bf_fit_options_defaults(&o);
    double t0 = bf_now_seconds();
    bf_status st = bf_fit_patches(&p, &o, 1, one, &err);
    const double t_one = bf_now_seconds() - t0;
    t0 = bf_now_seconds();
    if (st == BF_OK)
        st = bf_fit_patches(&p, &o, threads, all, &err);
    const double t_all = bf_now_seconds() - t0;
    if (st != BF_OK) {
        fprintf(stderr, "bench_fit_peaks: %s\n", err.msg);
        return 2;
    }
    long conv = 0, masked = 0, iters = 0, same = 1;
    for (long i = 0; i < n; i++) {
        conv += one[i].converged != 0;
        masked += one[i].masked > 0;
        iters += one[i].iterations;
        same = same && memcmp(&one[i].peak, &all[i].peak, sizeof one[i].peak) == 0;
    }
    const double per_core = n / t_one;
    struct utsname u;
    uname(&u);
    printf("{\n  \"bench\": \"fit_peaks\",\n  \"version\": \"%s\",\n  \"machine\": \"%s %s\",\n",
           BF_VERSION, u.sysname, u.machine);
    printf("  \"patches\": %ld,\n  \"patch_size\": %d,\n  \"seed\": %llu,\n  \"threads\": %d,\n", n,
           p.size, seed, threads);
    printf("  \"patches_per_s_one_core\": %.0f,\n  \"patches_per_s_all_threads\": %.0f,\n",
           per_core, n / t_all);
    printf("  \"mean_fit_ms_one_core\": %.4f,\n  \"mean_iterations\": %.1f,\n",
           1e3 * t_one / n, (double)iters / n);
    printf("  \"converged_fraction\": %.4f,\n  \"neighbour_masked_fraction\": %.4f,\n",
           (double)conv / n, (double)masked / n);
    printf("  \"same_fits_any_thread_count\": %s,\n", same ? "true" : "false");
    printf("  \"peer\": \"seed 002 conventional fit, 2.5 ms of core time per peak\",\n");
    printf("  \"speedup_vs_peer_per_core\": %.2f,\n", per_core / PEER_PATCHES_PER_CORE_S);
    print_errors("centre_error_px", one, &p, NULL, ",");
    print_errors("centre_error_px_no_neighbour", one, &p, p.neighbour, "");
    printf("}\n");
    free(one);
    free(all);

    bf_patches_free(&p);
    return 0;
}
