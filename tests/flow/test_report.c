/* tests/flow/test_report.c — bf_campaign_report on hand-made campaign folders: the page
 * is well formed (every tag closes in order), self-contained (no URL but the SVG
 * namespace), and its text (what a reader sees, titles included) holds the section
 * headings, every task of timeline.csv with its times and pattern count, every phase's
 * metrics, the AL batch and study points per class, the example patterns' cells and the
 * files' text unaltered (escaped in the markup); each class's free parameters are decided
 * from the data, and a baseline gets notes for what it lacks; missing or malformed
 * inputs fail naming the file (and line). The tests look at content, not at markup, so
 * that restyling the page does not break them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
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
    d.x = calloc(LEN, sizeof *d.x);
    d.cells = calloc((size_t)n * 6, sizeof *d.cells);
    d.labels = calloc((size_t)n, sizeof *d.labels);
    for (int j = 0; j < LEN; j++)
        d.x[j] = 2000 + 300.0 * j;
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

/* The page's text: every run of characters between two tags (titles, headings, notes,
 * <pre> blocks) as one chunk, entities decoded, chunks separated by '\x1f'. */
static char *page_text(const char *html)
{
    size_t n = strlen(html);
    char *out = malloc(n + 2), *o = out;
    if (!out)
        return NULL;
    for (const char *p = html; *p;) {
        if (*p == '<') {
            const char *end = strchr(p, '>');
            if (!end)
                break;
            if (o > out && o[-1] != '\x1f')
                *o++ = '\x1f';
            p = end + 1;
            continue;
        }
        static const struct {
            const char *entity;
            char c;
        } ent[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'},
                   {"&#39;", '\''}, {"&apos;", '\''}};
        int decoded = 0;
        for (size_t k = 0; *p == '&' && k < sizeof ent / sizeof ent[0] && !decoded; k++)
            if (strncmp(p, ent[k].entity, strlen(ent[k].entity)) == 0) {
                *o++ = ent[k].c;
                p += strlen(ent[k].entity);
                decoded = 1;
            }
        if (!decoded)
            *o++ = *p++;
    }
    *o = 0;
    return out;
}

static int word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '\'';
}

/* Whether chunk [c, c + len) holds word (not as part of a longer name) and every value of
 * want among the numbers written in it (any format: 7.5 matches "7.50"). */
static int chunk_has(const char *c, size_t len, const char *word, const double *want, int n)
{
    char buf[1024];
    if (len >= sizeof buf)
        len = sizeof buf - 1;
    memcpy(buf, c, len);
    buf[len] = 0;
    size_t wl = strlen(word);
    int found = 0;
    for (const char *p = strstr(buf, word); p && !found; p = strstr(p + 1, word))
        found = (p == buf || !word_char(p[-1]) || !word_char(word[0])) &&
                (!word_char(p[wl]) || !word_char(word[wl - 1]));
    if (!found)
        return 0;
    double nums[64];
    int nn = 0;
    for (const char *p = buf; *p && nn < 64;) {
        int starts = isdigit((unsigned char)*p) && (p == buf || (!isdigit((unsigned char)p[-1]) &&
                                                                  p[-1] != '.'));
        if (!starts) {
            p++;
            continue;
        }
        char *end;
        nums[nn++] = strtod(p, &end);
        p = end;
    }
    for (int k = 0; k < n; k++) {
        int seen = 0;
        for (int i = 0; i < nn && !seen; i++)
            seen = fabs(nums[i] - want[k]) <= 1e-9 * (fabs(want[k]) > 1 ? fabs(want[k]) : 1);
        if (!seen)
            return 0;
    }
    return 1;
}

/* How many chunks of text hold word and all n numbers of want. */
static int chunks_with(const char *text, const char *word, const double *want, int n)
{
    int hits = 0;
    for (const char *c = text; *c;) {
        const char *end = strchr(c, '\x1f');
        size_t len = end ? (size_t)(end - c) : strlen(c);
        hits += chunk_has(c, len, word, want, n);
        c += len + (end != NULL);
    }
    return hits;
}

/* NUMS(1, 2.5): the array and count arguments of chunks_with */
#define NUMS(...)                                                                        \
    ((const double[]){__VA_ARGS__}), (int)(sizeof((double[]){__VA_ARGS__}) / sizeof(double))

/* Whether some chunk is exactly s (a heading, a chart title). */
static int has_chunk(const char *text, const char *s)
{
    size_t len = strlen(s);
    for (const char *c = text; c; c = strchr(c, '\x1f')) {
        c += *c == '\x1f';
        if (strncmp(c, s, len) == 0 && (c[len] == '\x1f' || c[len] == 0))
            return 1;
    }
    return 0;
}

/* Every chart (<svg>) starts with its <title>, for screen readers and tooltips. */
static int every_svg_titled(const char *html, int *n_svg)
{
    *n_svg = 0;
    for (const char *p = strstr(html, "<svg"); p; p = strstr(p + 1, "<svg")) {
        const char *end = strchr(p, '>');
        if (!end)
            return 0;
        end++;
        end += strspn(end, " \t\r\n");
        if (strncmp(end, "<title", 6) != 0)
            return 0;
        ++*n_svg;
    }
    return 1;
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
    int n_svg, titled = every_svg_titled(html, &n_svg);
    int urls_ok = only_svg_namespace_urls(html), no_script = strstr(html, "<script") == NULL;
    /* the files' text is escaped in the markup and reads unaltered */
    int raw_unescaped = strstr(html, "<&>") != NULL || strstr(html, "a < b") != NULL;
    char *text = page_text(html);
    free(html);
    CHECK(text);
    int summary_ok = strstr(text, "campaign: <&> \"quoted\"") && strstr(text, "\"a < b\"");
    int headings = has_chunk(text, "Summary") && has_chunk(text, "Task timeline") &&
                   has_chunk(text, "Test metrics per phase") &&
                   has_chunk(text, "Where active learning sampled") &&
                   has_chunk(text, "Example patterns");
    /* the header and the timeline's title count the tasks, phases and the wall time */
    int totals = chunks_with(text, "task(s)", NUMS(7, 2)) >= 1 &&
                 chunks_with(text, "wall time", NUMS(7, 15)) >= 1;
    /* every task of timeline.csv, with its phase, start, end, seconds and patterns */
    static const struct {
        const char *name;
        double phase, start_s, end_s, seconds, samples;
    } tasks[] = {{"S_0", 0, 0, 1.5, 1.5, 120},   {"S'_0", 0, 1.5, 2, 0.5, 30},
                 {"T_0", 0, 1.5, 9, 7.5, 60},    {"PG_0", 0, 1.5, 9.1, 7.6, -1},
                 {"AL_1", 1, 9.1, 9.3, 0.2, 3},  {"S_1", 1, 9.3, 9.4, 0.1, 3},
                 {"T_1", 1, 9.4, 15, 5.6, 63}};
    const char *missing_task = NULL;
    for (int i = 0; i < 7 && !missing_task; i++) {
        double v[] = {tasks[i].phase, tasks[i].start_s, tasks[i].end_s, tasks[i].seconds,
                      tasks[i].samples};
        if (chunks_with(text, tasks[i].name, v, tasks[i].samples < 0 ? 4 : 5) != 1)
            missing_task = tasks[i].name;
    }
    /* every phase's class loss and MSE, with its training-set size */
    int metrics = chunks_with(text, "class loss", NUMS(0, 60, 0.9)) == 1 &&
                  chunks_with(text, "class loss", NUMS(1, 63, 0.5)) == 1 &&
                  chunks_with(text, "MSE", NUMS(0, 60, 0.05)) == 1 &&
                  chunks_with(text, "MSE", NUMS(1, 63, 0.02)) == 1;
    /* the baseline MSE is drawn as the mean predictor's reference */
    int baseline = chunks_with(text, "mean predictor", NULL, 0) >= 1;
    /* free parameters decided from the data: the charts' titles name them */
    int free_ok = has_chunk(text, "cubic: a") && has_chunk(text, "trigonal: a vs α") &&
                  has_chunk(text, "tetragonal: a vs c");
    /* per class, the AL batch's one point and the study set's two */
    int al_points = chunks_with(text, "AL 1:", NUMS(1, 1)) == 3 &&
                    chunks_with(text, "study:", NUMS(2)) == 3;
    /* the first test pattern of each class, with its index and cell (a, c, alpha) */
    int patterns = chunks_with(text, "cubic", NUMS(0, 4.05, 90)) >= 1 &&
                   chunks_with(text, "trigonal", NUMS(1, 3.85, 80)) >= 1 &&
                   chunks_with(text, "tetragonal", NUMS(2, 3.95, 4.02, 90)) >= 1;
    free(text);
    CHECK_MSG(!bad, "%s", why);
    CHECK(ok_start);
    CHECK_MSG(titled && n_svg >= 6, "%d charts, all titled: %d", n_svg, titled);
    CHECK(urls_ok && no_script);
    CHECK(!raw_unescaped && summary_ok);
    CHECK(headings);
    CHECK(totals);
    CHECK_MSG(!missing_task, "task %s is not shown with its times", missing_task);
    CHECK(metrics);
    CHECK(baseline);
    CHECK(free_ok);
    CHECK(al_points);
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
    char *text = page_text(html);
    free(html);
    CHECK(text);
    int noted = chunks_with(text, "No study set (data/study.h5) and no AL batches", NULL, 0) &&
                chunks_with(text, "No summary.txt", NULL, 0);
    int shown = chunks_with(text, "S_0", NUMS(0, 0, 1, 200)) == 1 &&
                chunks_with(text, "T_0", NUMS(0, 1, 5, 4, 140)) == 1 &&
                chunks_with(text, "wall time", NUMS(2, 5)) >= 1 &&
                chunks_with(text, "class loss", NUMS(0, 140, 0.4)) == 1 &&
                chunks_with(text, "MSE", NUMS(0, 140, 0.01)) == 1 &&
                chunks_with(text, "tetragonal", NUMS(2, 3.95, 4.02, 90)) >= 1;
    /* no AL chart without AL data; no reference line without test_mse_baseline */
    int no_al = chunks_with(text, "point(s)", NULL, 0) == 0 && !has_chunk(text, "cubic: a");
    int no_reference = chunks_with(text, "mean predictor", NULL, 0) == 0 &&
                       strstr(text, "test_mse_baseline") == NULL;
    free(text);
    CHECK_MSG(!bad, "%s", why);
    CHECK(noted);
    CHECK(shown);
    CHECK(no_al);
    CHECK(no_reference);
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
        {"timeline.csv", "task,phase,start_s,end_s\nS_0,0,0,1\n,0,1,2\n",
         "timeline.csv:3: task:"},
        {"data/al-1.csv", "label,a,b,c,alpha,beta,gamma\n2,4,4,4,90,90\n", "al-1.csv:2:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int timeline = strcmp(cases[i].file, "timeline.csv") == 0;
        write_text(dir, "timeline.csv", timeline ? cases[i].text : timeline_csv);
        if (!timeline)
            write_text(dir, cases[i].file, cases[i].text);
        bf_error err = {0};
        CHECK(bf_campaign_report(dir, &err) == BF_ERR_PARSE);
        CHECK_MSG(strstr(err.msg, cases[i].want), "case %zu: %s", i, err.msg);
    }
}

BF_TEST(rewriting_a_report_replaces_it_and_leaves_no_temporary_file)
{
    const char *dir = make_campaign_dir("again");
    CHECK(make_full_campaign(dir, "summary one: 1111\n"));
    bf_error err = {0};
    CHECK_MSG(bf_campaign_report(dir, &err) == BF_OK, "%s", err.msg);
    write_text(dir, "summary.txt", "summary two: 2222\n");
    CHECK_MSG(bf_campaign_report(dir, &err) == BF_OK, "%s", err.msg);
    char *html = read_report(dir);
    CHECK(html);
    int second = strstr(html, "summary two: 2222") && !strstr(html, "summary one");
    free(html);
    CHECK(second);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q '\\.tmp\\.'", dir);
    CHECK(system(cmd) != 0);
}
