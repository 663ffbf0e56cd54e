/* cli/main.c — `braggflow CMD ...`: dispatch to one file per subcommand. */
#include <stdio.h>
#include <string.h>

#include "braggflow/dist.h"
#include "cli/cli.h"

static const struct {
    const char *name;
    bf_cmd_fn fn;
    const char *summary;
} commands[] = {
    {"simulate", cmd_simulate, "simulate one TOF powder pattern (CSV or HDF5)"},
    {"reflections", cmd_reflections, "list the reflections of a cell with their peak parameters (CSV)"},
    {"sample", cmd_sample, "simulate a labelled dataset from an INI config (HDF5)"},
    {"train", cmd_train, "train a model (structure_net, braggnn) on its datasets (safetensors)"},
    {"evaluate", cmd_evaluate, "metrics of a trained model on a dataset (table or JSON)"},
    {"predict", cmd_predict, "class and lattice parameters (with sigma) for patterns"},
    {"campaign", cmd_campaign, "simulate -> train -> active learning, as a resumable run"},
    {"report", cmd_report, "self-contained HTML report of a campaign (inline SVG)"},
    {"sample-peaks", cmd_sample_peaks, "simulate Bragg-peak detector patches with known centres (HDF5)"},
    {"import-peaks", cmd_import_peaks, "BraggNN frames + peaks files -> a patch file (HDF5)"},
    {"fit-peaks", cmd_fit_peaks, "fit a 2-D pseudo-Voigt to every patch of a patch file (HDF5)"},
    {"peaks", cmd_peaks, "Bragg-peak centres of detector patches with a BraggNN model (CSV)"},
    {"export", cmd_export, "write a trained model as ONNX (opset 17, dynamic batch)"},
    {"serve", cmd_serve, "ZeroMQ inference service with dynamic batching and live model swap"},
    {"serve-client", cmd_serve_client, "send a patch file to a service, check replies, report latency"},
    {"plan", cmd_plan, "seed 002's cost model: when a surrogate pays off (break-even N)"},
    {"sweep", cmd_sweep, "hyper-parameter sweep: many training trials, an SQLite registry"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_help(FILE *out)
{
    fprintf(out,
            "braggflow %s — simulate, train and steer diffraction surrogates: powder patterns\n"
            "and Bragg-peak detector patches\n\n"
            "usage: braggflow COMMAND [OPTIONS]\n"
            "       braggflow COMMAND --help\n"
            "       braggflow --version\n\n"
            "commands:\n",
            BF_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nExit status: 0 on success, 2 on bad input or failure.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "braggflow: missing command (see braggflow --help)\n");
        return BF_EXIT_FAIL;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_help(stdout);
        return BF_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("braggflow %s\n", BF_VERSION);
        return BF_EXIT_OK;
    }
    /* Under an MPI launcher (DESIGN §10): MPI for the whole run; ranks other than 0
     * stay silent, as errors reach rank 0 through bf_comm_agree and it prints them. */
    bf_error err = {0};
    if (bf_dist_init(&argc, &argv, &err) != BF_OK)
        return bf_cli_fail(&err);
    const bf_comm *world = bf_dist_world();
    if (world && world->rank > 0 && (!freopen("/dev/null", "w", stdout) ||
                                     !freopen("/dev/null", "w", stderr)))
        return BF_EXIT_FAIL;
    /* only train, sweep, campaign, sample and sample-peaks divide their work over ranks;
     * N copies of another command would each write the same outputs */
    static const char *const ranked[] = {"train", "sweep", "campaign", "sample", "sample-peaks"};
    int is_ranked = 0;
    for (size_t i = 0; i < sizeof ranked / sizeof ranked[0]; i++)
        is_ranked |= !strcmp(cmd, ranked[i]);
    if (world && world->size > 1 && !is_ranked) {
        fprintf(stderr, "braggflow: %s does not run under MPI with %d ranks (only train, sweep, "
                "campaign, sample and sample-peaks do)\n",
                cmd, world->size);
        bf_dist_finalize();
        return BF_EXIT_FAIL;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0) {
            int rc = commands[i].fn(argc - 1, argv + 1);
            fflush(stdout);
            bf_dist_finalize();
            return rc;
        }
    bf_dist_finalize();
    fprintf(stderr, "braggflow: unknown command '%s' (see braggflow --help)\n", cmd);
    return BF_EXIT_FAIL;
}
