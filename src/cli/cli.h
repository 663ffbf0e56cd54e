/* cli/cli.h — shared pieces of the `braggflow` subcommands (one file each). */
#ifndef BF_CLI_H
#define BF_CLI_H

#include <getopt.h>

#include "braggflow/core.h"
#include "braggflow/crystal.h"
#include "braggflow/nn.h"
#include "braggflow/task.h"
#include "braggflow/sim.h"

/* Exit status for bad input or any failure; 0 on success. */
enum { BF_EXIT_OK = 0, BF_EXIT_FAIL = 2 };

typedef int (*bf_cmd_fn)(int argc, char **argv);

int cmd_simulate(int argc, char **argv);
int cmd_reflections(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_campaign(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_peaks(int argc, char **argv);
int cmd_sample_peaks(int argc, char **argv);
int cmd_fit_peaks(int argc, char **argv);
int cmd_import_peaks(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_serve_client(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_sweep(int argc, char **argv);

/* The ranks of this job as the data layer's bf_rank_link (braggflow/data.h) over
 * bf_dist_world(): NULL when one process (no mpirun, or -np 1). For `sample` and
 * `sample-peaks` (DESIGN §10 "As built"). */
const bf_rank_link *bf_cli_rank_link(void);

/* Prints "braggflow: MESSAGE" on stderr and returns BF_EXIT_FAIL. */
int bf_cli_fail(const bf_error *err);
int bf_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* getopt_long returned '?' (unknown option) or ':' (missing value): one-line
 * usage error naming the option. Subcommands call getopt_long with
 * BF_CLI_OPTSTRING and opterr = 0, so getopt prints nothing itself. */
int bf_cli_bad_option(const char *cmd, int opt, char **argv);
#define BF_CLI_OPTSTRING ":h"

/* Parses an integer option value in [lo, hi]; returns 0, or prints a usage error and
 * returns the exit status. */
int bf_cli_parse_count(const char *cmd, const char *opt, const char *text, long lo, long hi,
                       long *out);
/* Same into an int. */
int bf_cli_parse_int(const char *cmd, const char *opt, const char *text, int lo, int hi, int *out);
/* Same for a finite number with lo < value <= hi. */
int bf_cli_parse_positive(const char *cmd, const char *opt, const char *text, double hi,
                          double *out);

/* --device TEXT (NULL: cpu) of train, evaluate, predict, peaks: "cpu", "cuda" (device 0) or
 * "cuda:N". Returns 0 with *out set; a usage error naming --device for anything else; and
 * for a CUDA device this build or machine lacks, one line ("braggflow: CMD --device cuda:
 * backend 'cuda': no CUDA device (...)") and BF_EXIT_FAIL. */
int bf_cli_device(const char *cmd, const char *text, const bf_backend **out);
/* The --help line of --device. */
#define BF_CLI_DEVICE_HELP \
    "  --device D          cpu (default), cuda (GPU 0) or cuda:N (a build with CUDA)\n"

/* Parses "a b c alpha beta gamma" (spaces or commas) and validates the cell. */
bf_status bf_cli_parse_cell(const char *text, bf_cell *cell, bf_error *err);
/* Parses a finite number for option `opt`. */
bf_status bf_cli_parse_number(const char *opt, const char *text, double *out, bf_error *err);

/* Option codes and getopt_long entries shared by simulate and reflections. */
enum { OPT_CIF = 1000, OPT_INSTPRM, OPT_CELL, OPT_TOF_MIN, OPT_TOF_MAX, OPT_TOF_STEP, OPT_SCALE,
       OPT_OUT, OPT_HELP, OPT_THREADS, OPT_CONFIG, OPT_TRAIN, OPT_VAL, OPT_MODEL, OPT_EPOCHS,
       OPT_BATCH, OPT_LR, OPT_SEED, OPT_PATIENCE, OPT_MIN_DELTA, OPT_CLIP, OPT_HIDDEN, OPT_INIT,
       OPT_DATA, OPT_JSON, OPT_CSV, OPT_WORKFLOW, OPT_RESUME, OPT_B_TABLE, OPT_TTH_MIN,
       OPT_TTH_MAX, OPT_TTH_STEP, OPT_FPRIME, OPT_PATTERN, OPT_PAT_FORMAT, OPT_BLOCK,
       OPT_DEVICE };
#define BF_CLI_SIM_OPTIONS                                                                 \
    {"cif", required_argument, 0, OPT_CIF}, {"instprm", required_argument, 0, OPT_INSTPRM}, \
        {"block", required_argument, 0, OPT_BLOCK}, {"cell", required_argument, 0, OPT_CELL}, \
        {"tof-min", required_argument, 0, OPT_TOF_MIN},                                    \
        {"tof-max", required_argument, 0, OPT_TOF_MAX},                                    \
        {"tof-step", required_argument, 0, OPT_TOF_STEP},                                  \
        {"scale", required_argument, 0, OPT_SCALE},                                        \
        {"b-table", required_argument, 0, OPT_B_TABLE},                                    \
        {"tth-min", required_argument, 0, OPT_TTH_MIN},                                    \
        {"tth-max", required_argument, 0, OPT_TTH_MAX},                                    \
        {"tth-step", required_argument, 0, OPT_TTH_STEP},                                  \
        {"fprime", required_argument, 0, OPT_FPRIME}, {"help", no_argument, 0, OPT_HELP}
#define BF_CLI_SIM_HELP                                                                    \
    "  --cif FILE          crystal structure (CIF: cell, space group, atom sites, Uij)\n"  \
    "  --block NAME        the CIF's data block data_NAME (default: the first with atom\n" \
    "                      sites; a warning names it when the file has several)\n"       \
    "  --instprm FILE      GSAS-II instrument parameters (.instprm): Type PNT (TOF\n"     \
    "                      neutrons), PXC (CW X-rays) or PNC (CW neutrons)\n"             \
    "  --cell \"a b c alpha beta gamma\"\n"                                                  \
    "                      unit cell to simulate (Angstrom, degrees)\n"                   \
    "  --tof-min MS        first TOF bin edge in ms (default 1.36)\n"                      \
    "  --tof-max MS        TOF upper limit in ms (default 18.919)\n"                       \
    "  --tof-step REL      relative bin width dT/T (default 0.0009381)\n"                 \
    "  --tth-min DEG       CW: first 2theta point (default 10)\n"                          \
    "  --tth-max DEG       CW: last 2theta point (default 120)\n"                          \
    "  --tth-step DEG      CW: 2theta step (default 0.01)\n"                               \
    "  --scale S           histogram scale (default 1000, as the seed workflow)\n"        \
    "  --b-table T         neutron scattering lengths: gsas2 (GSAS-II's, default) or\n"   \
    "                      sears (Sears 1992, NIST; has the resonant absorbers' thermal b)\n"\
    "  --fprime \"EL:f':f'' ...\"\n"                                                          \
    "                      X-rays: anomalous f', f'' for these elements instead of the\n"  \
    "                      table's (xraylib at Lam1), e.g. \"Ba:-1.0499:8.4588\"\n"

/* What simulate and reflections share: crystal + instrument + grid + sample. */
typedef struct {
    const char *cif_path, *instprm_path, *cell_text;
    const char *cif_block;            /* --block, or NULL */
    const char *out_path;             /* --out, for commands whose longopts have it */
    bf_grid_spec grid;
    bf_sample sample;
} bf_cli_sim_args;

void bf_cli_sim_args_defaults(bf_cli_sim_args *a);
/* Parses simulate's or reflections' command line (their longopts: the shared
 * options, plus --out where the command takes it) into a, after
 * bf_cli_sim_args_defaults. Returns -1 to go on, or the exit status to return
 * at once (help printed, or a one-line error for a bad option or value). */
int bf_cli_sim_parse(const char *cmd, const char *usage, const struct option *longopts, int argc,
                     char **argv, bf_cli_sim_args *a);
/* Loads the crystal and instrument, validates the cell, builds the simulator. */
bf_status bf_cli_sim_open(const bf_cli_sim_args *a, bf_cell *cell, bf_powder_sim **sim,
                          bf_error *err);

/* What evaluate and predict share (cli/inference.c). */
typedef struct {
    const char *model_path, *data_path, *csv_path;   /* --csv: predict only */
    const char *pattern_path;                         /* --pattern: predict only */
    bf_measured_format format;                        /* --format (auto: extension) */
    long batch, threads;
    int json;                                         /* --json: evaluate only */
    const bf_backend *be;                             /* --device (cpu by default) */
    bf_model *m;
    bf_checkpoint_info info;
    bf_structure_meta meta;                           /* scaling, class names */
    bf_dataset d;
    float *x, *targets, *out;                         /* scaled inputs, targets, outputs */
    int32_t *labels;
} bf_cli_inference;

/* Returns -1 to go on, or the exit status to return at once (help or usage error). */
int bf_cli_inference_parse(const char *cmd, const char *usage, int argc, char **argv,
                           bf_cli_inference *a);
/* Loads the checkpoint and the patterns (checked, scaled; with labels and targets
 * when with_labels) and runs the model: a->out (n, n_out). */
bf_status bf_cli_inference_run(bf_cli_inference *a, int with_labels, bf_error *err);
void bf_cli_inference_free(bf_cli_inference *a);

#endif
