/* braggflow/flow.h — campaigns: the simulate -> train -> active-learning loop of
 * seeds 000 and 001 (DESIGN §6) as one durable, resumable run.
 *
 * A campaign INI is a `sample` INI ([run] seed, [instrument], [sample],
 * [class.NAME] with count = the class's training patterns in phase 0) plus three
 * sections of its own, [campaign], [train] and [al] (README: "Campaign
 * configuration"). Everything is checked before any work starts.
 *
 * Workflows (tasks: S simulate, S' simulate during training, T train, AL acquire):
 *   baseline   S_0 (every training pattern, uniform; val; test) -> T_0
 *   serial     S_0 (train, val, test, study) -> T_0; then per phase k:
 *              AL_k -> S_k -> T_k (warm start, all data so far)
 *   streaming  S_0 (train, val, test) -> T_0 || S'_0 (study); then per phase k:
 *              AL_k -> S_k (stream_fraction of the batch) -> T_k || S'_k (the rest,
 *              used from phase k+1 on); the last phase simulates its whole batch.
 * With [run] sampler = grid (seed 000, no AL) the grid is split into bias-free
 * phases: baseline trains once on all of it, serial runs S_k -> T_k on phase k's
 * cells, parallel runs T_k || S_{k+1}.
 * The campaign directory holds the config, every dataset (data/), checkpoint
 * (models/), timeline.csv, metrics.csv, summary.txt and provenance.json; a
 * finished task leaves tasks/NAME.done, so --resume skips it. */
#ifndef BRAGGFLOW_FLOW_H
#define BRAGGFLOW_FLOW_H

#include "braggflow/al.h"
#include "braggflow/core.h"
#include "braggflow/data.h"
#include "braggflow/nn.h"
#include "braggflow/task.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BF_MAX_PHASES 32

typedef enum { BF_FLOW_BASELINE, BF_FLOW_SERIAL, BF_FLOW_PARALLEL, BF_FLOW_STREAMING } bf_workflow;

bf_status bf_workflow_parse(const char *name, bf_workflow *out, bf_error *err);
const char *bf_workflow_name(bf_workflow w);

typedef struct {
    char path[4096];                  /* the INI */
    bf_sample_config sample;          /* instrument, grid, classes; count = phase-0 training */
    bf_workflow workflow;
    int phases;                       /* phase 0 .. phases-1 (baseline: 1) */
    long val, test;                   /* patterns, split evenly over the classes */
    long study_per_class;
    long new_per_phase;               /* AL batch of each later phase */
    double stream_fraction;           /* streaming: share of a batch simulated before T_k */
    int sim_threads, train_threads;   /* 0 = all cores (per rank under MPI) */
    int sim_ranks;                    /* under mpirun: ranks that simulate (0 = not given) */
    /* [train] */
    int epochs[BF_MAX_PHASES];        /* per phase (derived ∝ 1/sqrt(N_train) when one given) */
    int n_epochs_given;
    int batch, patience, hidden;
    double lr, clip;
    /* [al] */
    bf_al_policy policy;
} bf_campaign_config;

/* Parses and validates (unknown keys and sections, negative counts, unknown
 * policy, missing CIF or instrument file, a class box without a valid point:
 * errors name the file, line, section and key). */
bf_status bf_campaign_config_read(const char *path, bf_campaign_config *out, bf_error *err);
bf_status bf_campaign_config_parse(const char *text, const char *path, bf_campaign_config *out,
                                   bf_error *err);

/* One row of timeline.csv. */
typedef struct {
    char name[16];                    /* "S_0", "S'_1", "T_2", "AL_1", "PG_1" */
    int phase;
    double start_s, end_s;            /* since the campaign started (resumed tasks keep theirs) */
    long samples;                     /* patterns simulated or trained on */
} bf_task_time;

/* One row of metrics.csv: the phase's best model on the test set. */
typedef struct {
    int phase;
    long n_train;
    int epochs;
    bf_metrics test;
} bf_phase_metrics;

typedef struct {
    int n_tasks;
    bf_task_time tasks[4 * BF_MAX_PHASES + 4];
    int n_phases;
    bf_phase_metrics phase[BF_MAX_PHASES];
    double total_s;
    double t_sim_s, t_train_s;        /* mean S and T task times (seed 000 Eq. 1) */
    int resumed_tasks;
    /* a finished serial campaign of the same config next to this one (same parent
     * folder, identical config.ini), for the speed-up; serial_total_s 0 if none */
    char serial_dir[4096];
    double serial_total_s;
} bf_campaign_result;

/* Runs (or, with resume, continues) the campaign in dir, which must not exist yet
 * unless resume. on_line (may be NULL) receives one progress line per task.
 * world NULL or one rank: this process does everything (simulation tasks beside training
 * on threads of their own). Several ranks (every rank calls it; DESIGN §10): cfg->sim_ranks
 * of them simulate, the others train data-parallel, each on its shard of the rows; rank 0
 * runs the workflow and the AL step and writes the records; res is rank 0's; dir must be
 * on a filesystem every rank sees (the first simulation rank writes the simulated sets). */
bf_status bf_campaign_run(const bf_campaign_config *cfg, const char *dir, int resume,
                          const bf_comm *world, void (*on_line)(const char *line, void *user),
                          void *user, bf_campaign_result *res, bf_error *err);

/* seed 000 Eq. 1: n (t_s + t_t) / (t_s + t_t + (n - 1) max(t_s, t_t)). */
double bf_flow_speedup_bound(int n, double t_s, double t_t);

/* Writes the human-readable summary (task table like seed 001 Table III, per-phase
 * test metrics like Table IV, the Eq. 1 bound) to f. */
void bf_campaign_print_summary(FILE *f, const bf_campaign_config *cfg,
                               const bf_campaign_result *res);

/* Writes DIR/report.html (atomically): a self-contained page, inline SVG and CSS, no
 * network: the task Gantt chart from timeline.csv (seed 001 Figs. 2-3), test class
 * loss and MSE per phase from metrics.csv (Figs. 9-10), where each AL batch sampled
 * (data/al-K.csv) against the study set (data/study.h5) in parameter space, and
 * example patterns from data/test.h5. Missing optional parts are left out with a note. */
bf_status bf_campaign_report(const char *dir, bf_error *err);


/* ---- Hyper-parameter sweeps (flow/sweep.c, sweep_config.c; README "braggflow sweep") ----
 * A sweep INI: [sweep] (model, train, val, out, mode, count, seed, metric, threads)
 * and one [grid] or [random] section whose keys are train options (lr, batch, hidden,
 * epochs, seed, patience, min_delta, clip), each a list "a, b, c" (grid and random)
 * or, in [random] only, a range "lo..hi" / "log lo..hi". Grid trials run in INI
 * order with the first key slowest; random trial i draws its values from RNG stream
 * (seed, i). Relative paths resolve against the INI's folder. */
#define BF_SWEEP_MAX_PARAMS 8
#define BF_SWEEP_MAX_VALUES 64
#define BF_SWEEP_MAX_TRIALS 100000

typedef enum { BF_SWEEP_GRID, BF_SWEEP_RANDOM } bf_sweep_mode;

typedef struct {
    char key[16];
    int line;                           /* in the INI, for messages */
    int n;                              /* list values; 0 = a range (random only) */
    double value[BF_SWEEP_MAX_VALUES];
    double lo, hi;                      /* range */
    int log;                            /* log-uniform range */
} bf_sweep_param;

typedef struct {
    char path[4096];                    /* the INI */
    char model[32];                     /* structure_net (default) or braggnn */
    char train[4096], val[4096], out[4096];
    bf_sweep_mode mode;
    long count;                         /* random: trials */
    uint64_t seed;                      /* random: draws */
    int threads;                        /* per trial (0 = all cores) */
    int n_params;
    bf_sweep_param param[BF_SWEEP_MAX_PARAMS];
    long n_trials;
    char text[16384];                   /* the INI text: a resumed sweep must match it */
} bf_sweep_config;

/* One trial's effective train options (defaults of the model's task, then the sweep's). */
typedef struct {
    long id;
    int epochs, batch, patience, hidden;      /* hidden 0: the model's own width */
    double lr, min_delta, clip;
    uint64_t seed;
} bf_sweep_trial;

/* Unknown sections or keys, repeated keys, empty lists or ranges, malformed or
 * out-of-range numbers: "FILE:LINE: [section] key: why". */
bf_status bf_sweep_config_read(const char *path, bf_sweep_config *out, bf_error *err);
bf_status bf_sweep_config_parse(const char *text, const char *path, bf_sweep_config *out,
                                bf_error *err);
/* Trial i (0 <= i < cfg->n_trials) of the expansion. */
void bf_sweep_trial_at(const bf_sweep_config *cfg, long i, bf_sweep_trial *t);
/* The swept value of parameter p in trial t. */
double bf_sweep_trial_value(const bf_sweep_trial *t, const char *key);
/* {"model":..,"epochs":..,...} of the trial's full effective train config. */
void bf_sweep_trial_json(const bf_sweep_config *cfg, const bf_sweep_trial *t, char *out,
                         size_t n);

typedef struct {
    int epoch;
    double train_loss, val_score, seconds;
    int improved;
} bf_sweep_epoch;

typedef struct {
    long id;
    int ok;                             /* 0: error holds why */
    double metric;                      /* best validation score (lower is better) */
    int best_epoch, epochs_run, rank;
    double start_s, end_s;              /* Unix time */
    char sha256[65], host[64], error[512];
    int n_epochs;
    bf_sweep_epoch *epochs;             /* n_epochs, heap */
} bf_sweep_result;

/* The registry: DIR/registry.sqlite, owned by one process (rank 0). open creates DIR,
 * DIR/trials and every trial as 'pending' (one transaction) when DIR does not exist; an
 * existing registry must hold the same INI text, and its 'running' and 'failed'
 * trials become 'pending' again (a killed sweep resumes). */
typedef struct bf_sweep_registry bf_sweep_registry;
bf_status bf_sweep_registry_open(const bf_sweep_config *cfg, bf_sweep_registry **out,
                                 long *n_done, bf_error *err);
/* Marks the lowest pending trial 'running' (starts + 1, host, rank, start time);
 * *id = -1 when none is left. */
bf_status bf_sweep_registry_claim(bf_sweep_registry *r, const char *host, int rank, long *id,
                                  bf_error *err);
/* Records a result ('done' with its metrics per epoch, or 'failed'). */
bf_status bf_sweep_registry_finish(bf_sweep_registry *r, const bf_sweep_result *res,
                                   bf_error *err);
void bf_sweep_registry_close(bf_sweep_registry *r);

/* Trains trial id of cfg on loaded data (exactly one of train_set/train_patches is
 * used, by the model's task): DIR/trials/NNNN/{model.safetensors, train.log}. Fills
 * res (res->epochs is the caller's to free); a training failure is res->ok = 0, not
 * an error. */
typedef struct {
    bf_dataset train_set, val_set;
    bf_patches train_patches, val_patches;
} bf_sweep_data;
bf_status bf_sweep_data_load(const bf_sweep_config *cfg, bf_sweep_data *d, bf_error *err);
void bf_sweep_data_free(bf_sweep_data *d);
void bf_sweep_run_trial(const bf_sweep_config *cfg, const bf_sweep_data *d, long id,
                        bf_sweep_result *res);

/* Runs (or resumes) the whole sweep. world NULL or 1 rank: this process runs every
 * trial. Several ranks (every rank calls it): rank 0 owns the registry and hands out
 * trials, ranks 1.. train them (one process each) and send back their results.
 * on_line (rank 0, may be NULL) gets one line per finished trial. Writes DIR/report.html
 * at the end. A failed trial makes the return an error after the others finished. */
bf_status bf_sweep_run(const bf_sweep_config *cfg, const bf_comm *world,
                       void (*on_line)(const char *line, void *user), void *user,
                       bf_error *err);

/* Prints the trials (best first, at most top; 0 = all) to f and writes DIR/report.html:
 * a table of trials sorted by the metric and a metric-vs-parameter plot for each
 * swept parameter. */
bf_status bf_sweep_report(const char *dir, FILE *f, int top, bf_error *err);

#ifdef __cplusplus
}
#endif
#endif
