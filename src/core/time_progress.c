/* core/time_progress.c — monotonic clock and a thread-safe progress bar on stderr. */
#include "braggflow/core.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double bf_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void bf_progress_begin(bf_progress *p, const char *label, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->total = total;
    p->start_s = bf_now_seconds();
    const char *env = getenv("BF_PROGRESS");
    p->enabled = env ? (env[0] == '1') : isatty(STDERR_FILENO);
}

static void progress_draw(bf_progress *p, uint64_t done)
{
    double elapsed = bf_now_seconds() - p->start_s;
    double frac = p->total ? (double)done / (double)p->total : 1.0;
    int width = 30, filled = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    double rate = elapsed > 0 ? (double)done / elapsed : 0.0;
    double eta = rate > 0 ? (double)(p->total - done) / rate : 0.0;
    fprintf(stderr, "\r%s [%s] %llu/%llu  %.0f/s  eta %.0fs ", p->label, bar,
            (unsigned long long)done, (unsigned long long)p->total, rate, eta);
}

void bf_progress_add(bf_progress *p, uint64_t n)
{
    uint64_t done = __atomic_add_fetch(&p->done, n, __ATOMIC_RELAXED);
    if (!p->enabled)
        return;
    uint64_t now = (uint64_t)(bf_now_seconds() * 1e6);
    uint64_t last = __atomic_load_n(&p->last_print_us, __ATOMIC_RELAXED);
    if (now - last < 200000 && done != p->total)
        return;
    /* One thread wins the right to draw this tick. */
    if (__atomic_compare_exchange_n(&p->last_print_us, &last, now, 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
        progress_draw(p, done);
}

void bf_progress_end(bf_progress *p)
{
    if (!p->enabled)
        return;
    progress_draw(p, __atomic_load_n(&p->done, __ATOMIC_RELAXED));
    fputc('\n', stderr);
}
