/* cli/cmd_campaign.c — `braggflow campaign`: the simulate -> train -> AL loop. */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "braggflow/dist.h"
#include "braggflow/flow.h"
#include "cli/cli.h"

static const char *usage =
    "usage: braggflow campaign CONFIG.ini [--workflow W] [--out DIR]\n"
    "       braggflow campaign --resume DIR\n\n"
    "Runs the simulate -> train -> active-learning loop of seeds 000 and 001 (DESIGN\n"
    "section 6) as one durable run. CONFIG.ini is a `sample` INI (its class counts are\n"
    "the phase-0 training patterns) plus [campaign], [train] and [al] sections; every\n"
    "key is in README.md ('Campaign configuration') and is checked before any work.\n\n"
    "workflows (W; with [run] sampler = random, AL; with sampler = grid, seed 000):\n"
    "  baseline    all training data up front, one training task\n"
    "  serial      phase 0 (train/val/test/study sets, train), then per phase:\n"
    "              AL -> simulate the batch -> train on everything so far\n"
    "              (grid: the bias-free phases of the grid, one after the other)\n"
    "  streaming   as serial, but the study set and part of each batch are simulated\n"
    "              while the model trains (seed 001 Fig. 3)\n"
    "  parallel    grid only: phase k+1 is simulated while phase k trains (seed 000)\n\n"
    "DIR (default: a new folder next to CONFIG.ini) receives config.ini, data/*.h5,\n"
    "models/phase-K.safetensors, timeline.csv (every task's start and end), metrics.csv\n"
    "(test metrics per phase), summary.txt and provenance.json. A finished task leaves\n"
    "tasks/NAME.done: --resume DIR continues after a crash without redoing them.\n\n"
    "options:\n"
    "  --workflow W        overrides [campaign] workflow\n"
    "  --out DIR           campaign folder (must not exist)\n"
    "  --resume DIR        continue the campaign in DIR with its own config\n\n"
    "Under mpirun (`mpirun -np N braggflow campaign CONFIG.ini`) [campaign] sim_ranks = K\n"
    "ranks simulate (each set's rows split over them) and the other N-K train\n"
    "data-parallel, each reading only its shard; rank 0 runs the workflow and the AL\n"
    "step and writes the records. Each rank is pinned (hwloc) to sim_threads or\n"
    "train_threads cores of its own (run mpirun with --bind-to none). DIR must be on a\n"
    "filesystem every rank sees. A killed rank aborts the job; --resume (under mpirun\n"
    "again, or not) finishes it.\n\n"
    "example:\n"
    "  braggflow campaign examples/campaigns/seed001-e1-small.ini --out e1-small\n"
    "  mpirun -np 2 --bind-to none braggflow campaign e1-mpi.ini --out e1-mpi\n";

static void print_line(const char *line, void *user)
{
    (void)user;
    printf("  %s\n", line);
    fflush(stdout);
}

/* DIR/tasks/workflow: the workflow the campaign started with (config or --workflow). */
static bf_status read_workflow(const char *dir, bf_workflow *w, bf_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/tasks/workflow", dir);
    char *text = NULL;
    bf_status st = bf_read_file(path, &text, NULL, err);
    if (st == BF_OK) {
        text[strcspn(text, "\n")] = 0;
        st = bf_workflow_parse(text, w, err);
    }
    free(text);
    return st;
}

/* DIR/config.ini, parsed as if it still stood where it came from (tasks/config_path),
 * so relative instprm and cif paths resolve as in the original run. */
static bf_status read_saved_config(const char *dir, bf_campaign_config *cfg, bf_error *err)
{
    char path[4200], *text = NULL, *origin = NULL;
    snprintf(path, sizeof path, "%s/config.ini", dir);
    bf_status st = bf_read_file(path, &text, NULL, err);
    if (st != BF_OK) {
        bf_error_prefix(err, "%s is not a campaign folder", dir);
        return st;
    }
    char origin_path[4200];
    snprintf(origin_path, sizeof origin_path, "%s/tasks/config_path", dir);
    bf_error ignore = {0};
    if (bf_read_file(origin_path, &origin, NULL, &ignore) == BF_OK)
        origin[strcspn(origin, "\n")] = 0;
    st = bf_campaign_config_parse(text, origin && origin[0] ? origin : path, cfg, err);
    free(text);
    free(origin);
    return st;
}

int cmd_campaign(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"workflow", required_argument, 0, OPT_WORKFLOW}, {"out", required_argument, 0, OPT_OUT},
        {"resume", required_argument, 0, OPT_RESUME},     {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0}};
    const char *workflow = NULL, *out = NULL, *resume = NULL;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_WORKFLOW: workflow = optarg; break;
        case OPT_OUT: out = optarg; break;
        case OPT_RESUME: resume = optarg; break;
        default: return bf_cli_bad_option("campaign", opt == ':' ? ':' : '?', argv);
        }
    }
    const char *config = optind < argc ? argv[optind++] : NULL;
    if (optind < argc)
        return bf_cli_usage_error("campaign", "unexpected argument '%s'", argv[optind]);
    if (resume && (config || out || workflow))
        return bf_cli_usage_error("campaign", "--resume DIR takes no config, --out or --workflow "
                                              "(the campaign keeps its own)");
    if (!resume && !config)
        return bf_cli_usage_error("campaign", "a CONFIG.ini (or --resume DIR) is required");

    bf_error err = {0};
    bf_campaign_config *cfg = calloc(1, sizeof *cfg);
    bf_campaign_result *res = calloc(1, sizeof *res);
    char dir[4096], config_path[4200];
    bf_status st = cfg && res ? BF_OK : bf_error_set(&err, BF_ERR_NOMEM, "out of memory");
    if (resume)
        snprintf(config_path, sizeof config_path, "%s/config.ini", resume);
    else
        snprintf(config_path, sizeof config_path, "%s", config);
    if (st == BF_OK && resume)
        st = read_saved_config(resume, cfg, &err);
    else if (st == BF_OK)
        st = bf_campaign_config_read(config_path, cfg, &err);
    if (st == BF_OK && workflow) {
        st = bf_workflow_parse(workflow, &cfg->workflow, &err);
        if (st != BF_OK)
            bf_error_prefix(&err, "--workflow");
    }
    if (st == BF_OK && resume)
        st = read_workflow(resume, &cfg->workflow, &err);
    if (st == BF_OK) {
        if (resume) {
            snprintf(dir, sizeof dir, "%s", resume);
        } else if (out) {
            snprintf(dir, sizeof dir, "%s", out);
        } else { /* next to the config: NAME-WORKFLOW-YYYYmmdd-HHMMSS */
            char copy[4200], stamp[32];
            snprintf(copy, sizeof copy, "%s", config);
            char *base = basename(copy), *dot = strrchr(base, '.');
            if (dot)
                *dot = 0;
            time_t now = time(NULL);
            strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
            char folder[4200];
            snprintf(folder, sizeof folder, "%s", config);
            snprintf(dir, sizeof dir, "%s/%s-%s-%s", dirname(folder), base,
                     bf_workflow_name(cfg->workflow), stamp);
        }
        printf("braggflow campaign: %s workflow, %d phase(s), policy %s -> %s\n",
               bf_workflow_name(cfg->workflow), cfg->workflow == BF_FLOW_BASELINE ? 1 : cfg->phases,
               bf_al_kind_name(cfg->policy.kind),
               dir);
        fflush(stdout);
        /* NULL unless mpirun started us; ranks > 0 print nothing (main.c) */
        st = bf_campaign_run(cfg, dir, resume != NULL, bf_dist_world(), print_line, NULL, res,
                             &err);
    }
    if (st == BF_OK) {
        printf("\n");
        bf_campaign_print_summary(stdout, cfg, res);
        printf("\nfolder: %s (summary.txt, timeline.csv, metrics.csv)\n", dir);
    }
    free(cfg);
    free(res);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
