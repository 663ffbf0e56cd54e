/* nn/cpu_scratch.c — per-thread scratch buffers for the CPU backend's kernels, kept from
 * one call to the next.
 *
 * Why: the 2-D kernels need hundreds of KB per call (the Winograd convolution's
 * transformed tiles, the transposed filters). Allocated and freed per call, glibc gave
 * them back to the system at each free (the heap's top is trimmed past 128 KB-1 MB), so
 * every call page-faulted them in again: 10-14 % of BraggNN's inference on one core.
 * A buffer grows when a call needs more and lives until its thread exits (a pthread key's
 * destructor frees it) or cpu_scratch_release is called. Contents are undefined: a
 * kernel that relies on zeros writes them. */
#include "nn/nn_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float *p;
    size_t n; /* floats */
} scratch_buf;

static _Thread_local scratch_buf bufs[CPU_SCRATCH_SLOTS];
static _Thread_local int registered;

typedef struct { /* what cpu_scratch_keep recorded for a slot; valid until it is freed */
    int valid;
    int key[CPU_SCRATCH_KEY];
    size_t n_w;
} kept_state;
static _Thread_local kept_state kept[CPU_SCRATCH_SLOTS];
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void release_slots(void *slots)
{
    scratch_buf *b = slots;
    for (int i = 0; i < CPU_SCRATCH_SLOTS; i++) {
        free(b[i].p);
        b[i].p = NULL, b[i].n = 0;
    }
}

static void make_key(void) { (void)pthread_key_create(&exit_key, release_slots); }

float *cpu_scratch(int slot, size_t n)
{
    scratch_buf *b = &bufs[slot];
    if (b->p && b->n >= n)
        return b->p;
    if (!registered) { /* the thread's buffers are freed when it exits */
        pthread_once(&key_once, make_key);
        registered = pthread_setspecific(exit_key, bufs) == 0;
    }
    kept[slot].valid = 0;
    free(b->p);
    b->n = n + n / 4; /* room to grow before the next reallocation */
    b->p = malloc(sizeof(float) * (b->n ? b->n : 1));
    if (!b->p)
        b->n = 0;
    return b->p;
}

void cpu_scratch_release(void)
{
    memset(kept, 0, sizeof kept);
    release_slots(bufs);
}

/* The slot holds the weights' copy (n_w floats), then what derives from them. */
float *cpu_scratch_kept(int slot, const float *w, size_t n_w, size_t n,
                        const int key[CPU_SCRATCH_KEY], int *valid)
{
    float *buf = cpu_scratch(slot, n_w + n); /* reallocated: no longer valid */
    if (!buf)
        return NULL;
    const kept_state *k = &kept[slot];
    *valid = k->valid && !memcmp(k->key, key, sizeof k->key) && k->n_w == n_w &&
             !memcmp(buf, w, sizeof(float) * n_w);
    kept[slot].valid = *valid; /* until the kernel has filled them again */
    return buf + n_w;
}

void cpu_scratch_keep(int slot, const float *w, size_t n_w, const int key[CPU_SCRATCH_KEY])
{
    memcpy(bufs[slot].p, w, sizeof(float) * n_w);
    kept_state *k = &kept[slot];
    k->valid = 1, k->n_w = n_w;
    memcpy(k->key, key, sizeof k->key);
}
