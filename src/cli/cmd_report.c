/* cli/cmd_report.c — `braggflow report`: a campaign folder's report.html. */
#include <getopt.h>
#include <stdio.h>

#include "braggflow/flow.h"
#include "cli/cli.h"

static const char *usage =
    "usage: braggflow report CAMPAIGN_DIR\n\n"
    "Writes CAMPAIGN_DIR/report.html from the folder's files: one self-contained page\n"
    "(inline CSS and SVG; no scripts, fonts or other network resources) with the\n"
    "summary and provenance, the task timeline as a Gantt chart (timeline.csv), test\n"
    "class loss and MSE per phase (metrics.csv), where each active-learning batch\n"
    "sampled against the study set (data/al-K.csv, data/study.h5) and example test\n"
    "patterns (data/test.h5). Parts a campaign lacks (a baseline has no study set or\n"
    "AL batches) are replaced by a note. It also works on an unfinished campaign.\n\n"
    "options:\n"
    "  --help              this text\n\n"
    "example:\n"
    "  braggflow campaign examples/campaigns/seed001-e1-small.ini --out e1-small\n"
    "  braggflow report e1-small          # then open e1-small/report.html\n";

int cmd_report(int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, 0, OPT_HELP}, {0, 0, 0, 0}};
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        default: return bf_cli_bad_option("report", opt == ':' ? ':' : '?', argv);
        }
    }
    if (optind >= argc)
        return bf_cli_usage_error("report", "a CAMPAIGN_DIR is required");
    const char *dir = argv[optind++];
    if (optind < argc)
        return bf_cli_usage_error("report", "unexpected argument '%s'", argv[optind]);

    bf_error err = {0};
    if (bf_campaign_report(dir, &err) != BF_OK)
        return bf_cli_fail(&err);
    printf("report: %s/report.html\n", dir);
    return BF_EXIT_OK;
}
