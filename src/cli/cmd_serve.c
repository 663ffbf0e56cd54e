/* cli/cmd_serve.c — `braggflow serve`: the ZeroMQ inference service (docs/serve.md). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "braggflow/serve.h"
#include "cli/cli.h"

enum { OPT_BIND = 4200, OPT_MAX_BATCH, OPT_MAX_DELAY, OPT_WORKERS, OPT_NO_WATCH, OPT_MAX_ITEMS,
       OPT_QUIET, OPT_BUSY_POLL, OPT_CORE };

static const char *usage =
    "usage: braggflow serve --model M.safetensors [--bind tcp://127.0.0.1:5555]\n"
    "                       [--max-batch 512] [--max-delay-us 200] [--busy-poll-us 0]\n"
    "                       [--core N] [--workers 1] [--threads N]\n"
    "                       [--max-request-items 65536] [--no-watch] [--quiet]\n\n"
    "Serves a peaks (braggnn) or structure (structure_net) checkpoint over ZeroMQ: a ROUTER\n"
    "socket takes binary requests (docs/serve.md, README \"Wire format\") and answers each\n"
    "with exactly one reply carrying the request id and the SHA-256 of the model that\n"
    "computed it; replies may come in any order. Requests are batched dynamically: a\n"
    "worker takes up to --max-batch items, waiting at most --max-delay-us after the oldest\n"
    "queued request. Malformed requests get an error reply naming the fault.\n"
    "The model file is watched: when it is replaced (an atomic rename, or a finished\n"
    "write) the new file is loaded and validated completely and then swapped in; batches\n"
    "already running finish on the old model; a file that fails to load is reported and\n"
    "the old model keeps serving. SIGTERM or SIGINT drains the requests in flight and\n"
    "exits 0. A stats request (`serve-client --stats`) returns counters, the batch-size\n"
    "histogram, latency percentiles and the current model.\n\n"
    "options:\n"
    "  --model FILE          checkpoint (train, or a bare BraggNN state_dict)\n"
    "  --bind ENDPOINT       ZeroMQ endpoint (default tcp://127.0.0.1:5555; ipc:// works)\n"
    "  --max-batch N         items per batch (default 512)\n"
    "  --max-delay-us US     longest wait for a fuller batch (default 200)\n"
    "  --busy-poll-us US     after a request, spin on the socket this long while no batch\n"
    "                        computes instead of sleeping: lower batch-1 latency for a\n"
    "                        core kept busy (default 0: sleep; 1000 halves the round\n"
    "                        trip on a VM)\n"
    "  --core N              run the thread that receives, answers lone requests and sends\n"
    "                        replies, and ZeroMQ's I/O thread, on core N (0-based): a\n"
    "                        batch-1 round trip with a client on the same core (serve-client\n"
    "                        --core N) then has no cross-core wake-up (default: unbound;\n"
    "                        docs/serve.md \"Latency\")\n"
    "  --workers N           worker threads, each with its own model copy (default 1)\n"
    "  --threads N           compute threads per worker (0 or absent: cores / workers)\n"
    "  --max-request-items N largest request accepted (default 65536)\n"
    "  --no-watch            do not watch the model file\n"
    "  --quiet               no log lines on stderr\n\n"
    "example:\n"
    "  braggflow serve --model peaks.safetensors --bind tcp://127.0.0.1:5555 &\n"
    "  braggflow serve-client --connect tcp://127.0.0.1:5555 --data test.h5 --batch 64\n";

static bf_server *volatile g_server;
static volatile sig_atomic_t g_stop_requested;

/* Installed before the model loads: a SIGTERM during start-up still ends in a drain
 * (of nothing) and exit 0, not in the default action. */
static void on_signal(int sig)
{
    (void)sig;
    g_stop_requested = 1;
    if (g_server)
        bf_server_stop(g_server);
}

int cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, 0, OPT_MODEL},
        {"bind", required_argument, 0, OPT_BIND},
        {"max-batch", required_argument, 0, OPT_MAX_BATCH},
        {"max-delay-us", required_argument, 0, OPT_MAX_DELAY},
        {"busy-poll-us", required_argument, 0, OPT_BUSY_POLL},
        {"core", required_argument, 0, OPT_CORE},
        {"workers", required_argument, 0, OPT_WORKERS},
        {"threads", required_argument, 0, OPT_THREADS},
        {"max-request-items", required_argument, 0, OPT_MAX_ITEMS},
        {"no-watch", no_argument, 0, OPT_NO_WATCH},
        {"quiet", no_argument, 0, OPT_QUIET},
        {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0}};
    bf_serve_config cfg;
    bf_serve_config_defaults(&cfg);
    long v;
    int opt, rc = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_MODEL: cfg.model_path = optarg; break;
        case OPT_BIND: cfg.bind = optarg; break;
        case OPT_MAX_BATCH:
            rc = bf_cli_parse_int("serve", "--max-batch", optarg, 1, 65536, &cfg.max_batch);
            break;
        case OPT_MAX_DELAY:
            rc = bf_cli_parse_int("serve", "--max-delay-us", optarg, 0, 10000000,
                                  &cfg.max_delay_us);
            break;
        case OPT_BUSY_POLL:
            rc = bf_cli_parse_int("serve", "--busy-poll-us", optarg, 0, 10000000,
                                  &cfg.busy_poll_us);
            break;
        case OPT_CORE:
            rc = bf_cli_parse_int("serve", "--core", optarg, 0, 65535, &cfg.core);
            break;
        case OPT_WORKERS:
            rc = bf_cli_parse_int("serve", "--workers", optarg, 1, 256, &cfg.workers);
            break;
        case OPT_THREADS:
            rc = bf_cli_parse_int("serve", "--threads", optarg, 0, 4096, &cfg.threads);
            break;
        case OPT_MAX_ITEMS:
            if (!(rc = bf_cli_parse_count("serve", "--max-request-items", optarg, 1, 1 << 24, &v)))
                cfg.max_request_items = (uint32_t)v;
            break;
        case OPT_NO_WATCH: cfg.watch = 0; break;
        case OPT_QUIET: cfg.quiet = 1; break;
        default: return bf_cli_bad_option("serve", opt == ':' ? ':' : '?', argv);
        }
    }
    if (rc)
        return rc;
    if (optind < argc)
        return bf_cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if (!cfg.model_path)
        return bf_cli_usage_error("serve", "--model is required");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    bf_error err = {0};
    bf_server *s = NULL;
    bf_status st = bf_server_start(&cfg, &s, &err);
    if (st == BF_OK) {
        g_server = s;
        if (g_stop_requested)   /* the signal came while the model loaded */
            bf_server_stop(s);
        st = bf_server_run(s, &err);
        g_server = NULL;
    }
    bf_server_destroy(s);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
