/* cli/cmd_sweep.c — `braggflow sweep`: a hyper-parameter sweep as a resumable run of
 * training trials (flow/sweep.c), as one process or an MPI task farm; --report prints
 * the best trials and writes DIR/report.html. */
#include <getopt.h>
#include <stdio.h>

#include "braggflow/dist.h"
#include "braggflow/flow.h"
#include "cli/cli.h"

enum { OPT_REPORT = 4100, OPT_TOP };

static const char *usage =
    "usage: braggflow sweep SWEEP.ini\n"
    "       braggflow sweep --report DIR [--top N]\n\n"
    "Runs every trial of a hyper-parameter sweep: a grid (every combination of the\n"
    "listed values, first key slowest) or `count` random draws (lists, lo..hi or\n"
    "log lo..hi ranges; reproducible by seed) over the train options lr, batch, hidden,\n"
    "epochs, seed, patience, min_delta and clip, for structure_net (`sample` datasets)\n"
    "or braggnn (patch files). Each trial trains on one process and writes\n"
    "OUT/trials/NNNN/{model.safetensors, train.log}; OUT/registry.sqlite records\n"
    "every trial (effective config, seed, status, start count, host, rank, times,\n"
    "metrics per epoch, the checkpoint's SHA-256). Rerunning the same command resumes:\n"
    "finished trials are kept, interrupted ones run again. At the end OUT/report.html\n"
    "is written and the best trial printed (metric val_score, lower is better).\n\n"
    "Under mpirun (`mpirun -np N braggflow sweep SWEEP.ini`) rank 0 owns the registry\n"
    "and hands out trials; ranks 1..N-1 each train one trial at a time.\n"
    "The INI keys are in the README (\"braggflow sweep\").\n\n"
    "options:\n"
    "  --report DIR        print DIR's trials (best first) and write DIR/report.html\n"
    "  --top N             --report: at most N trials printed (default 10, 0 = all)\n"
    "  --help              this text\n\n"
    "example:\n"
    "  braggflow sweep sweep.ini                 # the INI of README \"braggflow sweep\"\n"
    "  mpirun -np 3 braggflow sweep sweep.ini    # rank 0 hands out, 2 ranks train\n"
    "  braggflow sweep --report sweep-dir       # then open sweep-dir/report.html\n";

static void print_line(const char *line, void *user)
{
    printf("%s\n", line);
    fflush(stdout);
}

int cmd_sweep(int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, 0, OPT_HELP},
                                             {"report", required_argument, 0, OPT_REPORT},
                                             {"top", required_argument, 0, OPT_TOP},
                                             {0, 0, 0, 0}};
    const char *report_dir = NULL;
    long top = 10;
    int opt, rc = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_REPORT: report_dir = optarg; break;
        case OPT_TOP: rc = bf_cli_parse_count("sweep", "--top", optarg, 0, 1000000, &top); break;
        default: return bf_cli_bad_option("sweep", opt == ':' ? ':' : '?', argv);
        }
    }
    if (rc)
        return rc;
    bf_error err = {0};
    const bf_comm *world = bf_dist_world(); /* NULL unless mpirun started us */
    if (report_dir) {
        if (optind < argc)
            return bf_cli_usage_error("sweep", "unexpected argument '%s'", argv[optind]);
        if (world && world->size > 1)
            return bf_cli_usage_error("sweep", "--report runs as one process");
        if (bf_sweep_report(report_dir, stdout, (int)top, &err) != BF_OK)
            return bf_cli_fail(&err);
        printf("report: %s/report.html\n", report_dir);
        return BF_EXIT_OK;
    }
    if (optind >= argc)
        return bf_cli_usage_error("sweep", "a SWEEP.ini (or --report DIR) is required");
    const char *ini = argv[optind++];
    if (optind < argc)
        return bf_cli_usage_error("sweep", "unexpected argument '%s'", argv[optind]);
    static bf_sweep_config cfg; /* large */
    if (bf_sweep_config_read(ini, &cfg, &err) != BF_OK)
        return bf_cli_fail(&err);
    if (bf_sweep_run(&cfg, world, print_line, NULL, &err) != BF_OK)
        return bf_cli_fail(&err);
    if (!world || world->rank == 0) {
        if (bf_sweep_report(cfg.out, stdout, 3, &err) != BF_OK)
            return bf_cli_fail(&err);
        printf("report: %s/report.html\n", cfg.out);
    }
    return BF_EXIT_OK;
}
