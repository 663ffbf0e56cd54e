/* bench/workflow_speedup.c — the workflows side by side on this machine and
 * config: serial vs streaming (seed 001, AL) on a random-sampler config and
 * serial vs parallel (seed 000) on a grid config; for each, the measured
 * speed-up over serial next to seed 000's Eq. 1 bound from the measured mean
 * task times. Prints one JSON object; run from the repository root.
 *
 *   ./build/bench/workflow_speedup [--config examples/campaigns/seed001-e1-small.ini]
 *                                  [--grid-config examples/campaigns/seed000-e1-small.ini]
 *                                  [--workdir DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "braggflow/flow.h"

typedef struct {
    const char *workflow;
    double total_s, t_sim_s, t_train_s, final_accuracy, final_mse;
    int phases;
} run_stats;

static int run_one(const char *config, bf_workflow w, const char *dir, run_stats *out)
{
    static bf_campaign_config cfg;
    static bf_campaign_result res;
    bf_error err = {0};
    if (bf_campaign_config_read(config, &cfg, &err) != BF_OK) {
        fprintf(stderr, "workflow_speedup: %s\n", err.msg);
        return -1;
    }
    cfg.workflow = w;
    fprintf(stderr, "workflow_speedup: %s, %s workflow -> %s\n", config, bf_workflow_name(w),
            dir);
    if (bf_campaign_run(&cfg, dir, 0, NULL, NULL, NULL, &res, &err) != BF_OK) {
        fprintf(stderr, "workflow_speedup: %s\n", err.msg);
        return -1;
    }
    const bf_metrics *m = &res.phase[res.n_phases - 1].test;
    *out = (run_stats){bf_workflow_name(w), res.total_s, res.t_sim_s, res.t_train_s,
                       m->accuracy, m->mse, res.n_phases};
    return 0;
}

static void print_run(const run_stats *r, const run_stats *serial)
{
    printf("{\"workflow\":\"%s\",\"phases\":%d,\"total_s\":%.3f,\"mean_sim_task_s\":%.3f,"
           "\"mean_train_task_s\":%.3f,\"final_test_accuracy\":%.4f,\"final_test_mse\":%.4g,"
           "\"speedup_over_serial\":%.4f,\"eq1_bound\":%.4f}",
           r->workflow, r->phases, r->total_s, r->t_sim_s, r->t_train_s, r->final_accuracy,
           r->final_mse, serial->total_s / r->total_s,
           bf_flow_speedup_bound(r->phases, serial->t_sim_s, serial->t_train_s));
}

int main(int argc, char **argv)
{
    const char *config = "examples/campaigns/seed001-e1-small.ini";
    const char *grid = "examples/campaigns/seed000-e1-small.ini";
    char work[4096] = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(argv[i], "--grid-config") && i + 1 < argc)
            grid = argv[++i];
        else if (!strcmp(argv[i], "--workdir") && i + 1 < argc)
            snprintf(work, sizeof work, "%s", argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--config INI] [--grid-config INI] [--workdir DIR]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!work[0]) {
        snprintf(work, sizeof work, "/tmp/bf-workflow-speedup-XXXXXX");
        if (!mkdtemp(work)) {
            perror("workflow_speedup: mkdtemp");
            return 2;
        }
    }
    /* the same config run serially first: the speed-up's reference */
    const struct {
        const char *config;
        bf_workflow w;
        const char *name;
    } plan[] = {{config, BF_FLOW_SERIAL, "ser"},
                {config, BF_FLOW_STREAMING, "stream"},
                {grid, BF_FLOW_SERIAL, "grid-ser"},
                {grid, BF_FLOW_PARALLEL, "grid-par"}};
    run_stats r[4];
    for (int i = 0; i < 4; i++) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/%s", work, plan[i].name);
        if (run_one(plan[i].config, plan[i].w, dir, &r[i]) != 0)
            return 2;
    }
    printf("{\"bench\":\"workflow_speedup\",\"workdir\":\"%s\",\"seed001\":{\"config\":\"%s\","
           "\"runs\":[",
           work, config);
    print_run(&r[0], &r[0]);
    printf(",");
    print_run(&r[1], &r[0]);
    printf("]},\"seed000\":{\"config\":\"%s\",\"runs\":[", grid);
    print_run(&r[2], &r[2]);
    printf(",");
    print_run(&r[3], &r[2]);
    printf("]}}\n");
    return 0;
}
