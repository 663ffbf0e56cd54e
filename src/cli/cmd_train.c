/* cli/cmd_train.c — `braggflow train`: the structure model on HDF5 datasets. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "braggflow/nn.h"
#include "cli/cli.h"

static const char *usage =
    "usage: braggflow train --train A.h5 --val B.h5 --out model.safetensors [options]\n\n"
    "Trains the multitask structure model (seed 001, DESIGN §4: crystal class by\n"
    "cross-entropy, a, c, alpha with a predicted uncertainty by Eq. 6) on datasets\n"
    "written by `braggflow sample` (either HDF5 layout). Patterns are min-max scaled\n"
    "per pattern; labels are a-3.5, c-3.5, (alpha-30)/90. Adam with gradient-norm\n"
    "clipping; validation after every epoch; the checkpoint with the best validation\n"
    "loss is kept (safetensors with PyTorch state_dict names, loadable by the seed's\n"
    "FullModel), the optimiser state next to it (*.optim.safetensors). One line per\n"
    "epoch on stdout. A loss that becomes NaN stops training (exit 2), keeping the\n"
    "best checkpoint.\n\n"
    "options:\n"
    "  --train FILE.h5     training set\n"
    "  --val FILE.h5       validation set\n"
    "  --out FILE          best-validation checkpoint (*.safetensors)\n"
    "  --model NAME        network (default structure_net)\n"
    "  --epochs N          epochs (default 30)\n"
    "  --batch N           batch size (default 512)\n"
    "  --lr X              Adam learning rate (default 5e-4)\n"
    "  --seed N            initialisation and shuffling seed (default 1)\n"
    "  --threads N         threads (0 or absent: all cores)\n"
    "  --patience N        stop after N epochs without improvement (default 10, 0 = never)\n"
    "  --min-delta X       improvement that resets the patience (default 0)\n"
    "  --clip X            gradient-norm clipping threshold (default 50)\n"
    "  --hidden N          width of fc1 (default 256)\n"
    "  --init FILE         warm start: weights (and optimiser state, if its sidecar\n"
    "                      exists) from a checkpoint; epochs continue its count\n\n"
    "Same data, seed and --threads give identical checkpoints; another thread count\n"
    "changes only the rounding of summed gradients.\n\n"
    "example:\n"
    "  braggflow sample --config examples/sample-small.ini --out train.h5\n"
    "  braggflow train --train train.h5 --val val.h5 --epochs 20 --out model.safetensors\n";

static void print_epoch(const bf_epoch_log *e, void *user)
{
    (void)user;
    printf("epoch %3d/%-3d train %.4f | val loss %.4f class %.4f acc %5.1f%% mse %.2e | "
           "MAE a %.3f A c %.3f A alpha %.2f deg | sigma2 %.2e | %5.0f samples/s %5.1f s%s\n",
           e->epoch, e->epochs, e->train_loss, e->val.loss, e->val.class_loss,
           100 * e->val.accuracy, e->val.mse, e->val.mae[0], e->val.mae[1], e->val.mae[2],
           e->val.mean_sigma2, e->samples_per_s, e->seconds, e->improved ? "  *saved" : "");
    fflush(stdout);
}

static bf_status read_set(const char *path, bf_dataset *d, char sha[65], bf_error *err)
{
    bf_status st = bf_dataset_read_h5(path, d, err);
    if (st == BF_OK)
        st = bf_sha256_file_hex(path, sha, err);
    return st;
}

int cmd_train(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"train", required_argument, 0, OPT_TRAIN},     {"val", required_argument, 0, OPT_VAL},
        {"out", required_argument, 0, OPT_OUT},         {"model", required_argument, 0, OPT_MODEL},
        {"epochs", required_argument, 0, OPT_EPOCHS},   {"batch", required_argument, 0, OPT_BATCH},
        {"lr", required_argument, 0, OPT_LR},           {"seed", required_argument, 0, OPT_SEED},
        {"threads", required_argument, 0, OPT_THREADS},
        {"patience", required_argument, 0, OPT_PATIENCE},
        {"min-delta", required_argument, 0, OPT_MIN_DELTA},
        {"clip", required_argument, 0, OPT_CLIP},       {"hidden", required_argument, 0, OPT_HIDDEN},
        {"init", required_argument, 0, OPT_INIT},       {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0}};
    bf_train_config cfg;
    bf_train_config_defaults(&cfg);
    const char *train_path = NULL, *val_path = NULL;
    long v = 0;
    int opt, rc = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_TRAIN: train_path = optarg; break;
        case OPT_VAL: val_path = optarg; break;
        case OPT_OUT: cfg.out_path = optarg; break;
        case OPT_MODEL: cfg.model = optarg; break;
        case OPT_INIT: cfg.init_path = optarg; break;
        case OPT_EPOCHS:
            rc = bf_cli_parse_count("train", "--epochs", optarg, 1, 1000000, &v);
            cfg.epochs = (int)v;
            break;
        case OPT_BATCH:
            rc = bf_cli_parse_count("train", "--batch", optarg, 1, 65536, &v);
            cfg.batch = (int)v;
            break;
        case OPT_SEED:
            rc = bf_cli_parse_count("train", "--seed", optarg, 0, 0x7fffffffffffffffL, &v);
            cfg.seed = (uint64_t)v;
            break;
        case OPT_THREADS:
            rc = bf_cli_parse_count("train", "--threads", optarg, 0, 4096, &v);
            cfg.threads = (int)v;
            break;
        case OPT_PATIENCE:
            rc = bf_cli_parse_count("train", "--patience", optarg, 0, 1000000, &v);
            cfg.patience = (int)v;
            break;
        case OPT_HIDDEN:
            rc = bf_cli_parse_count("train", "--hidden", optarg, 1, 65536, &v);
            cfg.hidden = (int)v;
            break;
        case OPT_LR: rc = bf_cli_parse_positive("train", "--lr", optarg, 10, &cfg.lr); break;
        case OPT_CLIP:
            rc = bf_cli_parse_positive("train", "--clip", optarg, 1e30, &cfg.clip_norm);
            break;
        case OPT_MIN_DELTA:
            if (bf_parse_double(optarg, &cfg.min_delta) != 0 || !(cfg.min_delta >= 0))
                rc = bf_cli_usage_error("train", "--min-delta: '%s' is not a number >= 0", optarg);
            break;
        default: return bf_cli_bad_option("train", opt == ':' ? ':' : '?', argv);
        }
    }
    if (rc)
        return rc;
    if (optind < argc)
        return bf_cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (!train_path || !val_path || !cfg.out_path)
        return bf_cli_usage_error("train", "--train, --val and --out are required");
    if (!bf_path_has_suffix(cfg.out_path, ".safetensors"))
        return bf_cli_usage_error("train", "--out must end in .safetensors");
    if (!bf_model_kind_find(cfg.model))
        return bf_cli_usage_error("train", "--model: '%s' is not a known model (structure_net)",
                                  cfg.model);

    bf_error err = {0};
    bf_dataset train = {0}, val = {0};
    bf_train_result res;
    cfg.train_name = train_path;
    cfg.val_name = val_path;
    cfg.on_epoch = print_epoch;
    bf_status st = read_set(train_path, &train, cfg.train_sha256, &err);
    if (st == BF_OK)
        st = read_set(val_path, &val, cfg.val_sha256, &err);
    if (st == BF_OK) {
        /* fail now, not after an epoch, when --out cannot be written */
        bf_atomic_file probe = {0};
        st = bf_atomic_begin(&probe, cfg.out_path, 1, &err);
        bf_atomic_abort(&probe);
    }
    if (st == BF_OK) {
        printf("braggflow train: %ld training, %ld validation patterns of %d points; "
               "batch %d, lr %g, seed %llu\n", train.n, val.n, train.length, cfg.batch, cfg.lr,
               (unsigned long long)cfg.seed);
        st = bf_train(&cfg, &train, &val, &res, &err);
    }
    if (st == BF_OK) {
        char optim[4200];
        bf_checkpoint_optim_path(cfg.out_path, optim, sizeof optim);
        printf("best epoch %d: val loss %.4f, accuracy %.2f%%, mse %.3e (predicting the mean: "
               "%.3e)%s\ncheckpoint %s (optimiser state %s); %.1f s\n", res.best_epoch,
               res.best_val_loss, 100 * res.best_val.accuracy, res.best_val.mse,
               res.best_val.mse_baseline, res.stopped_early ? "; stopped early" : "",
               cfg.out_path, optim, res.train_seconds);
    }
    bf_dataset_free(&train);
    bf_dataset_free(&val);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
