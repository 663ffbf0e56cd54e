# braggflow — the two commands a user needs:
#   make demo   install dependencies, build, run the main job on built-in examples
#   make test   install dependencies, build, run the whole test suite
# Other targets: build, edge-demo (seed 002's retrain loop on one machine: serve,
# drift, label, fine-tune, swap, its Table 1 here; about a minute on 2 cores), asan
# (unit tests under AddressSanitizer+UBSan), fuzz (libFuzzer targets, FUZZ_SECONDS
# each), bench, clean.

BUILD        ?= build
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 20

.PHONY: all deps build test demo edge-demo asan fuzz bench clean

all: build

deps:
	./scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

demo: build
	./scripts/demo.sh $(BUILD)

edge-demo: build
	./scripts/edge-demo.sh $(BUILD)

# asan and fuzz build without the CUDA backend (-DBF_CUDA=OFF): nvcc's objects are not
# instrumented, the CUDA runtime does not start under ASan's default shadow mapping, and
# the fuzz build's clang is not nvcc's host compiler; the CUDA code has no GPU here anyway.
asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBF_SANITIZE=ON -DBF_CUDA=OFF >/dev/null
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -L unit -j$(JOBS)

fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DBF_FUZZ=ON -DBF_CUDA=OFF >/dev/null
	cmake --build build-fuzz -j$(JOBS)
	./scripts/run-fuzzers.sh build-fuzz $(FUZZ_SECONDS)

bench: build
	./$(BUILD)/bench/bench_simulate
	./$(BUILD)/bench/train_throughput --threads 2
	./$(BUILD)/bench/train_throughput --model braggnn --threads 2
	./$(BUILD)/bench/bench_fit_peaks --threads 2
	./$(BUILD)/bench/bench_serve --threads 2
	./$(BUILD)/bench/workflow_speedup
	./bench/mpi_scaling.sh ./$(BUILD)/braggflow

clean:
	rm -rf $(BUILD) build-asan build-fuzz
