/* tests/flow/test_report.c — bf_campaign_report on hand-made campaign folders: the page
 * is well formed (every tag closes in order), self-contained (no URL but the SVG
 * namespace), holds the four charts and a bar per task, escapes the files' text, decides
 * each class's free parameters from the data, and notes what a baseline lacks; missing
 * or malformed inputs fail naming the file (and line). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "braggflow/flow.h"
#include "test.h"

#define LEN 50   /* points per pattern */

static const char *timeline_csv =
    "task,phase,start_s,end_s,seconds,samples\n"
    "S_0,0,0.000,1.500,1.500,120\n"
    "S'_0,0,1.500,2.000,0.500,30\n"
    "T_0,0,1.500,9.000,7.500,60\n"
    "PG_0,0,1.500,9.100,7.600,0\n"
    "AL_1,1,9.100,9.300,0.200,3\n"
    "S_1,1,9.300,9.400,0.100,3\n"
    "T_1,1,9.400,15.000,5.600,63\n";

static const char *metrics_csv =
    "phase,n_train,epochs,test_n,test_loss,test_class_loss,test_reg_loss,test_accuracy,"
    "test_mse,test_mse_baseline,mae_a_A,mae_c_A,mae_alpha_deg,mean_sigma2\n"
    "0,60,3,3,-1.2,0.9,-2.1,0.66,0.05,0.09,0.1,0.1,3,0.02\n"
    "1,63,3,3,-1.5,0.5,-2.0,1,0.02,0.09,0.05,0.06,2,0.01\n";

/* cubic: a only; trigonal: a and alpha (b = c = a, beta = gamma = alpha); tetragonal:
 * a and c */
static const char *al_csv =
    "label,a,b,c,alpha,beta,gamma\n"
    "2,4.10,4.10,4.10,90,90,90\n"
    "0,3.85,3.85,3.85,70,70,70\n"
    "1,3.95,3.95,4.05,90,90,90\n";

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

/* A fresh folder DIR/name (with data/) under the test's scratch folder. */
static const char *make_campaign_dir(const char *name)
{
    static char dir[4096];
    char data[4200];
    snprintf(dir, sizeof dir, "%s/%s", bf_test_tmp_dir(), name);
    snprintf(data, sizeof data, "%s/data", dir);
    mkdir(dir, 0755);
    mkdir(data, 0755);
    return dir;
}

/* n patterns of LEN points: class labels[i] with cell cells[i]; a peak per pattern. */
static int write_dataset(const char *path, long n, const double (*cells)[6],
                         const int32_t *labels)
{
    bf_dataset d = {0};
    d.n = n;
    d.length = LEN;
    d.patterns = calloc((size_t)n * LEN, sizeof *d.patterns);
    d.tof_us = calloc(LEN, sizeof *d.tof_us);
    d.cells = calloc((size_t)n * 6, sizeof *d.cells);
    d.labels = calloc((size_t)n, sizeof *d.labels);
    for (int j = 0; j < LEN; j++)
        d.tof_us[j] = 2000 + 300.0 * j;
    for (long i = 0; i < n; i++) {
        memcpy(d.cells + i * 6, cells[i], sizeof cells[i]);
        d.labels[i] = labels[i];
        for (int j = 0; j < LEN; j++) {
            double x = j - 10 - 5.0 * i;
            d.patterns[i * LEN + j] = (float)(10 + 1000 / (1 + x * x));
        }
    }
    static const char *names[] = {"cubic", "trigonal", "tetragonal"};
    static const int32_t class_labels[] = {2, 0, 1};
    d.n_classes = 3;
    for (int k = 0; k < 3; k++) {
        snprintf(d.class_names[k], sizeof d.class_names[k], "%s", names[k]);
        d.class_labels[k] = class_labels[k];
    }
    snprintf(d.sampler, sizeof d.sampler, "test");
    bf_error err = {0};
    bf_status st = bf_dataset_write_h5(&d, path, BF_LAYOUT_BRAGGFLOW, &err);
    if (st != BF_OK)
        fprintf(stderr, "  %s\n", err.msg);
    bf_dataset_free(&d);
    return st == BF_OK;
}

static const double study_cells[6][6] = {
    {4.00, 4.00, 4.00, 90, 90, 90},   {4.20, 4.20, 4.20, 90, 90, 90},
    {3.80, 3.80, 3.80, 60, 60, 60},   {3.90, 3.90, 3.90, 100, 100, 100},
    {3.90, 3.90, 4.00, 90, 90, 90},   {4.00, 4.00, 4.10, 90, 90, 90}};
static const int32_t study_labels[6] = {2, 2, 0, 0, 1, 1};
static const double test_cells[3][6] = {
    {4.05, 4.05, 4.05, 90, 90, 90}, {3.85, 3.85, 3.85, 80, 80, 80}, {3.95, 3.95, 4.02, 90, 90, 90}};
static const int32_t test_labels[3] = {2, 0, 1};

/* A streaming-like campaign: timeline, metrics, one AL batch, study and test sets. */
static int make_full_campaign(const char *dir, const char *summary)
{
    char path[4200];
    write_text(dir, "timeline.csv", timeline_csv);
    write_text(dir, "metrics.csv", metrics_csv);
    write_text(dir, "data/al-1.csv", al_csv);
    write_text(dir, "summary.txt", summary);
    write_text(dir, "provenance.json", "{\"seed\": 1, \"note\": \"a < b\"}\n");
    snprintf(path, sizeof path, "%s/data/study.h5", dir);
    if (!write_dataset(path, 6, study_cells, study_labels))
        return 0;
    snprintf(path, sizeof path, "%s/data/test.h5", dir);
    return write_dataset(path, 3, test_cells, test_labels);
}

/* noinline: inlined, GCC 12 -O2 reports a false -Wdangling-pointer on its result */
__attribute__((noinline)) static char *read_report(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/report.html", dir);
    char *text = NULL;
    bf_error err = {0};
    if (bf_read_file(path, &text, NULL, &err) != BF_OK)
        fprintf(stderr, "  %s\n", err.msg);
    return text;
}

/* Checks that every element opened is closed, in order; void elements (<meta ...>) and
 * self-closing ones (<rect .../>) need no closing tag. Returns NULL or what is wrong. */
static const char *check_tags(const char *html, char *why, size_t n)
{
    static const char *const void_tags[] = {"meta", "br", "hr", "img", "link", "input", NULL};
    char stack[256][24];
    int depth = 0;
    for (const char *p = strchr(html, '<'); p; p = strchr(p + 1, '<')) {
        const char *end = strchr(p, '>');
        if (!end) {
            snprintf(why, n, "unterminated tag at offset %ld", (long)(p - html));
            return why;
        }
        if (p[1] == '!') /* <!DOCTYPE html> */
            continue;
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t len = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789");
        if (len == 0 || len >= sizeof stack[0]) {
            snprintf(why, n, "bad tag at offset %ld: %.20s", (long)(p - html), p);
            return why;
        }
        char tag[24];
        memcpy(tag, name, len);
        tag[len] = 0;
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], tag) != 0) {
                snprintf(why, n, "</%s> closes <%s> at offset %ld", tag,
                         depth ? stack[depth - 1] : "nothing", (long)(p - html));
                return why;
            }
            depth--;
            continue;
        }
        if (end[-1] == '/')
            continue;
        int is_void = 0;
        for (int k = 0; void_tags[k] && !is_void; k++)
            is_void = strcmp(void_tags[k], tag) == 0;
        if (is_void)
            continue;
        if (depth == 256) {
            snprintf(why, n, "nesting too deep");
            return why;
        }
        snprintf(stack[depth++], sizeof stack[0], "%s", tag);
    }
    if (depth) {
        snprintf(why, n, "<%s> never closed", stack[depth - 1]);
        return why;
    }
    return NULL;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Every "http" must be the SVG namespace, in an xmlns attribute. */
static int only_svg_namespace_urls(const char *html)
{
    static const char ns[] = "xmlns=\"http://www.w3.org/2000/svg\"";
    for (const char *p = strstr(html, "http"); p; p = strstr(p + 1, "http"))
        if (p - html < 7 || strncmp(p - 7, ns, sizeof ns - 1) != 0)
            return 0;
    return 1;
}

BF_TEST(a_full_campaign_gives_a_well_formed_self_contained_page)
{
    const char *dir = make_campaign_dir("full");
    CHECK(make_full_campaign(dir, "campaign: <&> \"quoted\"\n"));
    bf_error err = {0};
    CHECK_MSG(bf_campaign_report(dir, &err) == BF_OK, "%s", err.msg);
    char *html = read_report(dir);
    CHECK(html);
    char why[256];
    const char *bad = check_tags(html, why, sizeof why);
    int ok_start = strncmp(html, "<!DOCTYPE html>", 15) == 0;
    int sections = strstr(html, "<section id=\"timeline\">") && strstr(html, "id=\"metrics\"") &&
                   strstr(html, "<section id=\"al\">") && strstr(html, "id=\"patterns\"");
    int titles = strstr(html, "Task timeline") && strstr(html, "Test metrics per phase") &&
                 strstr(html, "Where active learning sampled") && strstr(html, "Example patterns");
    int svgs = count(html, "<svg"), svg_titles = count(html, "\n<title id=\"");
    int urls_ok = only_svg_namespace_urls(html);
    int escaped = strstr(html, "campaign: &lt;&amp;&gt; &quot;quoted&quot;") != NULL &&
                  strstr(html, "<&>") == NULL && strstr(html, "a &lt; b") != NULL;
    int no_script = strstr(html, "<script") == NULL;
    /* a bar (a group with a title) for every task of timeline.csv */
    int bars = 1;
    static const char *const tasks[] = {"S_0", "S'_0", "T_0", "PG_0", "AL_1", "S_1", "T_1"};
    for (int i = 0; i < 7; i++) {
        char want[64];
        snprintf(want, sizeof want, "data-task=\"%s\"><title>%s (phase", tasks[i], tasks[i]);
        bars &= count(html, want) == 1;
    }
    /* free parameters decided from the data: the charts' titles name them */
    int free_ok = strstr(html, ">cubic: a<") && strstr(html, ">trigonal: a vs α<") &&
                  strstr(html, ">tetragonal: a vs c<");
    /* the baseline MSE is the dashed reference; the first pattern of each class is drawn */
    int mse_ok = strstr(html, "mean predictor (test_mse_baseline)") &&
                 count(html, "stroke-dasharray=\"6 4\"") == 1;
    int patterns = count(html, "<g class=\"pattern\">") == 3 &&
                   strstr(html, "tetragonal: test pattern 2,") != NULL;
    free(html);
    CHECK_MSG(!bad, "%s", why);
    CHECK(ok_start);
    CHECK(sections && titles);
    CHECK_MSG(svgs >= 6 && svg_titles == svgs, "%d svg, %d titles", svgs, svg_titles);
    CHECK(urls_ok && no_script);
    CHECK(escaped);
    CHECK(bars);
    CHECK(free_ok);
    CHECK(mse_ok);
    CHECK(patterns);
}

BF_TEST(a_baseline_campaign_gets_notes_for_what_it_lacks)
{
    const char *dir = make_campaign_dir("baseline");
    char path[4200];
    write_text(dir, "timeline.csv",
               "task,phase,start_s,end_s,seconds,samples\nS_0,0,0,1,1,200\nT_0,0,1,5,4,140\n");
    write_text(dir, "metrics.csv", "phase,n_train,test_class_loss,test_mse\n0,140,0.4,0.01\n");
    snprintf(path, sizeof path, "%s/data/test.h5", dir);
    CHECK(write_dataset(path, 3, test_cells, test_labels));
    bf_error err = {0};
    CHECK_MSG(bf_campaign_report(dir, &err) == BF_OK, "%s", err.msg);
    char *html = read_report(dir);
    CHECK(html);
    char why[256];
    const char *bad = check_tags(html, why, sizeof why);
    int noted = strstr(html, "class=\"note\">No study set (data/study.h5) and no AL batches") &&
                strstr(html, "No summary.txt");
    int charts = strstr(html, "id=\"timeline-chart\"") && strstr(html, "id=\"mse-chart\"") &&
                 strstr(html, "id=\"patterns-chart\"") && !strstr(html, "id=\"al-chart-");
    /* without test_mse_baseline there is no reference line */
    int no_reference = strstr(html, "test_mse_baseline") == NULL;
    free(html);
    CHECK_MSG(!bad, "%s", why);
    CHECK(noted && charts && no_reference);
}

BF_TEST(missing_files_fail_naming_the_file)
{
    bf_error err = {0};
    const char *dir = make_campaign_dir("empty");
    CHECK(bf_campaign_report(dir, &err) == BF_ERR_IO);
    CHECK_MSG(strstr(err.msg, "timeline.csv"), "%s", err.msg);

    bf_error err2 = {0};
    write_text(dir, "timeline.csv", timeline_csv);
    CHECK(bf_campaign_report(dir, &err2) == BF_ERR_IO);
    CHECK_MSG(strstr(err2.msg, "metrics.csv"), "%s", err2.msg);

    bf_error err3 = {0};
    CHECK(bf_campaign_report("/nonexistent-dir-xyz", &err3) == BF_ERR_IO);
    CHECK_MSG(strstr(err3.msg, "timeline.csv"), "%s", err3.msg);

    /* nothing was written by the failures */
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/report.html", dir);
    CHECK(stat(path, &sb) != 0);
}

BF_TEST(malformed_csv_lines_fail_naming_file_and_line)
{
    const char *dir = make_campaign_dir("malformed");
    write_text(dir, "metrics.csv", metrics_csv);
    struct {
        const char *file, *text, *want;
    } cases[] = {
        {"timeline.csv", "task,phase,start_s,end_s\nS_0,0,0,1\nT_0,0,abc,2\n",
         "timeline.csv:3: start_s: 'abc' is not a number"},
        {"timeline.csv", "task,phase,start_s,end_s\nS_0,0,0\n", "timeline.csv:2:"},
        {"timeline.csv", "task,phase,begin,end_s\nS_0,0,0,1\n", "timeline.csv:1: no 'start_s'"},
        {"timeline.csv", "task,phase,start_s,end_s\nS_0,0,5,1\n", "timeline.csv:2:"},
        {"data/al-1.csv", "label,a,b,c,alpha,beta,gamma\n2,4,4,4,90,90\n", "al-1.csv:2:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(dir, "timeline.csv", i < 4 ? cases[i].text : timeline_csv);
        if (i == 4)
            write_text(dir, cases[i].file, cases[i].text);
        bf_error err = {0};
        CHECK(bf_campaign_report(dir, &err) == BF_ERR_PARSE);
        CHECK_MSG(strstr(err.msg, cases[i].want), "case %zu: %s", i, err.msg);
    }
}

BF_TEST(rewriting_a_report_replaces_it_and_leaves_no_temporary_file)
{
    const char *dir = make_campaign_dir("again");
    CHECK(make_full_campaign(dir, "first\n"));
    bf_error err = {0};
    CHECK_MSG(bf_campaign_report(dir, &err) == BF_OK, "%s", err.msg);
    write_text(dir, "summary.txt", "second\n");
    CHECK_MSG(bf_campaign_report(dir, &err) == BF_OK, "%s", err.msg);
    char *html = read_report(dir);
    CHECK(html);
    int second = strstr(html, "<pre>second\n</pre>") && !strstr(html, "<pre>first");
    free(html);
    CHECK(second);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q '\\.tmp\\.'", dir);
    CHECK(system(cmd) != 0);
}
