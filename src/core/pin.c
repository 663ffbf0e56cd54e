/* core/pin.c — binding the calling thread to a range of cores (hwloc), so a
 * campaign's simulation and training tasks do not fight over the same cores, and
 * naming a core's logical CPUs for libraries that take OS CPU numbers (ZeroMQ's I/O
 * thread, serve --core). OpenMP teams started later by a thread inherit its binding. */
#include "braggflow/core.h"

#include <hwloc.h>

/* A loaded topology (0), or -1 with the reason in why and nothing to destroy. */
static int load_topology(hwloc_topology_t *topo, char *why, size_t whysz)
{
    if (hwloc_topology_init(topo) != 0) {
        snprintf(why, whysz, "hwloc cannot start");
        return -1;
    }
    if (hwloc_topology_load(*topo) != 0) {
        snprintf(why, whysz, "hwloc cannot read the topology");
        hwloc_topology_destroy(*topo);
        return -1;
    }
    return 0;
}

/* The logical CPUs of cores first..first+count-1 (NULL with the reason in why). */
static hwloc_bitmap_t cores_cpuset(hwloc_topology_t topo, int first, int count, char *why,
                                   size_t whysz)
{
    int cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    if (count < 1 || first < 0 || first + count > cores) {
        if (count == 1)
            snprintf(why, whysz, "core %d requested, the machine has %d (0..%d)", first, cores,
                     cores - 1);
        else
            snprintf(why, whysz, "cores %d..%d requested, the machine has %d", first,
                     first + count - 1, cores);
        return NULL;
    }
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set) {
        snprintf(why, whysz, "out of memory");
        return NULL;
    }
    for (int i = first; i < first + count; i++) {
        hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, (unsigned)i);
        if (core)
            hwloc_bitmap_or(set, set, core->cpuset);
    }
    return set;
}

int bf_pin_thread_to_cores(int first, int count, char *why, size_t whysz)
{
    hwloc_topology_t topo;
    if (load_topology(&topo, why, whysz))
        return -1;
    hwloc_bitmap_t set = cores_cpuset(topo, first, count, why, whysz);
    int rc = set ? hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_THREAD) : -1;
    if (set && rc != 0)
        snprintf(why, whysz, "hwloc_set_cpubind refused");
    hwloc_bitmap_free(set);
    hwloc_topology_destroy(topo);
    return rc;
}

int bf_core_os_cpus(int core, int *cpus, int max, char *why, size_t whysz)
{
    hwloc_topology_t topo;
    if (load_topology(&topo, why, whysz))
        return -1;
    hwloc_bitmap_t set = cores_cpuset(topo, core, 1, why, whysz);
    int n = set ? 0 : -1;
    if (set) {
        int cpu;
        hwloc_bitmap_foreach_begin(cpu, set)
            if (n < max)
                cpus[n++] = cpu;
        hwloc_bitmap_foreach_end();
    }
    hwloc_bitmap_free(set);
    hwloc_topology_destroy(topo);
    return n;
}
