#!/usr/bin/env bash
# make demo: the most complete path that exists today, on braggflow's own
# example structures: list reflections, simulate one pattern (TOF, lab X-ray, CW
# neutron), then simulate a labelled three-class dataset, and summarise what was made.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
bf="$build/braggflow"
out="$root/out/demo"
mkdir -p "$out"
inst=examples/instrument/nomad-like-bank4.instprm
cd "$root"

echo "== braggflow $("$bf" --version | cut -d' ' -f2): demo (outputs in out/demo/)"
echo
echo "-- 1. Reflections of tetragonal BaTiO3 (P4mm), strongest five by F2:"
"$bf" reflections --cif examples/cif/BaTiO3-P4mm.cif --instprm "$inst" \
    --cell "3.9945 3.9945 4.0335 90 90 90" > "$out/BaTiO3-reflections.csv"
n_refl=$(($(wc -l < "$out/BaTiO3-reflections.csv") - 1))
# awk, not head, ends the pipes: head would SIGPIPE sort under pipefail
{ awk 'NR == 1' "$out/BaTiO3-reflections.csv"
  tail -n +2 "$out/BaTiO3-reflections.csv" | sort -t, -k7 -g -r | awk 'NR <= 5'; } | column -s, -t
echo "   ($n_refl reflections in the TOF window; full list: out/demo/BaTiO3-reflections.csv)"
echo
# plot CSV UNIT: a terminal plot of a simulate CSV, 72 columns, each the maximum of
# its share of the grid
plot() {
    awk -F, -v unit="$2" 'NR > 1 { n++; t[n] = $1; y[n] = $2; if ($2 > top) top = $2 }
    END {
        cols = 72; rows = 8
        for (c = 1; c <= cols; c++) {
            v = 0
            for (i = int((c - 1) * n / cols) + 1; i <= int(c * n / cols); i++) if (y[i] > v) v = y[i]
            h[c] = v / top
        }
        for (r = rows; r >= 1; r--) {
            line = "   |"
            for (c = 1; c <= cols; c++) line = line (h[c] * rows >= r - 0.5 ? "#" : " ")
            print line
        }
        axis = "   +"; for (c = 1; c <= cols; c++) axis = axis "-"; print axis
        printf "    %s %.4g .. %.4g, %d points, maximum intensity %.4g\n", unit, t[1], t[n], n, top
    }' "$1"
}
echo "-- 2. One NaCl pattern on GSAS-II's TOF grid:"
"$bf" simulate --cif examples/cif/NaCl.cif --instprm "$inst" \
    --cell "5.6402 5.6402 5.6402 90 90 90" --out "$out/NaCl.csv"
plot "$out/NaCl.csv" "TOF (us)"
echo "   The same crystal on a lab Cu Ka1/Ka2 X-ray diffractometer (GSAS-II's default"
echo "   instrument, 2theta 10-120 deg by 0.01) and on a 1.54 A CW neutron one:"
"$bf" simulate --cif examples/cif/NaCl.cif --instprm examples/instrument/cuka-lab.instprm \
    --cell "5.6402 5.6402 5.6402 90 90 90" --tth-min 10 --tth-max 120 --tth-step 0.01 \
    --out "$out/NaCl-xray.csv"
plot "$out/NaCl-xray.csv" "2theta (deg)"
"$bf" simulate --cif examples/cif/NaCl.cif --instprm examples/instrument/cw-neutron-1.54A.instprm \
    --cell "5.6402 5.6402 5.6402 90 90 90" --tth-min 5 --tth-max 150 --tth-step 0.05 \
    --out "$out/NaCl-cwn.csv"
plot "$out/NaCl-cwn.csv" "2theta (deg)"
echo
echo "-- 3. A labelled dataset: 100 cubic + 100 trigonal + 100 tetragonal patterns"
"$bf" sample --config examples/sample-small.ini --out "$out/small.h5" --threads 0
if command -v h5ls >/dev/null 2>&1; then h5ls "$out/small.h5" | sed 's/^/   /'; fi
echo
echo "-- 4. An active-learning campaign (seed 001's E1, small): simulate -> train -> AL,"
echo "      streaming workflow, 3 phases (examples/campaigns/seed001-e1-small.ini)"
rm -rf "$out/campaign"
"$bf" campaign examples/campaigns/seed001-e1-small.ini --out "$out/campaign" | sed 's/^/   /'
echo
echo "-- 5. Its report: task Gantt chart, test metrics per phase, where AL sampled, patterns"
"$bf" report "$out/campaign" | sed 's/^/   /'
echo "   (open out/demo/campaign/report.html in a browser; self-contained, no network)"
echo
echo "-- 6. The campaign's final model on a new pattern: NaCl-type, cubic, a = 4.2 A"
"$bf" simulate --cif examples/cif/NaCl.cif --instprm "$inst" \
    --cell "4.2 4.2 4.2 90 90 90" --out "$out/NaCl-4.2.csv"
"$bf" predict --model "$out/campaign/models/phase-2.safetensors" --csv "$out/NaCl-4.2.csv" |
    column -s, -t | sed 's/^/   /'
echo
echo "-- 7. BraggNN: 8000 simulated Bragg-peak patches -> train 12 epochs -> centres of 2000"
echo "      new patches, next to the conventional pseudo-Voigt fit's (DESIGN §7)"
"$bf" sample-peaks --count 8000 --seed 1 --out "$out/peaks-train.h5" 2>&1 | sed 's/^/   /'
"$bf" sample-peaks --count 1000 --seed 2 --out "$out/peaks-val.h5" 2>&1 | sed 's/^/   /'
"$bf" sample-peaks --count 2000 --seed 3 --out "$out/peaks-test.h5" 2>&1 | sed 's/^/   /'
"$bf" fit-peaks --data "$out/peaks-test.h5" --out "$out/peaks-fits.h5" 2>&1 | sed 's/^/   /'
"$bf" train --model braggnn --train "$out/peaks-train.h5" --val "$out/peaks-val.h5" \
    --out "$out/braggnn.safetensors" --epochs 12 --lr 1e-3 |
    awk 'NR == 1 || /^best epoch/ || /^checkpoint/' | sed 's/^/   /'
"$bf" peaks --model "$out/braggnn.safetensors" --data "$out/peaks-test.h5" \
    --fits "$out/peaks-fits.h5" --out "$out/peaks-centres.csv" 2>&1 | sed 's/^/   /'
echo
echo "-- 8. At the instrument (DESIGN §9): the BraggNN as ONNX, served over ZeroMQ, and"
echo "      seed 002's cost model (the full retrain loop: make edge-demo)"
"$bf" export --model "$out/braggnn.safetensors" --out "$out/braggnn.onnx" 2>&1 | sed 's/^/   /'
rm -f "$out/serve.sock"
bf_abs=$(cd "$(dirname "$bf")" && pwd)/braggflow
# a relative ipc path: the socket name must stay under 107 bytes
(cd "$out" && exec "$bf_abs" serve --model braggnn.safetensors --bind ipc://serve.sock \
    --quiet) &
server=$!
trap 'kill "$server" 2>/dev/null' EXIT
for _ in $(seq 100); do
    (cd "$out" && "$bf_abs" serve-client --connect ipc://serve.sock --stats --timeout 0.2) \
        >/dev/null 2>&1 && break
    sleep 0.1
done
(cd "$out" && "$bf_abs" serve-client --connect ipc://serve.sock --data peaks-test.h5 \
    --batch 64 --concurrency 4 --inflight 2 --repeat 5) | sed 's/^/   /'
kill -TERM "$server"
wait "$server"
trap - EXIT
echo "   (the service drained and exited 0 on SIGTERM)"
"$bf" plan | tail -n 1 | sed 's/^/   /'
echo
echo "Done. Next: braggflow --help; README.md documents every command and INI key."
