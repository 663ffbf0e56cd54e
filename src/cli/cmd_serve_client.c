/* cli/cmd_serve_client.c — `braggflow serve-client`: sends a patch file to a running
 * service, checks every reply and reports throughput, latency and (with true centres)
 * the error in pixels. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/serve.h"
#include "cli/cli.h"

enum { OPT_CONNECT = 4300, OPT_CONCURRENCY, OPT_INFLIGHT, OPT_DTYPE, OPT_REPEAT, OPT_RATE,
       OPT_TIMEOUT, OPT_STATS, OPT_CORE };

static const char *usage =
    "usage: braggflow serve-client --connect ENDPOINT --data patches.h5 [--batch 1]\n"
    "                              [--concurrency 1] [--inflight 1] [--repeat 1]\n"
    "                              [--dtype float32|uint16] [--rate ITEMS_PER_S]\n"
    "                              [--timeout S] [--core N] [--json]\n"
    "       braggflow serve-client --connect ENDPOINT --stats\n\n"
    "Sends every patch of a patch file (sample-peaks / import-peaks layout) to a\n"
    "`braggflow serve` running a braggnn model, --batch patches per request, over\n"
    "--concurrency connections with --inflight requests outstanding on each. Every\n"
    "reply is checked: exactly one per request, well formed, the right number of\n"
    "finite centres. Prints requests, throughput, round-trip latency percentiles, the\n"
    "model hashes that answered (and whether every request sent after a new model first\n"
    "answered was answered by that model or a later one), and, when the file holds true\n"
    "centres, the error in pixels. Exits 2 when any request failed or any reply was\n"
    "missing or malformed. --stats prints the service's statistics (JSON) instead.\n\n"
    "options:\n"
    "  --connect ENDPOINT  the service (e.g. tcp://127.0.0.1:5555)\n"
    "  --data FILE.h5      patches\n"
    "  --batch N           patches per request (default 1)\n"
    "  --concurrency C     connections, one thread each (default 1)\n"
    "  --inflight K        requests outstanding per connection (default 1)\n"
    "  --repeat R          passes over the file (default 1)\n"
    "  --dtype T           float32 (default) or uint16 (counts rounded, clamped)\n"
    "  --rate R            send at R patches/s in all (default: as fast as replies come)\n"
    "  --timeout S         a reply later than S seconds is an error (default 10)\n"
    "  --core N            run the connection threads and ZeroMQ's I/O thread on core N\n"
    "                      (0-based; with serve --core N: lowest batch-1 latency)\n"
    "  --json              one JSON object on stdout\n"
    "  --stats             print the service's statistics and exit\n\n"
    "example:\n"
    "  braggflow serve-client --connect tcp://127.0.0.1:5555 --data test.h5 \\\n"
    "      --batch 64 --concurrency 4 --inflight 2\n";

static void report(const bf_client_config *c, const bf_client_result *r, const bf_patches *p,
                   const bf_peak_errors *pe, int json)
{
    char h[65];
    if (json) {
        printf("{\"requests\": %ld, \"items\": %ld, \"errors\": %ld, \"faults\": %ld, "
               "\"wall_s\": %.4f, \"items_per_s\": %.1f, \"batch\": %d, \"concurrency\": %d, "
               "\"inflight\": %d, \"latency_us\": {\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, "
               "\"p99.9\": %.1f, \"max\": %.1f}, \"swap_order_ok\": %s, \"models\": [",
               r->requests, r->items, r->errors, r->faults, r->wall_s, r->items_per_s, c->batch,
               c->concurrency, c->inflight, r->latency_us[0], r->latency_us[1], r->latency_us[2],
               r->latency_us[3], r->latency_us[4], r->swap_order_ok ? "true" : "false");
        for (int i = 0; i < r->n_hashes; i++) {
            char full[65];
            bf_sha256_digest_hex(r->hashes[i], full);
            printf("%s{\"hash\": \"%s\", \"replies\": %ld}", i ? ", " : "", full,
                   r->hash_replies[i]);
        }
        printf("]");
        if (pe)
            printf(", \"error_px\": {\"mean\": %.4f, \"p50\": %.4f, \"p75\": %.4f, \"p95\": %.4f, "
                   "\"p99.5\": %.4f}",
                   pe->mean, pe->p50, pe->p75, pe->p95, pe->p995);
        printf("}\n");
        return;
    }
    printf("requests      %ld (%ld items, %d per request, %d connection%s x %d in flight)\n",
           r->requests, r->items, c->batch, c->concurrency, c->concurrency == 1 ? "" : "s",
           c->inflight);
    printf("throughput    %.0f items/s over %.3f s\n", r->items_per_s, r->wall_s);
    printf("round trip    p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us\n",
           r->latency_us[0], r->latency_us[1], r->latency_us[2], r->latency_us[3],
           r->latency_us[4]);
    printf("errors        %ld error replies, %ld faults%s%s\n", r->errors, r->faults,
           r->first_fault[0] ? ": " : "", r->first_fault);
    for (int i = 0; i < r->n_hashes; i++) {
        bf_sha256_digest_hex(r->hashes[i], h);
        printf("model         %.12s... answered %ld requests\n", h, r->hash_replies[i]);
    }
    if (r->n_hashes > 1)
        printf("swap order    %s\n", r->swap_order_ok ? "ok (no request answered by an older "
                                                        "model after a newer one answered)"
                                                      : "VIOLATED");
    if (pe)
        printf("error (px)    mean %.4f  p50 %.4f  p75 %.4f  p95 %.4f  p99.5 %.4f  (%ld patches)\n",
               pe->mean, pe->p50, pe->p75, pe->p95, pe->p995, p->n);
}

int cmd_serve_client(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"connect", required_argument, 0, OPT_CONNECT},
        {"data", required_argument, 0, OPT_DATA},
        {"batch", required_argument, 0, OPT_BATCH},
        {"concurrency", required_argument, 0, OPT_CONCURRENCY},
        {"inflight", required_argument, 0, OPT_INFLIGHT},
        {"repeat", required_argument, 0, OPT_REPEAT},
        {"dtype", required_argument, 0, OPT_DTYPE},
        {"rate", required_argument, 0, OPT_RATE},
        {"timeout", required_argument, 0, OPT_TIMEOUT},
        {"core", required_argument, 0, OPT_CORE},
        {"json", no_argument, 0, OPT_JSON},
        {"stats", no_argument, 0, OPT_STATS},
        {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0}};
    bf_client_config cfg;
    bf_client_config_defaults(&cfg);
    cfg.connect = NULL;
    const char *data = NULL;
    int json = 0, stats = 0, opt, rc = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_CONNECT: cfg.connect = optarg; break;
        case OPT_DATA: data = optarg; break;
        case OPT_BATCH:
            rc = bf_cli_parse_int("serve-client", "--batch", optarg, 1, 65536, &cfg.batch);
            break;
        case OPT_CONCURRENCY:
            rc = bf_cli_parse_int("serve-client", "--concurrency", optarg, 1, 1024,
                                  &cfg.concurrency);
            break;
        case OPT_INFLIGHT:
            rc = bf_cli_parse_int("serve-client", "--inflight", optarg, 1, 4096, &cfg.inflight);
            break;
        case OPT_REPEAT:
            rc = bf_cli_parse_count("serve-client", "--repeat", optarg, 1, 1000000, &cfg.repeat);
            break;
        case OPT_DTYPE:
            if (!strcmp(optarg, "float32"))
                cfg.dtype = BF_DTYPE_F32;
            else if (!strcmp(optarg, "uint16"))
                cfg.dtype = BF_DTYPE_U16;
            else
                rc = bf_cli_usage_error("serve-client", "--dtype '%s': float32 or uint16", optarg);
            break;
        case OPT_RATE:
            rc = bf_cli_parse_positive("serve-client", "--rate", optarg, 1e12,
                                       &cfg.rate_items_per_s);
            break;
        case OPT_TIMEOUT:
            rc = bf_cli_parse_positive("serve-client", "--timeout", optarg, 86400, &cfg.timeout_s);
            break;
        case OPT_CORE:
            rc = bf_cli_parse_int("serve-client", "--core", optarg, 0, 65535, &cfg.core);
            break;
        case OPT_JSON: json = 1; break;
        case OPT_STATS: stats = 1; break;
        default: return bf_cli_bad_option("serve-client", opt == ':' ? ':' : '?', argv);
        }
    }
    if (rc)
        return rc;
    if (optind < argc)
        return bf_cli_usage_error("serve-client", "unexpected argument '%s'", argv[optind]);
    if (!cfg.connect || (!stats && !data))
        return bf_cli_usage_error("serve-client", "--connect and --data (or --stats) are required");
    bf_error err = {0};
    if (stats) {
        char *text = NULL;
        if (bf_client_stats(cfg.connect, cfg.timeout_s, &text, &err) != BF_OK)
            return bf_cli_fail(&err);
        printf("%s\n", text);
        free(text);
        return BF_EXIT_OK;
    }
    bf_patches p;
    memset(&p, 0, sizeof p);
    if (bf_patches_read_h5(data, &p, &err) != BF_OK)
        return bf_cli_fail(&err);
    bf_client_result r;
    bf_status st = bf_client_run(&cfg, &p, &r, &err);
    bf_peak_errors pe;
    int have_truth = 0;
    if (st == BF_OK && p.centre && r.faults == 0 && r.errors == 0)
        have_truth = (st = bf_peak_errors_of(r.centre_rc, p.centre, p.n, &pe, &err)) == BF_OK;
    if (st == BF_OK)
        report(&cfg, &r, &p, have_truth ? &pe : NULL, json);
    int failed = st == BF_OK && (r.faults || r.errors || !r.swap_order_ok);
    if (failed)
        fprintf(stderr, "braggflow: serve-client: %ld error replies, %ld faults%s%s%s\n",
                r.errors, r.faults, r.first_fault[0] ? " (" : "", r.first_fault,
                r.first_fault[0] ? ")" : "");
    bf_client_result_free(&r);
    bf_patches_free(&p);
    if (st != BF_OK)
        return bf_cli_fail(&err);
    return failed ? BF_EXIT_FAIL : BF_EXIT_OK;
}
