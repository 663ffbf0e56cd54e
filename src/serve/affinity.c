/* serve/affinity.c — a service's or client's ZeroMQ I/O thread on a chosen core
 * (serve --core, serve-client --core; docs/serve.md §Latency).
 *
 * A batch-1 round trip is a chain of thread hand-offs (application thread -> I/O
 * thread -> TCP -> the peer's I/O thread -> its application thread, and back). Each
 * hand-off to a thread on another core that sleeps costs a cross-core wake-up; on a
 * virtual machine whose idle vCPUs halt that is 40-50 us, more than the model's own
 * batch-1 time. Threads that hand off to each other on one core wake without one. */
#include <zmq.h>

#include "serve/service_internal.h"

bf_status bf_zmq_io_on_core(void *zctx, int core, const char *who, bf_error *err)
{
    int cpus[64];
    char why[256];
    int n = bf_core_os_cpus(core, cpus, 64, why, sizeof why);
    if (n <= 0)
        return bf_error_set(err, BF_ERR_INVALID, "%s: --core %d: %s", who, core,
                            n < 0 ? why : "the core has no CPUs");
    /* Read when the context starts its I/O thread, at its first socket. */
    for (int i = 0; i < n; i++)
        if (zmq_ctx_set(zctx, ZMQ_THREAD_AFFINITY_CPU_ADD, cpus[i]))
            return bf_error_set(err, BF_ERR_INVALID, "%s: --core %d: zmq refuses CPU %d: %s",
                                who, core, cpus[i], zmq_strerror(zmq_errno()));
    return BF_OK;
}
