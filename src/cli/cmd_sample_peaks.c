/* cli/cmd_sample_peaks.c — `braggflow sample-peaks`: simulated Bragg-peak
 * patches with known centres for BraggNN (docs/peaks.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "braggflow/data.h"
#include "cli/cli.h"

enum { OPT_SP_CONFIG = 2000, OPT_SP_OUT, OPT_SP_THREADS, OPT_SP_COUNT, OPT_SP_SEED, OPT_SP_HELP };

static const char *usage =
    "usage: braggflow sample-peaks [--config FILE.ini] --out patches.h5 [--count N]\n"
    "                              [--seed S] [--threads N]\n\n"
    "Simulates S x S detector patches (default 11 x 11), each a 2-D pseudo-Voigt peak\n"
    "(random sub-pixel centre within the central pixel +- 0.5 px, widths, mixing,\n"
    "rotation, height) on a sloped background, sometimes with a neighbouring peak\n"
    "reaching into the patch, plus Poisson counting noise and Gaussian read noise.\n"
    "The true centre and every parameter are stored with the patches. Patch i uses\n"
    "random stream (seed, i): the file is identical for any thread count, and under\n"
    "mpirun (`mpirun -np 4 braggflow sample-peaks ...`: the blocks shared out over the\n"
    "ranks, rank 0 writes) for any rank count.\n"
    "Without --config the documented defaults are used; every INI key and its\n"
    "default is in README.md ('sample-peaks') and examples/peaks/peaks-default.ini.\n\n"
    "options:\n"
    "  --config FILE.ini   ranges to draw from ([run] [peak] [background] [noise]\n"
    "                      [neighbour]); absent: the defaults\n"
    "  --out FILE.h5       output (written to a temporary file, then renamed)\n"
    "  --count N           number of patches (overrides [run] count; default 1000)\n"
    "  --seed S            random seed (overrides [run] seed; default 0)\n"
    "  --threads N         simulation threads (0 or absent: all cores)\n\n"
    "example:\n"
    "  braggflow sample-peaks --config examples/peaks/peaks-default.ini --count 20000 \\\n"
    "      --out peaks-train.h5\n";

int cmd_sample_peaks(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, 0, OPT_SP_CONFIG},
                                             {"out", required_argument, 0, OPT_SP_OUT},
                                             {"threads", required_argument, 0, OPT_SP_THREADS},
                                             {"count", required_argument, 0, OPT_SP_COUNT},
                                             {"seed", required_argument, 0, OPT_SP_SEED},
                                             {"help", no_argument, 0, OPT_SP_HELP},
                                             {0, 0, 0, 0}};
    const char *config = NULL, *out = NULL, *seed_text = NULL;
    long threads = 0, count = 0;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_SP_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_SP_CONFIG: config = optarg; break;
        case OPT_SP_OUT: out = optarg; break;
        case OPT_SP_THREADS:
            if (bf_cli_parse_count("sample-peaks", "--threads", optarg, 0, 4096, &threads))
                return BF_EXIT_FAIL;
            break;
        case OPT_SP_COUNT:
            if (bf_cli_parse_count("sample-peaks", "--count", optarg, 1, 100000000, &count))
                return BF_EXIT_FAIL;
            break;
        case OPT_SP_SEED: seed_text = optarg; break;
        default: return bf_cli_bad_option("sample-peaks", opt == ':' ? ':' : '?', argv);
        }
    }
    if (optind < argc)
        return bf_cli_usage_error("sample-peaks", "unexpected argument '%s'", argv[optind]);
    if (!out)
        return bf_cli_usage_error("sample-peaks", "--out is required");
    if (!bf_path_has_suffix(out, ".h5") && !bf_path_has_suffix(out, ".hdf5"))
        return bf_cli_usage_error("sample-peaks", "--out must end in .h5");
    unsigned long long seed = 0;
    if (seed_text) {
        char *end = NULL;
        errno = 0;
        if (seed_text[0] < '0' || seed_text[0] > '9' ||
            (seed = strtoull(seed_text, &end, 10), *end != 0 || errno == ERANGE))
            return bf_cli_usage_error("sample-peaks", "--seed: '%s' is not a whole number >= 0",
                                      seed_text);
    }

    bf_error err = {0};
    /* under mpirun: ranks split the blocks, rank 0 writes (DESIGN §10 "As built") */
    const bf_rank_link *link = bf_cli_rank_link();
    const int rank0 = !link || link->rank == 0;
    bf_peaks_config *cfg = calloc(1, sizeof *cfg);
    bf_status st = cfg ? BF_OK : bf_error_set(&err, BF_ERR_NOMEM, "out of memory");
    if (st == BF_OK) {
        if (config)
            st = bf_peaks_config_read(config, cfg, &err);
        else
            bf_peaks_config_defaults(cfg);
    }
    if (st == BF_OK) {
        if (count > 0)
            cfg->count = count;
        if (seed_text)
            cfg->seed = (uint64_t)seed;
    }
    if (st == BF_OK && rank0) {
        /* fail before the simulation, not after it, when --out is unwritable */
        bf_atomic_file probe = {0};
        st = bf_atomic_begin(&probe, out, 1, &err);
        bf_atomic_abort(&probe);
    }
    /* a rank that cannot read the config stops them all */
    if (link)
        st = link->agree(link->user, st, &err);
    if (st == BF_OK) {
        /* streamed: each block of patches is written before the next is simulated */
        double t0 = bf_now_seconds();
        long nb = 0;
        st = bf_patches_sample_h5_ranks(cfg, (int)threads, out, link, &nb, &err);
        double dt = bf_now_seconds() - t0;
        char ranks[32] = "";
        if (link)
            snprintf(ranks, sizeof ranks, " on %d ranks", link->size);
        if (st == BF_OK && rank0)
            fprintf(stderr,
                    "braggflow sample-peaks: %ld patches of %d x %d (%ld with a neighbour) -> %s "
                    "(%.2f s%s; %.0f patches/s)\n",
                    cfg->count, cfg->size, cfg->size, nb, out, dt, ranks,
                    dt > 0 ? (double)cfg->count / dt : 0.0);
    }
    free(cfg);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
