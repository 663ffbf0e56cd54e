/* core/pin.c — binding the calling thread to a range of cores (hwloc), so a
 * campaign's simulation and training tasks do not fight over the same cores.
 * OpenMP teams started later by the thread inherit its binding. */
#include "braggflow/core.h"

#include <hwloc.h>

int bf_pin_thread_to_cores(int first, int count, char *why, size_t whysz)
{
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) {
        snprintf(why, whysz, "hwloc cannot start");
        return -1;
    }
    int rc = -1;
    if (hwloc_topology_load(topo) != 0) {
        snprintf(why, whysz, "hwloc cannot read the topology");
        goto done;
    }
    int cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    if (count < 1 || first < 0 || first + count > cores) {
        snprintf(why, whysz, "cores %d..%d requested, the machine has %d", first,
                 first + count - 1, cores);
        goto done;
    }
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set) {
        snprintf(why, whysz, "out of memory");
        goto done;
    }
    for (int i = first; i < first + count; i++) {
        hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, (unsigned)i);
        if (core)
            hwloc_bitmap_or(set, set, core->cpuset);
    }
    rc = hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_THREAD);
    if (rc != 0)
        snprintf(why, whysz, "hwloc_set_cpubind refused");
    hwloc_bitmap_free(set);
done:
    hwloc_topology_destroy(topo);
    return rc;
}
