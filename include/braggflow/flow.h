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
    int sim_threads, train_threads;   /* 0 = all cores */
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
 * unless resume. on_line (may be NULL) receives one progress line per task. */
bf_status bf_campaign_run(const bf_campaign_config *cfg, const char *dir, int resume,
                          void (*on_line)(const char *line, void *user), void *user,
                          bf_campaign_result *res, bf_error *err);

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

#ifdef __cplusplus
}
#endif
#endif
