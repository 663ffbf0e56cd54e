/* cli/cmd_import_peaks.c — `braggflow import-peaks`: BraggNN's frames and
 * peaks files as a patch file (docs/peaks.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "braggflow/data.h"
#include "cli/cli.h"

enum { OPT_IP_FRAMES = 2100, OPT_IP_PEAKS, OPT_IP_OUT, OPT_IP_SIZE, OPT_IP_HELP };

static const char *usage =
    "usage: braggflow import-peaks --frames frames.h5 --peaks peaks.h5 --out patches.h5\n"
    "                              [--size S]\n\n"
    "Reads BraggNN's data files: frames.h5 with `frames` (n_frames, H, W) and peaks.h5\n"
    "with `peak_fidx`, `peak_row`, `peak_col`, `npeaks`, `deviations` (one row per\n"
    "peak). Keeps the rows BraggNN trains on (npeaks == 1 and 0 <= deviations < 1),\n"
    "crops S x S pixels around (int(peak_row), int(peak_col)) as BraggNN's dataset.py\n"
    "does (zeros where the crop leaves the frame, split evenly before/after) and\n"
    "writes them with the frame index, the crop origin and the centre in patch\n"
    "coordinates (pixel k spans [k, k+1)); both inputs' SHA-256 go in the file.\n"
    "See docs/peaks.md for the exact crop rule at the frame edges.\n\n"
    "options:\n"
    "  --frames FILE.h5    detector frames (float32, any numeric type is converted)\n"
    "  --peaks FILE.h5     peak table\n"
    "  --out FILE.h5       output (written to a temporary file, then renamed)\n"
    "  --size S            patch size, odd, 5..63 (default 11, BraggNN's)\n\n"
    "example:\n"
    "  braggflow import-peaks --frames frames.h5 --peaks peaks.h5 --out real-peaks.h5\n";

int cmd_import_peaks(int argc, char **argv)
{
    static const struct option longopts[] = {{"frames", required_argument, 0, OPT_IP_FRAMES},
                                             {"peaks", required_argument, 0, OPT_IP_PEAKS},
                                             {"out", required_argument, 0, OPT_IP_OUT},
                                             {"size", required_argument, 0, OPT_IP_SIZE},
                                             {"help", no_argument, 0, OPT_IP_HELP},
                                             {0, 0, 0, 0}};
    const char *frames = NULL, *peaks = NULL, *out = NULL;
    long size = 11;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_IP_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_IP_FRAMES: frames = optarg; break;
        case OPT_IP_PEAKS: peaks = optarg; break;
        case OPT_IP_OUT: out = optarg; break;
        case OPT_IP_SIZE:
            if (bf_cli_parse_count("import-peaks", "--size", optarg, 5, 63, &size))
                return BF_EXIT_FAIL;
            if (size % 2 == 0)
                return bf_cli_usage_error("import-peaks", "--size: %ld is even (odd sizes only)",
                                          size);
            break;
        default: return bf_cli_bad_option("import-peaks", opt == ':' ? ':' : '?', argv);
        }
    }
    if (optind < argc)
        return bf_cli_usage_error("import-peaks", "unexpected argument '%s'", argv[optind]);
    if (!frames || !peaks || !out)
        return bf_cli_usage_error("import-peaks", "--frames, --peaks and --out are required");
    if (!bf_path_has_suffix(out, ".h5") && !bf_path_has_suffix(out, ".hdf5"))
        return bf_cli_usage_error("import-peaks", "--out must end in .h5");

    bf_error err = {0};
    bf_patches p = {0};
    double t0 = bf_now_seconds();
    bf_status st = bf_patches_import_braggnn(frames, peaks, (int)size, &p, &err);
    if (st == BF_OK)
        st = bf_patches_write_h5(&p, out, &err);
    if (st == BF_OK)
        fprintf(stderr, "braggflow import-peaks: %ld patches of %d x %d -> %s (%.2f s)\n", p.n,
                p.size, p.size, out, bf_now_seconds() - t0);
    bf_patches_free(&p);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
