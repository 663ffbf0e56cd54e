#!/usr/bin/python3
"""scaling_model.py — seed 001 E2's serial and streaming campaign times on 1, 2, 4 nodes, on paper.

    bench/mpi_scaling.sh > m.json && python3 tools/scaling_model.py [--bw-gbs 25] m.json

Prints the README table "Scaling beyond one node (a model)". Standard library only.
Every input is either measured (the JSON of bench/mpi_scaling.sh) or a constant below,
each with where it comes from. Time per training phase on N nodes:
    epochs * (n_train / rate(N) + steps * allreduce(N)),  steps = ceil(n_train / 1024)
    allreduce(N) = 2(N-1)/N * bytes / BW + 2(N-1) * LAT   (ring over the N nodes; the
                   sum inside a node over NVLink / shared memory is taken as free)
and simulation of n patterns on c cores: n / (c * per-core rate), linear in c.
Serial: every S_k then every T_k, each on the whole node(s). Streaming (seed 001 Fig. 3):
S_0 on all cores, then PG_k = max(T_k, S'_k) with S'_k on the simulation cores, then S_k+1.
AL tasks (~1 % of E1's serial total, Table III) are left out.
"""
import json
import math
import sys

# --- seed 001 (Wang et al.), constants quoted from the paper ------------------------------
BATCH = 1024  # Table II, E2
EPOCHS = [400, 300, 250, 200]  # Table II, T_1..T_4 (our T_0..T_3)
CORES, GPUS = 32, 4  # Sec. V-A: Polaris node, one 32-core EPYC 7543P and four A100
SIM_CORES_STREAM = 24  # Sec. V-D: 2 cores per training rank, 24 left to simulate
# E2 sizes (Table II): 72000 training patterns per class x 3 classes
TRAIN0, VAL, TEST, STUDY, SERIAL_NEW = 216000, 108000, 108000, 216000, 216000
STREAM_HALF, STREAM_LAST = 129600, 216000
# Table III (E1, serial, Polaris node): S_0 simulated 13500 + 6750 + 6750 + 13500 = 40500
# patterns in 362.887 s on 32 cores; T_0 trained 13500 patterns x 400 epochs in 145.536 s
# on 4 GPUs (validation included). These give the paper's own per-core / per-node rates.
PAPER_SIM_PER_CORE = 40500 / 362.887 / CORES
PAPER_TRAIN_PER_NODE = 13500 * 400 / 145.536
# Table V, E2, total seconds (serial, streaming) for 1, 2, 4 nodes
TABLE_V = {"Polaris": [(18318.2, 14812.9), (14062.0, 11840.4), (10701.8, 9455.1)],
           "Perlmutter": [(16523.2, 13587.2), (12803.7, 11104.6), (10123.0, 9073.5)]}

# --- assumptions (not measured anywhere) ------------------------------------------------
BW_BYTES_PER_S = 25e9  # one 200 Gb/s Slingshot-11 / HDR InfiniBand port
LAT_S = 2e-6  # per message


def allreduce_s(nodes, nbytes):
    return 2 * (nodes - 1) / nodes * nbytes / BW_BYTES_PER_S + 2 * (nodes - 1) * LAT_S


def campaign(nodes, sim_all, sim_stream, train_serial, train_stream, nbytes):
    """(serial s, streaming s). sim_*: patterns/s of the node set; train_*: samples/s."""
    def train(n, e, rate):
        return e * (n / rate + math.ceil(n / BATCH) * allreduce_s(nodes, nbytes))

    # serial: S_0 = train + val + test + study, then 3 x 216000 new; T_k on 1..4 x 216000
    serial = (TRAIN0 + VAL + TEST + STUDY + 3 * SERIAL_NEW) / sim_all
    serial += sum(train(TRAIN0 * (k + 1), EPOCHS[k], train_serial) for k in range(4))
    # streaming: S_0 = train + val + test; PG_0 = max(T_0, study); S_1, S_2 = 129600 on all
    # cores, S'_1, S'_2 = 129600 beside T_1, T_2; S_3 = 216000; T_3 last, alone
    n_train = [TRAIN0, TRAIN0 + STREAM_HALF, TRAIN0 + 3 * STREAM_HALF,
               TRAIN0 + 4 * STREAM_HALF + STREAM_LAST]
    beside = [STUDY, STREAM_HALF, STREAM_HALF, 0]
    before = [TRAIN0 + VAL + TEST, STREAM_HALF, STREAM_HALF, STREAM_LAST]
    stream = 0.0
    for k in range(4):
        stream += before[k] / sim_all
        stream += max(train(n_train[k], EPOCHS[k], train_stream), beside[k] / sim_stream)
    return serial, stream


def main():
    global BW_BYTES_PER_S
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--bw-gbs":  # a what-if for the assumed bandwidth
        BW_BYTES_PER_S = float(args[1]) * 1e9
        args = args[2:]
    m = json.load(open(args[0]) if args else sys.stdin)
    if "skipped" in m or "error" in m:
        sys.exit("scaling_model.py: the benchmark did not run: %s" % m)
    nbytes = m["train"]["allreduce_bytes_per_step"]
    # braggflow here: per-core rates from the 2-core runs (the better of the two layouts)
    sim_core = max(m["sample"]["1x2_patterns_per_s"], m["sample"]["2x1_patterns_per_s"]) / 2
    train_core = max(m["train"]["1x2"]["samples_per_s"], m["train"]["2x1"]["samples_per_s"]) / 2

    print("| nodes | Table V Polaris serial / stream (speed-up) | Table V Perlmutter | "
          "model A: paper's task rates + ring all-reduce | "
          "model B: braggflow as measured, CPU-only 32-core nodes |")
    print("|---|---|---|---|---|")
    for i, n in enumerate([1, 2, 4]):
        a = campaign(n, n * CORES * PAPER_SIM_PER_CORE, n * SIM_CORES_STREAM * PAPER_SIM_PER_CORE,
                     n * PAPER_TRAIN_PER_NODE, n * PAPER_TRAIN_PER_NODE, nbytes)
        # B: serial trains on all 32 cores; streaming trains on 8 (4 ranks x 2) and
        # simulates on 24 beside it
        b = campaign(n, n * CORES * sim_core, n * SIM_CORES_STREAM * sim_core,
                     n * CORES * train_core, n * (CORES - SIM_CORES_STREAM) * train_core, nbytes)
        cells = ["%.1f / %.1f (%.2f)" % (s, t, s / t) for s, t in TABLE_V["Polaris"][i:i + 1] +
                 TABLE_V["Perlmutter"][i:i + 1]]
        cells += ["%.0f / %.0f (%.2f)" % (s, t, s / t) for s, t in (a, b)]
        print("| %d (%d GPUs) | %s |" % (n, n * GPUS, " | ".join(cells)))
    print()
    print("inputs: all-reduce %d bytes/step (%d params x 4, measured), BW %.0f GB/s, "
          "latency %.0f us (assumed): %.2f / %.2f ms per step on 2 / 4 nodes" %
          (nbytes, m["train"]["params"], BW_BYTES_PER_S / 1e9, LAT_S * 1e6,
           allreduce_s(2, nbytes) * 1e3, allreduce_s(4, nbytes) * 1e3))
    print("model A: %.2f patterns/s per core, %.0f samples/s per node (seed 001 Table III, E1)" %
          (PAPER_SIM_PER_CORE, PAPER_TRAIN_PER_NODE))
    print("model B: %.0f patterns/s per core, %.0f samples/s per core (measured here)" %
          (sim_core, train_core))


if __name__ == "__main__":
    main()
