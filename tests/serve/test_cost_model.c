/* tests/serve/test_cost_model.c — seed 002's cost model (Eqs. 4-5) against hand
 * arithmetic, its edge cases, input validation, and DIR/timings.ini. */
#include <errno.h>
#include <sys/stat.h>

#include "braggflow/serve.h"
#include "test.h"

/* A fresh folder DIR under the test's scratch space with DIR/timings.ini = text
 * (text NULL: no file). */
static const char *timings_dir(const char *name, const char *text)
{
    static char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", bf_test_tmp_dir(), name);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return NULL;
    if (text) {
        char path[4300];
        snprintf(path, sizeof path, "%s/timings.ini", dir);
        FILE *f = fopen(path, "w");
        if (!f)
            return NULL;
        fputs(text, f);
        if (fclose(f) != 0)
            return NULL;
    }
    return dir;
}

/* The example of the contract (docs/serve.md §Cost model), as the edge demo writes it. */
static const char *example_timings =
    "# DIR/timings.ini — written by scripts/edge-demo.sh (seed 002 Table 1 on one machine)\n"
    "[edge]\n"
    "threads = 2                 ; cores used by every step\n"
    "label_items = 2000          ; patches labelled by fit-peaks\n"
    "label_s = 1.9               ; its wall time (s)\n"
    "train_items = 2000          ; patches the fine-tuning trained on\n"
    "train_s = 12.0              ; fine-tuning wall time (s)\n"
    "deploy_s = 0.08             ; new checkpoint written -> first reply carrying its hash (s)\n"
    "inference_items = 100000    ; patches answered by the service\n"
    "inference_s = 2.5           ; their wall time through the service (s)\n"
    "item_bytes = 484            ; one patch on the wire (11x11 float32)\n"
    "model_bytes = 6000          ; the checkpoint's size\n"
    "end_to_end_s = 20.0         ; labelling + training + deployment\n";

static int same_inputs(const bf_cost_inputs *a, const bf_cost_inputs *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

BF_TEST(test_defaults_are_the_papers_example)
{
    bf_cost_inputs in;
    bf_cost_defaults(&in);
    /* seed 002 §4.2: 11 x 11 patches of 16-bit pixels, 8-byte labels, a 3 MB model, 1 GB/s */
    CHECK(in.n_items == 1e7);
    CHECK(in.labelled_fraction == 0.1);
    CHECK(in.item_bytes == 11 * 11 * 2);
    CHECK(in.label_bytes == 8);
    CHECK(in.model_bytes == 3e6);
    CHECK(in.bandwidth_bytes_per_s == 1e9);
    CHECK(in.analysis_us_per_item == 2.44);
    CHECK(in.inference_us_per_item == 0.35);
    CHECK(in.train_s == 19);
}

BF_TEST(test_defaults_give_eqs_4_and_5_by_hand)
{
    bf_cost_inputs in;
    bf_cost_defaults(&in);
    bf_cost_result r;
    bf_error err = {0};
    CHECK_MSG(bf_cost_evaluate(&in, &r, &err) == BF_OK, "%s", err.msg);
    /* transfers at 1e9 bytes/s: 242 B -> 0.242 us, 8 B -> 0.008 us, 3e6 B -> 3000 us */
    CHECK_REL(r.transfer_item_us, 0.242, 1e-9);
    CHECK_REL(r.transfer_label_us, 0.008, 1e-9);
    CHECK_REL(r.transfer_model_us, 3000, 1e-9);
    /* Eq. 4: f_c / N = 0.242 + 2.44 + 0.008 = 2.690 us (the paper writes 0.24: 2.688) */
    CHECK_REL(r.fc_per_item_us, 2.690, 1e-9);
    /* Eq. 5: f_ml / N = 0.1 * 2.690 + 0.9 * 0.35 = 0.2690 + 0.3150 = 0.5840 us,
     * fixed 19 s + 3000 us = 19,003,000 us */
    CHECK_REL(r.fml_per_item_us, 0.5840, 1e-9);
    CHECK_REL(r.fml_fixed_us, 19003000, 1e-9);
    /* at N = 1e7: f_c = 2.69e7 us, f_ml = 5.84e6 + 1.9003e7 = 2.4843e7 us */
    CHECK_REL(r.fc_us, 2.69e7, 1e-9);
    CHECK_REL(r.fml_us, 2.4843e7, 1e-9);
    /* break-even: 19,003,000 / (2.690 - 0.584) = 19,003,000 / 2.106 = 9,023,266.857 items:
     * 2.106 * 9,023,266 = 19,002,998.2, and the remaining 1.8 us are 0.857 items */
    CHECK_REL(r.break_even_items, 19003000.0 / 2.106, 1e-9);
    CHECK_NEAR(r.break_even_items, 9023266.857, 1e-3);
    CHECK(r.break_even_items > 9.0e6 && r.break_even_items < 9.1e6); /* "about 9 million" */
}

BF_TEST(test_the_papers_rounded_transfer_gives_its_printed_numbers)
{
    /* Eqs. 4-5 as printed use 0.24 us per patch: a 240-byte item at 1 GB/s */
    bf_cost_inputs in;
    bf_cost_defaults(&in);
    in.item_bytes = 240;
    bf_cost_result r;
    bf_error err = {0};
    CHECK_MSG(bf_cost_evaluate(&in, &r, &err) == BF_OK, "%s", err.msg);
    /* 0.24 + 2.44 + 0.008 = 2.688; 0.1 * 2.688 + 0.9 * 0.35 = 0.2688 + 0.315 = 0.5838
     * (DESIGN §9's "0.584"); 19,003,000 / (2.688 - 0.5838) = 19,003,000 / 2.1042
     * = 9,030,985.648 items */
    CHECK_REL(r.fc_per_item_us, 2.688, 1e-9);
    CHECK_REL(r.fml_per_item_us, 0.5838, 1e-9);
    CHECK_REL(r.break_even_items, 19003000.0 / 2.1042, 1e-9);
    CHECK_NEAR(r.break_even_items, 9030985.648, 1e-3);
}

BF_TEST(test_at_the_break_even_both_costs_are_equal)
{
    bf_cost_inputs in;
    bf_cost_defaults(&in);
    bf_cost_result r, at;
    bf_error err = {0};
    CHECK(bf_cost_evaluate(&in, &r, &err) == BF_OK);
    in.n_items = r.break_even_items;
    CHECK(bf_cost_evaluate(&in, &at, &err) == BF_OK);
    CHECK_REL(at.fc_us, at.fml_us, 1e-12);
    in.n_items = 0.5 * r.break_even_items; /* below it the conventional path is cheaper */
    CHECK(bf_cost_evaluate(&in, &at, &err) == BF_OK);
    CHECK(at.fc_us < at.fml_us);
}

BF_TEST(test_all_items_labelled_never_pays)
{
    bf_cost_inputs in;
    bf_cost_defaults(&in);
    in.labelled_fraction = 1;
    bf_cost_result r;
    bf_error err = {0};
    CHECK(bf_cost_evaluate(&in, &r, &err) == BF_OK);
    /* p = 1: every item takes the conventional path, and training comes on top */
    CHECK(r.fml_per_item_us == r.fc_per_item_us);
    CHECK_REL(r.fml_us, r.fc_us + 19003000, 1e-12);
    CHECK(isinf(r.break_even_items) && r.break_even_items > 0);
}

BF_TEST(test_no_labelled_items_costs_inference_only)
{
    bf_cost_inputs in;
    bf_cost_defaults(&in);
    in.labelled_fraction = 0;
    bf_cost_result r;
    bf_error err = {0};
    CHECK(bf_cost_evaluate(&in, &r, &err) == BF_OK);
    CHECK_REL(r.fml_per_item_us, 0.35, 1e-12);
    /* 19,003,000 / (2.690 - 0.35) = 19,003,000 / 2.34 */
    CHECK_REL(r.break_even_items, 19003000.0 / 2.34, 1e-9);
}

BF_TEST(test_inference_as_dear_as_the_conventional_path_never_pays)
{
    bf_cost_inputs in;
    bf_cost_defaults(&in);
    bf_cost_result r;
    bf_error err = {0};
    /* E = A + both transfers (2.69 us): the same per item, so never */
    in.inference_us_per_item = 0.242 + 2.44 + 0.008;
    CHECK(bf_cost_evaluate(&in, &r, &err) == BF_OK);
    CHECK(isinf(r.break_even_items));
    in.inference_us_per_item = 5; /* E > A: never */
    CHECK(bf_cost_evaluate(&in, &r, &err) == BF_OK);
    CHECK(isinf(r.break_even_items));
    CHECK(r.fml_per_item_us > r.fc_per_item_us);
    /* E = A still pays, late: the surrogate saves the two transfers of the (1 - p) share:
     * 19,003,000 / (0.9 * (2.690 - 2.44)) = 19,003,000 / 0.225 = 84,457,777.8 items */
    in.inference_us_per_item = 2.44;
    CHECK(bf_cost_evaluate(&in, &r, &err) == BF_OK);
    CHECK_REL(r.break_even_items, 19003000.0 / 0.225, 1e-9);
}

BF_TEST(test_no_items_cost_the_fixed_part_only)
{
    bf_cost_inputs in;
    bf_cost_defaults(&in);
    in.n_items = 0;
    bf_cost_result r;
    bf_error err = {0};
    CHECK(bf_cost_evaluate(&in, &r, &err) == BF_OK);
    CHECK(r.fc_us == 0);
    CHECK_REL(r.fml_us, 19003000, 1e-12);
}

BF_TEST(test_each_invalid_input_is_rejected_naming_its_field)
{
    static const struct {
        const char *field;
        size_t offset;
        double bad;
    } cases[] = {
#define F(name) #name, offsetof(bf_cost_inputs, name)
        {F(n_items), -1},
        {F(n_items), NAN},
        {F(n_items), INFINITY},
        {F(labelled_fraction), -0.1},
        {F(labelled_fraction), 1.1},
        {F(labelled_fraction), NAN},
        {F(item_bytes), -1},
        {F(item_bytes), INFINITY},
        {F(label_bytes), -8},
        {F(model_bytes), NAN},
        {F(bandwidth_bytes_per_s), 0},
        {F(bandwidth_bytes_per_s), -1e9},
        {F(bandwidth_bytes_per_s), INFINITY},
        {F(analysis_us_per_item), -2.44},
        {F(inference_us_per_item), NAN},
        {F(train_s), -19},
        {F(train_s), INFINITY},
#undef F
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bf_cost_inputs in;
        bf_cost_defaults(&in);
        *(double *)(void *)((char *)&in + cases[i].offset) = cases[i].bad;
        bf_cost_result r;
        bf_error err = {0};
        bf_status st = bf_cost_evaluate(&in, &r, &err);
        size_t n = strlen(cases[i].field);
        CHECK_MSG(st == BF_ERR_INVALID, "%s = %g: status %d", cases[i].field, cases[i].bad, st);
        CHECK_MSG(strncmp(err.msg, cases[i].field, n) == 0 && err.msg[n] == ':',
                  "%s = %g: message '%s'", cases[i].field, cases[i].bad, err.msg);
    }
}

BF_TEST(test_a_cost_beyond_a_double_is_an_error)
{
    bf_cost_inputs in;
    bf_cost_defaults(&in);
    in.n_items = 1e308;
    bf_cost_result r;
    bf_error err = {0};
    CHECK(bf_cost_evaluate(&in, &r, &err) == BF_ERR_RANGE);
    CHECK(strstr(err.msg, "overflow") != NULL);
}

BF_TEST(test_measure_fills_the_measured_inputs_from_timings_ini)
{
    const char *dir = timings_dir("full", example_timings);
    CHECK(dir != NULL);
    bf_cost_inputs in, before;
    bf_cost_defaults(&in);
    before = in;
    unsigned measured = 0xdead;
    bf_error err = {0};
    CHECK_MSG(bf_cost_measure(dir, &in, &measured, &err) == BF_OK, "%s", err.msg);
    CHECK(measured == (BF_COST_ANALYSIS | BF_COST_INFERENCE | BF_COST_TRAIN |
                       BF_COST_ITEM_BYTES | BF_COST_MODEL_BYTES));
    /* A = 1.9 s / 2000 = 950 us, E = 2.5 s / 100,000 = 25 us */
    CHECK_REL(in.analysis_us_per_item, 950, 1e-12);
    CHECK_REL(in.inference_us_per_item, 25, 1e-12);
    CHECK(in.train_s == 12);
    CHECK(in.item_bytes == 484);
    CHECK(in.model_bytes == 6000);
    /* what the file does not measure stays assumed */
    CHECK(in.n_items == before.n_items);
    CHECK(in.labelled_fraction == before.labelled_fraction);
    CHECK(in.label_bytes == before.label_bytes);
    CHECK(in.bandwidth_bytes_per_s == before.bandwidth_bytes_per_s);

    bf_edge_timings t;
    CHECK(bf_edge_timings_read(dir, &t, &err) == BF_OK);
    CHECK(t.present == (1u << 11) - 1); /* all eleven keys */
    CHECK(t.threads == 2 && t.train_items == 2000 && t.deploy_s == 0.08 &&
          t.end_to_end_s == 20);
}

BF_TEST(test_measure_leaves_absent_keys_assumed)
{
    const char *dir = timings_dir("partial", "[edge]\ntrain_s = 7.5\n");
    CHECK(dir != NULL);
    bf_cost_inputs in;
    bf_cost_defaults(&in);
    unsigned measured = 0;
    bf_error err = {0};
    CHECK_MSG(bf_cost_measure(dir, &in, &measured, &err) == BF_OK, "%s", err.msg);
    CHECK(measured == BF_COST_TRAIN);
    CHECK(in.train_s == 7.5);
    CHECK(in.analysis_us_per_item == 2.44);
    CHECK(in.item_bytes == 242);

    dir = timings_dir("empty", "# nothing measured yet\n");
    bf_cost_defaults(&in);
    CHECK(bf_cost_measure(dir, &in, &measured, &err) == BF_OK);
    CHECK(measured == 0);
}

/* bf_cost_measure on DIR/timings.ini = text must fail with code, leave the inputs as they
 * were and name every one of want (NULL-terminated) in its message. */
static int measure_fails(const char *name, const char *text, bf_status code, const char **want,
                         char *msg, size_t msgsz)
{
    const char *dir = timings_dir(name, text);
    if (!dir)
        return 0;
    bf_cost_inputs in, before;
    bf_cost_defaults(&in);
    before = in;
    unsigned measured = 0xdead;
    bf_error err = {0};
    bf_status st = bf_cost_measure(dir, &in, &measured, &err);
    snprintf(msg, msgsz, "%s", err.msg);
    if (st != code || measured != 0 || !same_inputs(&in, &before))
        return 0;
    for (; *want; want++)
        if (!strstr(err.msg, *want))
            return 0;
    return 1;
}

BF_TEST(test_timings_errors_name_the_file_line_and_key)
{
    char msg[1024];
    const char *unknown[] = {"unknown/timings.ini:3:", "bogus", NULL};
    CHECK_MSG(measure_fails("unknown", "[edge]\nthreads = 2\nbogus = 1\n", BF_ERR_PARSE,
                            unknown, msg, sizeof msg), "%s", msg);
    const char *malformed[] = {"malformed/timings.ini:2:", "label_s", "1.9s", NULL};
    CHECK_MSG(measure_fails("malformed", "[edge]\nlabel_s = 1.9s\nlabel_items = 2000\n",
                            BF_ERR_PARSE, malformed, msg, sizeof msg), "%s", msg);
    const char *missing[] = {"missing/timings.ini", "cannot open", NULL};
    CHECK_MSG(measure_fails("missing", NULL, BF_ERR_IO, missing, msg, sizeof msg), "%s", msg);
    const char *section[] = {"section/timings.ini:1:", "[serve]", NULL};
    CHECK_MSG(measure_fails("section", "[serve]\nthreads = 2\n", BF_ERR_PARSE, section, msg,
                            sizeof msg), "%s", msg);
    const char *twice[] = {"twice/timings.ini:3:", "train_s", "line 2", NULL};
    CHECK_MSG(measure_fails("twice", "[edge]\ntrain_s = 1\ntrain_s = 2\n", BF_ERR_PARSE, twice,
                            msg, sizeof msg), "%s", msg);
    const char *unpaired[] = {"unpaired/timings.ini:2:", "inference_s", "inference_items",
                              NULL};
    CHECK_MSG(measure_fails("unpaired", "[edge]\ninference_s = 2.5\n", BF_ERR_INVALID,
                            unpaired, msg, sizeof msg), "%s", msg);
    const char *fraction[] = {"fraction/timings.ini:3:", "label_items", NULL};
    CHECK_MSG(measure_fails("fraction", "[edge]\nlabel_s = 1\nlabel_items = 2.5\n",
                            BF_ERR_INVALID, fraction, msg, sizeof msg), "%s", msg);
    const char *zero[] = {"zero/timings.ini:2:", "label_items", NULL};
    CHECK_MSG(measure_fails("zero", "[edge]\nlabel_items = 0\nlabel_s = 1\n", BF_ERR_INVALID,
                            zero, msg, sizeof msg), "%s", msg);
    const char *negative[] = {"negative/timings.ini:2:", "train_s", NULL};
    CHECK_MSG(measure_fails("negative", "[edge]\ntrain_s = -1\n", BF_ERR_INVALID, negative,
                            msg, sizeof msg), "%s", msg);
    const char *bytes[] = {"bytes/timings.ini:2:", "model_bytes", NULL};
    CHECK_MSG(measure_fails("bytes", "[edge]\nmodel_bytes = nan\n", BF_ERR_PARSE, bytes, msg,
                            sizeof msg), "%s", msg);
    const char *nosection[] = {"nosection/timings.ini:1:", "before any [section]", NULL};
    CHECK_MSG(measure_fails("nosection", "threads = 2\n", BF_ERR_PARSE, nosection, msg,
                            sizeof msg), "%s", msg);
}
