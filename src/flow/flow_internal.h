/* flow/flow_internal.h — what the flow layer's files share: report.c's page pieces, so
 * the sweep report (sweep.c) looks like the campaign's and draws with the same axes; and
 * the campaign's simulated sets and rank roles (campaign.c, campaign_ranks.c). */
#ifndef BF_FLOW_INTERNAL_H
#define BF_FLOW_INTERNAL_H

#include "braggflow/core.h"
#include "braggflow/flow.h"

/* s with &, <, > and " escaped. */
void bf_report_html_esc(bf_buf *b, const char *s);
/* The campaign report's <style> text. */
const char *bf_report_css(void);
/* One inline-SVG scatter chart: y[i] against x[i] (n points; log10 x axis when log_x
 * and every x > 0); point `best` (or -1) is drawn larger, in red. */
void bf_report_scatter(bf_buf *b, const char *id, const char *title, const char *x_label,
                       const char *y_label, const double *x, const double *y, int n, int log_x,
                       int best);


/* ---- a campaign's simulated sets ------------------------------------------------------
 * Every simulation task is one or more sets: n cells, each with its class index into the
 * config's classes, simulated into data/FILE. The set records `seed` as its provenance
 * and, when sampler >= 0, that sampler's name (the uniform sets); cells fix the patterns,
 * so any split of the rows over threads or ranks gives the same file. */
typedef struct {
    char file[64];                    /* under DIR/data */
    uint64_t seed;
    int sampler;                      /* bf_sampler_kind to record, -1: none */
    long n;
    bf_cell *cells;                   /* heap, [n] */
    int32_t *class_index;             /* heap, [n] */
} bf_sim_set;

void bf_sim_set_free(bf_sim_set *s);
/* Rows [first, first + count) of s (count >= 1) as a dataset on `threads` threads. */
bf_status bf_sim_set_simulate(const bf_sample_config *cfg, const bf_sim_set *s, long first,
                              long count, int threads, bf_dataset *d, bf_error *err);

/* ---- a campaign over MPI ranks (campaign_ranks.c; DESIGN §10 "As built") --------------
 * World ranks 0 .. n_train-1 train (rank 0 also runs the workflow, the AL step, and writes
 * the records and checkpoints); ranks n_train .. size-1 (sim_ranks of them) simulate, the
 * first of them (sim_lead) taking rank 0's jobs, sharing them out and writing the sets.
 * Waiting ranks poll (bf_dist_recv), so they leave their cores to the working ones. */
typedef struct {
    int rank, size;                   /* in the world */
    int n_train, n_sim, sim_lead;
    bf_comm *train;                   /* the training ranks' group; NULL when only one */
    int pinned;                       /* every rank bound to cores of its own (hwloc) */
    char note[256];                   /* the roles and binding, one line for rank 0 */
} bf_campaign_ranks;

/* Collective over world (size >= 2): checks cfg->sim_ranks (1 .. size-1), makes the
 * training group and binds each rank to its role's threads' cores on its node. */
bf_status bf_campaign_ranks_init(const bf_campaign_config *cfg, const bf_comm *world,
                                 bf_campaign_ranks *r, bf_error *err);
void bf_campaign_ranks_free(bf_campaign_ranks *r);

/* rank 0: hands set s to the simulation ranks (returns once sent) ... */
bf_status bf_campaign_sim_post(const bf_campaign_ranks *r, const bf_sim_set *s, bf_error *err);
/* ... and waits for it to be written: the lead's wall-clock start and end (s, Unix time);
 * a simulation rank's failure comes back as its error ("rank R: ..."). */
bf_status bf_campaign_sim_wait(const bf_campaign_ranks *r, double *start, double *end,
                               bf_error *err);
/* The simulation ranks' loop: jobs from rank 0 until it says stop (BF_OK), each job's rows
 * split over the simulation ranks, gathered on the lead and written to DIR/data. Test
 * hook: BF_CAMPAIGN_KILL_SIM_JOB=N makes the lead SIGKILL itself on its N-th job. */
bf_status bf_campaign_sim_serve(const bf_campaign_config *cfg, const char *dir,
                                const bf_campaign_ranks *r, bf_error *err);

/* What rank 0 tells the other training ranks: train phase `phase` for `epochs` on the
 * given data/ files (rows[f] patterns each, counted once by rank 0) joined in order, or
 * stop. */
#define BF_CAMPAIGN_MAX_FILES (2 * BF_MAX_PHASES + 2)
typedef struct {
    int32_t stop, phase, epochs, n_files;
    char files[BF_CAMPAIGN_MAX_FILES][64];
    int64_t rows[BF_CAMPAIGN_MAX_FILES];
} bf_train_order;
bf_status bf_campaign_train_post(const bf_campaign_ranks *r, const bf_train_order *o,
                                 bf_error *err);
bf_status bf_campaign_train_next(const bf_campaign_ranks *r, bf_train_order *o, bf_error *err);
/* rank 0 at the end (either way): every other rank leaves its loop. */
void bf_campaign_ranks_stop(const bf_campaign_ranks *r, int followers_listening);

#endif
