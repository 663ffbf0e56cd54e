/* tests/flow/test_flow.c — campaign configuration (checked before any work,
 * errors naming the key) and seed 000's Eq. 1 bound. The workflows themselves
 * run end to end in tests/cli/test_campaign.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/flow.h"
#include "test.h"

/* A campaign INI on the example CIFs, with `extra` appended ([campaign] etc.). */
static char *config_text(const char *extra)
{
    const char *src = bf_test_source_dir();
    char *t = malloc(8192);
    snprintf(t, 8192,
             "[run]\nseed = 3\n[instrument]\ninstprm = %s/examples/instrument/"
             "nomad-like-bank4.instprm\n[class.cubic]\ncif = %s/examples/cif/NaCl.cif\ncount = 10\n"
             "[class.tetragonal]\ncif = %s/examples/cif/BaTiO3-P4mm.cif\ncount = 10\n%s",
             src, src, src, extra);
    return t;
}

static bf_status parse(const char *extra, bf_campaign_config *cfg, bf_error *err)
{
    char *text = config_text(extra);
    bf_status st = bf_campaign_config_parse(text, "c.ini", cfg, err);
    free(text);
    return st;
}

static const char *good = "[campaign]\nworkflow = streaming\nphases = 3\nval = 9\ntest = 9\n"
                          "study_per_class = 5\nnew_per_phase = 12\n[train]\nepochs = 4 3 2\n"
                          "[al]\npolicy = gaussian-mixture\ntau = 2\nstd.tetragonal.c = 0.01\n"
                          "prior.cubic = 2\n";

BF_TEST(a_complete_campaign_config_is_read_with_its_sample_part)
{
    static bf_campaign_config cfg;
    bf_error err = {0};
    CHECK_MSG(parse(good, &cfg, &err) == BF_OK, "%s", err.msg);
    CHECK(cfg.workflow == BF_FLOW_STREAMING && cfg.phases == 3);
    CHECK(cfg.val == 9 && cfg.study_per_class == 5 && cfg.new_per_phase == 12);
    CHECK(cfg.n_epochs_given == 3 && cfg.epochs[2] == 2);
    CHECK(cfg.policy.kind == BF_AL_GAUSSIAN_MIXTURE);
    CHECK_NEAR(cfg.policy.tau, 2, 0);
    CHECK_NEAR(cfg.policy.std[1][BF_P_C], 0.01, 0);
    CHECK_NEAR(cfg.policy.prior[0], 2, 0);
    CHECK(cfg.sample.n_classes == 2 && cfg.sample.classes[0].count == 10);
    CHECK(cfg.sample.seed == 3);
    CHECK_NEAR(cfg.stream_fraction, 0.6, 0); /* seed 001 Table II default */
}

/* Each bad config fails, and its message holds `want`. */
static int rejects(const char *extra, const char *want)
{
    static bf_campaign_config cfg;
    bf_error err = {0};
    if (parse(extra, &cfg, &err) == BF_OK) {
        fprintf(stderr, "  accepted: %s\n", extra);
        return 0;
    }
    if (!strstr(err.msg, want)) {
        fprintf(stderr, "  message '%s' lacks '%s'\n", err.msg, want);
        return 0;
    }
    return 1;
}

BF_TEST(bad_campaign_configs_are_rejected_naming_the_key)
{
    const char *base = "[campaign]\nval = 9\ntest = 9\nstudy_per_class = 5\nnew_per_phase = 12\n";
    char t[1024];
    snprintf(t, sizeof t, "%s[al]\npolicy = greedy\n", base);
    CHECK(rejects(t, "[al] policy"));
    CHECK(rejects("[campaign]\nval = -5\n", "[campaign] val: -5 must be in"));
    snprintf(t, sizeof t, "%s[campaign]\nphases = 0\n", base);
    CHECK(rejects(t, "phases"));
    snprintf(t, sizeof t, "%s[train]\nepochs = 3 2\n", base);
    CHECK(rejects(t, "[train] epochs: 2 values for 4 phases"));
    snprintf(t, sizeof t, "%s[al]\nstd.hexagonal.a = 1\n", base);
    CHECK(rejects(t, "no class 'hexagonal'"));
    snprintf(t, sizeof t, "%s[al]\nstd.cubic.alpha = 1\n", base);
    CHECK(rejects(t, "'alpha' is not a free parameter of class cubic"));
    snprintf(t, sizeof t, "%s[campaign]\nworkflow = chaotic\n", base);
    CHECK(rejects(t, "workflow"));
    snprintf(t, sizeof t, "%s[train]\nmomentum = 0.9\n", base);
    CHECK(rejects(t, "c.ini:17: [train] momentum: unknown key"));
    CHECK(rejects("[campaign]\ntest = 9\nstudy_per_class = 5\nnew_per_phase = 12\n",
                  "[campaign] val: missing"));
    snprintf(t, sizeof t, "%s[campaign]\nval = 10\n", base);
    CHECK(rejects(t, "given twice"));
}

BF_TEST(a_missing_cif_or_an_empty_class_box_is_rejected_before_any_work)
{
    static bf_campaign_config cfg;
    bf_error err = {0};
    char *text = config_text(good);
    char *at = strstr(text, "NaCl.cif");
    memcpy(at, "NoCl", 4);
    CHECK(bf_campaign_config_parse(text, "c.ini", &cfg, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "[class.cubic] cif"), "%s", err.msg);
    free(text);
    /* a tetragonal box with a = c only: every point violates |a - c| > 0.001 */
    char extra[2048];
    snprintf(extra, sizeof extra, "%s", good);
    text = config_text(extra);
    char *cls = strstr(text, "count = 10\n[campaign]");
    CHECK(cls != NULL);
    char *fixed = malloc(strlen(text) + 64);
    size_t head = (size_t)(cls - text) + strlen("count = 10\n");
    memcpy(fixed, text, head);
    strcpy(fixed + head, "a = 4 4\nc = 4 4\n");
    strcat(fixed, text + head);
    err = (bf_error){0};
    CHECK(bf_campaign_config_parse(fixed, "c.ini", &cfg, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "tetragonal"), "%s", err.msg);
    free(fixed);
    free(text);
}

BF_TEST(eq1_bound_is_n_over_n_minus_one_plus_one_when_balanced_and_one_when_one_phase)
{
    /* seed 000: n = 2 balanced phases -> 4/3; n = 4 -> 1.6 */
    CHECK_NEAR(bf_flow_speedup_bound(2, 5, 5), 4.0 / 3.0, 1e-12);
    CHECK_NEAR(bf_flow_speedup_bound(4, 5, 5), 1.6, 1e-12);
    CHECK_NEAR(bf_flow_speedup_bound(1, 3, 7), 1.0, 1e-12);
    /* very unbalanced: hardly any gain */
    CHECK(bf_flow_speedup_bound(4, 0.1, 10) < 1.01);
}

BF_TEST(the_example_campaigns_are_valid_configs)
{
    const char *names[] = {"seed001-e1-small.ini", "seed001-e1.ini", "seed000-e1.ini",
                           "seed000-e1-small.ini"};
    for (int i = 0; i < 4; i++) {
        static bf_campaign_config cfg;
        char path[4096];
        bf_error err = {0};
        snprintf(path, sizeof path, "%s/examples/campaigns/%s", bf_test_source_dir(), names[i]);
        CHECK_MSG(bf_campaign_config_read(path, &cfg, &err) == BF_OK, "%s", err.msg);
    }
}
