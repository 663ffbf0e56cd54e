/* bench/al_efficiency.c — how much data active learning saves (seed 001 Figs. 7-8):
 * for each seed, the serial AL workflow with N new patterns per phase next to
 * uniform sampling with N, 2N, 4N and 6N training patterns; test class loss, MSE
 * and accuracy as mean ± sample std over the seeds. Prints one JSON object on
 * stdout and a table on stderr; run from the repository root.
 *
 *   ./build/bench/al_efficiency [--config examples/campaigns/seed001-e1-small.ini]
 *                               [--seeds 3] [--phases 4] [--policy seed-mix]
 *                               [--workdir DIR] [--keep]
 * N is the config's phase-0 training set (the sum of its class counts). Every
 * campaign runs in its own folder under --workdir (default a new /tmp folder),
 * removed when done unless --keep. Epochs: the config's phase-0 epochs e0,
 * scaled as the campaign does (DESIGN §6, epochs ∝ 1/sqrt(N_train)), so a
 * training set of n patterns gets round(e0 sqrt(N/n)) in both arms. */
#define _XOPEN_SOURCE 700 /* nftw */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "braggflow/flow.h"

#define MAX_SEEDS 100
#define N_UNIFORM 4
/* seed 001 Figs. 7-8: uniform sets of N, 2N, 4N and 6N patterns */
static const int uniform_mult[N_UNIFORM] = {1, 2, 4, 6};

typedef struct {
    double class_loss, mse, accuracy;
} point;

typedef struct {
    double mean, std;                 /* std: sample (n - 1); NAN when n < 2 */
} mstat;

static mstat stat_of(const point *p, int n, size_t stride, size_t field)
{
    double sum = 0, ss = 0;
    for (int i = 0; i < n; i++)
        sum += *(const double *)((const char *)&p[i * stride] + field);
    double mean = sum / n;
    for (int i = 0; i < n; i++) {
        double d = *(const double *)((const char *)&p[i * stride] + field) - mean;
        ss += d * d;
    }
    return (mstat){mean, n > 1 ? sqrt(ss / (n - 1)) : NAN};
}

/* JSON has no NaN or infinity: those print as null. */
static void json_num(const char *key, double v)
{
    printf("\"%s\":", key);
    if (isfinite(v))
        printf("%.6g", v);
    else
        printf("null");
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

/* The three metrics' mean and std over the seeds, as JSON members. */
static void json_stats(const point *p, int n, size_t stride)
{
    const struct {
        const char *name;
        size_t off;
    } f[] = {{"class_loss", offsetof(point, class_loss)},
             {"mse", offsetof(point, mse)},
             {"accuracy", offsetof(point, accuracy)}};
    for (int i = 0; i < 3; i++) {
        mstat s = stat_of(p, n, stride, f[i].off);
        char key[64];
        snprintf(key, sizeof key, "%s_mean", f[i].name);
        printf(",");
        json_num(key, s.mean);
        snprintf(key, sizeof key, "%s_std", f[i].name);
        printf(",");
        json_num(key, s.std);
    }
}

static void table_row(const char *arm, long n_train, int epochs, const point *p, int n,
                      size_t stride)
{
    mstat cl = stat_of(p, n, stride, offsetof(point, class_loss));
    mstat mse = stat_of(p, n, stride, offsetof(point, mse));
    mstat acc = stat_of(p, n, stride, offsetof(point, accuracy));
    fprintf(stderr, "  %-10s %8ld %6d  %8.4f ± %-8.4f %10.3e ± %-10.3e %7.2f%% ± %.2f\n", arm,
            n_train, epochs, cl.mean, cl.std, mse.mean, mse.std, 100 * acc.mean,
            100 * acc.std);
}

static void on_line(const char *line, void *user)
{
    fprintf(stderr, "  [%s] %s\n", (const char *)user, line);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "al_efficiency: cannot remove %s: %s\n", path, strerror(errno));
    return 0; /* keep going: remove what can be removed */
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs one campaign of cfg (already set up) in WORK/seed-SSS-RUN (removed after
 * unless keep); res gets the test metrics of every phase. The config text gets a
 * comment naming the run and its overrides, so that each folder's config.ini says
 * what it ran (bf_campaign_run writes the text as config.ini). */
static int run_campaign(bf_campaign_config *cfg, const char *orig_text, const char *work,
                        const char *run, const char *epochs_text, int keep,
                        bf_campaign_result *res)
{
    unsigned long long seed = (unsigned long long)cfg->sample.seed;
    char dir[4400], tag[64];
    snprintf(dir, sizeof dir, "%s/seed-%03llu-%s", work, seed, run);
    snprintf(tag, sizeof tag, "seed %llu %s", seed, run);
    size_t len = strlen(orig_text);
    int n = snprintf(cfg->sample.config_text, sizeof cfg->sample.config_text,
                     "%s%s; bench seed %llu, run %s (al_efficiency overrides: [run] seed = %llu, "
                     "workflow = %s, phases = %d, new_per_phase = %ld, epochs = %s, policy = "
                     "%s)\n",
                     orig_text, len && orig_text[len - 1] != '\n' ? "\n" : "", seed, run, seed,
                     bf_workflow_name(cfg->workflow), cfg->phases, cfg->new_per_phase,
                     epochs_text, bf_al_kind_name(cfg->policy.kind));
    if (n < 0 || (size_t)n >= sizeof cfg->sample.config_text) {
        fprintf(stderr, "al_efficiency: %s: the config text is too long to annotate (%zu "
                        "bytes)\n", cfg->path, len);
        return -1;
    }
    fprintf(stderr, "al_efficiency: %s (%s, %d phase%s) -> %s\n", tag,
            bf_workflow_name(cfg->workflow), cfg->phases, cfg->phases == 1 ? "" : "s", dir);
    bf_error err = {0};
    double t0 = bf_now_seconds();
    if (bf_campaign_run(cfg, dir, 0, NULL, on_line, tag, res, &err) != BF_OK) {
        fprintf(stderr, "al_efficiency: %s: %s\n", tag, err.msg);
        return -1;
    }
    fprintf(stderr, "al_efficiency: %s done in %.1f s\n", tag, bf_now_seconds() - t0);
    if (!keep)
        rm_tree(dir);
    return 0;
}

static point point_of(const bf_phase_metrics *pm)
{
    return (point){pm->test.class_loss, pm->test.mse, pm->test.accuracy};
}

/* Smallest uniform size whose mean is at least as good as AL's final phase
 * (better = larger when higher_better), as a JSON member; null when none is. */
static void json_match(const char *name, const point *al_last, int seeds, size_t al_stride,
                       const point *uni, size_t field, int higher_better, long N)
{
    mstat a = stat_of(al_last, seeds, al_stride, field);
    long n_match = -1;
    for (int u = 0; u < N_UNIFORM && n_match < 0; u++) {
        mstat s = stat_of(uni + u, seeds, N_UNIFORM, field);
        if (higher_better ? s.mean >= a.mean : s.mean <= a.mean)
            n_match = uniform_mult[u] * N;
    }
    printf("\"%s\":{", name);
    json_num("al_mean", a.mean);
    if (n_match > 0)
        printf(",\"uniform_n_train\":%ld}", n_match);
    else
        printf(",\"uniform_n_train\":null}");
}

int main(int argc, char **argv)
{
    const char *config = "examples/campaigns/seed001-e1-small.ini";
    const char *policy_name = NULL;
    char work[4096] = "";
    int seeds = 3, phases = 4, keep = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
            seeds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--phases") && i + 1 < argc)
            phases = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--policy") && i + 1 < argc)
            policy_name = argv[++i];
        else if (!strcmp(argv[i], "--workdir") && i + 1 < argc)
            snprintf(work, sizeof work, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else {
            fprintf(stderr, "usage: %s [--config INI] [--seeds S] [--phases P] [--policy NAME] "
                            "[--workdir DIR] [--keep]\n", argv[0]);
            return 2;
        }
    }
    if (seeds < 1 || seeds > MAX_SEEDS || phases < 1 || phases > BF_MAX_PHASES) {
        fprintf(stderr, "al_efficiency: --seeds 1..%d and --phases 1..%d\n", MAX_SEEDS,
                BF_MAX_PHASES);
        return 2;
    }

    /* the config as read, and a working copy each run overrides */
    bf_campaign_config *base = malloc(sizeof *base), *cfg = malloc(sizeof *cfg);
    bf_campaign_result *res = malloc(sizeof *res);
    point *al = calloc((size_t)seeds * phases, sizeof *al);
    point *uni = calloc((size_t)seeds * N_UNIFORM, sizeof *uni);
    long *al_n = calloc((size_t)phases, sizeof *al_n);
    int *al_epochs = calloc((size_t)phases, sizeof *al_epochs);
    int rc = 2, made_work = 0;
    bf_error err = {0};
    if (!base || !cfg || !res || !al || !uni || !al_n || !al_epochs) {
        fprintf(stderr, "al_efficiency: out of memory\n");
        goto done;
    }
    if (bf_campaign_config_read(config, base, &err) != BF_OK) {
        fprintf(stderr, "al_efficiency: %s\n", err.msg);
        goto done;
    }
    if (policy_name && bf_al_kind_parse(policy_name, &base->policy.kind, &err) != BF_OK) {
        fprintf(stderr, "al_efficiency: --policy: %s\n", err.msg);
        goto done;
    }
    if (base->sample.sampler != BF_SAMPLER_RANDOM) {
        fprintf(stderr, "al_efficiency: %s: needs [run] sampler = random (AL draws random "
                        "cells)\n", config);
        goto done;
    }
    if (phases > 1 && base->study_per_class <= 0) {
        fprintf(stderr, "al_efficiency: %s: [campaign] study_per_class is needed for the AL "
                        "phases\n", config);
        goto done;
    }
    long N = 0;
    for (int k = 0; k < base->sample.n_classes; k++)
        N += base->sample.classes[k].count;
    if (N <= 0) {
        fprintf(stderr, "al_efficiency: %s: no phase-0 training patterns (class counts)\n",
                config);
        goto done;
    }
    const int e0 = base->epochs[0];

    if (!work[0]) {
        snprintf(work, sizeof work, "/tmp/bf-al-efficiency-XXXXXX");
        if (!mkdtemp(work)) {
            fprintf(stderr, "al_efficiency: mkdtemp: %s\n", strerror(errno));
            goto done;
        }
        made_work = 1;
    } else if (mkdir(work, 0777) == 0) {
        made_work = 1;
    } else if (errno != EEXIST) {
        fprintf(stderr, "al_efficiency: %s: %s\n", work, strerror(errno));
        goto done;
    }

    /* Both arms: a training set of n patterns trains round(e0 sqrt(N/n)) epochs, as the
     * campaign scales them; AL's are given per phase so a config's own list (sized for
     * its phases) cannot leak in. */
    int ep_al[BF_MAX_PHASES], ep_uni[N_UNIFORM];
    char ep_al_text[BF_MAX_PHASES * 8] = "";
    for (int k = 0; k < phases; k++) {
        long e = lround(e0 * sqrt(1.0 / (k + 1)));
        ep_al[k] = e < 1 ? 1 : (int)e;
        size_t used = strlen(ep_al_text);
        snprintf(ep_al_text + used, sizeof ep_al_text - used, "%s%d", k ? " " : "", ep_al[k]);
    }
    for (int u = 0; u < N_UNIFORM; u++) {
        /* the expression of epochs_for (src/flow/campaign.c) with n0 = N, n = mN */
        long e = lround(e0 * sqrt((double)N / (double)(uniform_mult[u] * N)));
        ep_uni[u] = e < 1 ? 1 : (int)e;
    }
    int uni_epochs_used[N_UNIFORM] = {0};
    double t_start = bf_now_seconds();

    for (int s = 0; s < seeds; s++) {
        char run[32], ep_text[16];
        /* AL arm: serial workflow, N new patterns per phase (seed 001 Figs. 7-8) */
        *cfg = *base;
        cfg->sample.seed = (uint64_t)(s + 1);
        cfg->workflow = BF_FLOW_SERIAL;
        cfg->phases = phases;
        cfg->new_per_phase = N;
        cfg->n_epochs_given = phases;
        memcpy(cfg->epochs, ep_al, sizeof(int) * (size_t)phases);
        if (run_campaign(cfg, base->sample.config_text, work, "al", ep_al_text, keep, res) != 0)
            goto failed;
        if (res->n_phases != phases) {
            fprintf(stderr, "al_efficiency: seed %d al: %d phases finished, %d expected\n",
                    s + 1, res->n_phases, phases);
            goto failed;
        }
        for (int k = 0; k < phases; k++) {
            const bf_phase_metrics *pm = &res->phase[k];
            al[s * phases + k] = point_of(pm);
            if (s == 0)
                al_n[k] = pm->n_train, al_epochs[k] = pm->epochs;
            else if (pm->n_train != al_n[k] || pm->epochs != al_epochs[k])
                fprintf(stderr, "al_efficiency: warning: seed %d al phase %d: n_train %ld, "
                                "epochs %d (seed 1: %ld, %d)\n", s + 1, k, pm->n_train,
                        pm->epochs, al_n[k], al_epochs[k]);
            if (pm->epochs != ep_al[k])
                fprintf(stderr, "al_efficiency: warning: seed %d al phase %d trained %d "
                                "epochs, %d intended\n", s + 1, k, pm->epochs, ep_al[k]);
        }

        /* uniform arm: baseline simulates N + (m-1) N patterns up front and trains once */
        for (int u = 0; u < N_UNIFORM; u++) {
            int m = uniform_mult[u];
            *cfg = *base;
            cfg->sample.seed = (uint64_t)(s + 1);
            cfg->workflow = BF_FLOW_BASELINE;
            cfg->phases = m;
            cfg->new_per_phase = N;
            cfg->n_epochs_given = 1; /* epochs_for scales epochs[0] by sqrt(N / mN) */
            cfg->epochs[0] = e0;
            snprintf(run, sizeof run, "uniform-%dN", m);
            snprintf(ep_text, sizeof ep_text, "%d", ep_uni[u]);
            if (run_campaign(cfg, base->sample.config_text, work, run, ep_text, keep, res) != 0)
                goto failed;
            const bf_phase_metrics *pm = &res->phase[0];
            if (res->n_phases != 1 || pm->n_train != m * N) {
                fprintf(stderr, "al_efficiency: seed %d %s: trained on %ld patterns, %ld "
                                "expected\n", s + 1, run, pm->n_train, m * N);
                goto failed;
            }
            uni[s * N_UNIFORM + u] = point_of(pm);
            uni_epochs_used[u] = pm->epochs;
            if (pm->epochs != ep_uni[u])
                fprintf(stderr, "al_efficiency: warning: seed %d %s trained %d epochs, %d "
                                "intended\n", s + 1, run, pm->epochs, ep_uni[u]);
        }
    }
    double elapsed = bf_now_seconds() - t_start;

    /* human-readable: seed 001 Figs. 7-8 as a table */
    fprintf(stderr, "\nal_efficiency: %s, N = %ld, %d seed%s, policy %s, test set %ld "
                    "(mean ± sample std over seeds)\n", config, N, seeds, seeds == 1 ? "" : "s",
            bf_al_kind_name(base->policy.kind), base->test);
    fprintf(stderr, "  %-10s %8s %6s  %-19s %-23s %s\n", "arm", "n_train", "epochs",
            "class loss", "mse", "accuracy");
    for (int k = 0; k < phases; k++) {
        char arm[32];
        snprintf(arm, sizeof arm, "AL %d", k);
        table_row(arm, al_n[k], al_epochs[k], al + k, seeds, (size_t)phases);
    }
    for (int u = 0; u < N_UNIFORM; u++) {
        char arm[32];
        snprintf(arm, sizeof arm, "uniform %dN", uniform_mult[u]);
        table_row(arm, uniform_mult[u] * N, uni_epochs_used[u], uni + u, seeds, N_UNIFORM);
    }

    printf("{\"bench\":\"al_efficiency\",\"config\":");
    json_str(config);
    printf(",\"N\":%ld,\"seeds\":%d,\"phases\":%d,\"policy\":\"%s\",\"epochs_phase0\":%d,"
           "\"val\":%ld,\"test\":%ld,\"sim_threads\":%d,\"train_threads\":%d,\"al\":[",
           N, seeds, phases, bf_al_kind_name(base->policy.kind), e0, base->val, base->test,
           base->sim_threads, base->train_threads);
    for (int k = 0; k < phases; k++) {
        printf("%s{\"phase\":%d,\"n_train\":%ld,\"epochs\":%d", k ? "," : "", k, al_n[k],
               al_epochs[k]);
        json_stats(al + k, seeds, (size_t)phases);
        printf("}");
    }
    printf("],\"uniform\":[");
    for (int u = 0; u < N_UNIFORM; u++) {
        printf("%s{\"n_train\":%ld,\"epochs\":%d", u ? "," : "", uniform_mult[u] * N,
               uni_epochs_used[u]);
        json_stats(uni + u, seeds, N_UNIFORM);
        printf("}");
    }
    /* "how many uniform samples match AL": AL's final phase against the uniform sizes */
    const point *al_last = al + (phases - 1);
    printf("],\"matches\":{\"al_phase\":%d,\"al_n_train\":%ld,", phases - 1, al_n[phases - 1]);
    json_match("accuracy", al_last, seeds, (size_t)phases, uni, offsetof(point, accuracy), 1, N);
    printf(",");
    json_match("mse", al_last, seeds, (size_t)phases, uni, offsetof(point, mse), 0, N);
    printf(",");
    json_match("class_loss", al_last, seeds, (size_t)phases, uni, offsetof(point, class_loss), 0,
               N);
    printf("},\"elapsed_s\":%.1f,\"workdir\":", elapsed);
    if (keep)
        json_str(work);
    else
        printf("null");
    printf("}\n");
    rc = 0;
    if (!keep && made_work)
        rmdir(work); /* the runs' folders are gone already */
    goto done;

failed:
    fprintf(stderr, "al_efficiency: campaign folders left in %s\n", work);
done:
    free(base);
    free(cfg);
    free(res);
    free(al);
    free(uni);
    free(al_n);
    free(al_epochs);
    return rc;
}
