#!/usr/bin/env bash
# make demo: the most complete path that exists today, on braggflow's own
# example structures: list reflections, simulate one pattern, then simulate a
# labelled three-class dataset, and summarise what was made.
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
echo "-- 2. One NaCl pattern on GSAS-II's TOF grid:"
"$bf" simulate --cif examples/cif/NaCl.cif --instprm "$inst" \
    --cell "5.6402 5.6402 5.6402 90 90 90" --out "$out/NaCl.csv"
# a terminal plot: 72 columns, each the maximum of its share of the grid
awk -F, 'NR > 1 { n++; t[n] = $1; y[n] = $2; if ($2 > top) top = $2 }
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
        printf "    TOF %.0f .. %.0f us, %d points, maximum intensity %.4g\n", t[1], t[n], n, top
    }' "$out/NaCl.csv"
echo
echo "-- 3. A labelled dataset: 100 cubic + 100 trigonal + 100 tetragonal patterns"
"$bf" sample --config examples/sample-small.ini --out "$out/small.h5" --threads 0
if command -v h5ls >/dev/null 2>&1; then h5ls "$out/small.h5" | sed 's/^/   /'; fi
echo
echo "-- 4. Train the structure model (seed 001) on 3,000 simulated patterns, then test it"
for set in train:101:1000 val:102:200 test:103:200; do
    IFS=: read -r name seed count <<<"$set"
    sed -e "s/^seed = .*/seed = $seed/" -e "s/^count = .*/count = $count/" \
        -e "s/^a = 4.5 5.5/a = 2.5 5.5/" -e "s|= cif/|= $PWD/examples/cif/|" \
        -e "s|= instrument/|= $PWD/examples/instrument/|" examples/sample-small.ini >"$out/$name.ini"
    "$bf" sample --config "$out/$name.ini" --out "$out/$name.h5" --threads 0
done
"$bf" train --train "$out/train.h5" --val "$out/val.h5" --out "$out/model.safetensors" \
    --epochs 25 --batch 128 --lr 1e-3 --threads 0 | sed 's/^/   /'
echo
echo "-- 5. Evaluate on the independent test set"
"$bf" evaluate --model "$out/model.safetensors" --data "$out/test.h5" | sed 's/^/   /'
echo
echo "-- 6. Predict a new pattern: NaCl-type, cubic, a = 4.2 A"
"$bf" simulate --cif examples/cif/NaCl.cif --instprm "$inst" \
    --cell "4.2 4.2 4.2 90 90 90" --out "$out/NaCl-4.2.csv"
"$bf" predict --model "$out/model.safetensors" --csv "$out/NaCl-4.2.csv" | column -s, -t |
    sed 's/^/   /'
echo
echo "Done. Next: braggflow --help; README.md documents every command and INI key."
