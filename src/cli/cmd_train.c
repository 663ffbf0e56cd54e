/* cli/cmd_train.c — `braggflow train`: any registered model on its task's HDF5 files
 * (structure_net on `sample` datasets, braggnn on peak patch files). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/dist.h"
#include "braggflow/nn.h"
#include "braggflow/task.h"
#include "cli/cli.h"

enum { OPT_AUGMENT = 4000, OPT_FC, OPT_LR_SCALING, OPT_WARMUP, OPT_LOG_JSON, OPT_BUCKET };

static const char *usage =
    "usage: braggflow train --train A.h5 --val B.h5 --out model.safetensors [options]\n"
    "       braggflow train --model braggnn --train P.h5 --val Q.h5 --out m.safetensors\n\n"
    "structure_net (default): the multitask structure model (seed 001, DESIGN §4:\n"
    "crystal class by cross-entropy, a, c, alpha with a predicted uncertainty by\n"
    "Eq. 6) on datasets written by `braggflow sample` (either HDF5 layout).\n"
    "Patterns are min-max scaled per pattern; labels are a-3.5, c-3.5,\n"
    "(alpha-30)/90. Adam with gradient-norm clipping; validation after every epoch;\n"
    "the checkpoint with the best validation loss is kept (safetensors with PyTorch state_dict names, loadable by the seed's\n"
    "FullModel), the optimiser state next to it (*.optim.safetensors). One line per\n"
    "epoch on stdout. A loss that becomes NaN stops training (exit 2), keeping the\n"
    "best checkpoint.\n\n"
    "braggnn: trains BraggNN (DESIGN §7) on peak patch files (`sample-peaks`,\n"
    "`import-peaks`: the patch layout, with true centres): patches min-max scaled\n"
    "per patch, MSE on the centre scaled as (col, row) / S; Adam lr 3e-4 and no clipping\n"
    "by default; each epoch prints the validation error in pixels (mean, 50/75/95/\n"
    "99.5th percentiles). The model's patch size is the files' (S x S), or S - 2 with\n"
    "--augment, which moves each training crop by a uniform integer in [-1, 1] per\n"
    "axis as BraggNN does (the files then need that 1-pixel margin).\n\n"
    "options:\n"
    "  --train FILE.h5     training set\n"
    "  --val FILE.h5       validation set\n"
    "  --out FILE          best-validation checkpoint (*.safetensors)\n"
    "  --model NAME        structure_net (default) or braggnn\n"
    "  --epochs N          epochs (default 30)\n"
    "  --batch N           batch size (default 512)\n"
    "  --lr X              Adam learning rate (default 5e-4; braggnn 3e-4)\n"
    "  --seed N            initialisation and shuffling seed (default 1)\n"
    "  --threads N         threads (0 or absent: all cores)\n"
    BF_CLI_DEVICE_HELP
    "  --patience N        stop after N epochs without improvement (default 10, 0 = never)\n"
    "  --min-delta X       improvement that resets the patience (default 0)\n"
    "  --clip X            gradient-norm clipping threshold (default 50; braggnn none)\n"
    "  --hidden N          structure_net: width of fc1 (default 256)\n"
    "  --augment           braggnn: +-1 pixel crop shifts (patches with a 1-pixel margin)\n"
    "  --fc A,B,C,D        braggnn: dense widths (default 16,8,4,2, the published model)\n"
    "  --init FILE         warm start: weights (and optimiser state, if its sidecar\n"
    "                      exists) from a checkpoint; epochs continue its count\n"
    "  --log-json FILE     one JSON line per epoch (losses to 17 digits, samples/s,\n"
    "                      seconds spent waiting for gradient sums), written at the end\n"
    "  --lr-scaling S      under MPI: none (default: --batch is the global batch, so the\n"
    "                      problem is the 1-rank one), sqrt (lr * sqrt(ranks), seed 001)\n"
    "                      or linear (lr * ranks, warmed up; Horovod)\n"
    "  --warmup-epochs N   linear scaling: epochs from lr to lr * ranks (default 5)\n"
    "  --bucket-floats N   under MPI: gradients summed in buckets of N floats, each\n"
    "                      started as backward finishes it (default 262144)\n\n"
    "Under mpirun (`mpirun -np 4 braggflow train ...`) every rank reads only its shard of\n"
    "--train (rows [n r/P, n (r+1)/P); rank 0 alone hashes the file) and trains a copy on\n"
    "the members of each global batch (the 1-rank batch order) that it holds, gradients\n"
    "are summed across ranks while backward runs, validation is read whole and predicted\n"
    "sharded, and rank 0 alone prints and writes. Same seed and --batch give the 1-rank\n"
    "losses up to float summation order.\n\n"
    "Same data, seed and --threads give identical checkpoints; another thread count\n"
    "changes only the rounding of summed gradients.\n\n"
    "example:\n"
    "  braggflow sample --config examples/sample-small.ini --out train.h5\n"
    "  braggflow train --train train.h5 --val val.h5 --epochs 20 --out model.safetensors\n"
    "  braggflow sample-peaks --out ptrain.h5 && braggflow sample-peaks --seed 2 --out pval.h5\n"
    "  braggflow train --model braggnn --train ptrain.h5 --val pval.h5 --out peaks.safetensors\n"
    "  mpirun -np 2 braggflow train --threads 1 --train train.h5 --val val.h5 --out m.safetensors\n";

static const char *ranks_note(const bf_train_config *cfg);

/* --log-json: rank 0's epoch lines, committed only when training succeeds. */
typedef struct {
    bf_atomic_file af;
    int open;
    void (*print)(const bf_epoch_log *e, void *user);
} epoch_sink;

static void log_epoch(const bf_epoch_log *e, void *user)
{
    epoch_sink *k = user;
    k->print(e, NULL);
    if (k->open)
        fprintf(k->af.fp, "{\"epoch\":%d,\"train_loss\":%.17g,\"val_score\":%.17g,"
                "\"samples_per_s\":%.6g,\"seconds\":%.6g,\"steps\":%ld,\"allreduce_s\":%.6g,"
                "\"improved\":%d}\n", e->epoch, e->train_loss, e->val_score, e->samples_per_s,
                e->seconds, e->steps, e->allreduce_s, e->improved);
}

/* Commits the epoch log when training succeeded (st), else drops it. */
static bf_status finish_log(epoch_sink *k, bf_status st, bf_error *err)
{
    if (!k->open)
        return st;
    k->open = 0;
    if (st == BF_OK)
        return bf_atomic_commit(&k->af, err);
    bf_atomic_abort(&k->af);
    return st;
}

static void print_structure_epoch(const bf_epoch_log *e, void *user)
{
    const bf_metrics *v = e->task_metrics;
    printf("epoch %3d/%-3d train %.4f | val loss %.4f class %.4f acc %5.1f%% mse %.2e | "
           "MAE a %.3f A c %.3f A alpha %.2f deg | sigma2 %.2e | %5.0f samples/s %5.1f s%s\n",
           e->epoch, e->epochs, e->train_loss, v->loss, v->class_loss, 100 * v->accuracy,
           v->mse, v->mae[0], v->mae[1], v->mae[2], v->mean_sigma2, e->samples_per_s,
           e->seconds, e->improved ? "  *saved" : "");
    fflush(stdout);
}

static void print_peaks_epoch(const bf_epoch_log *e, void *user)
{
    const bf_peak_errors *v = e->task_metrics;
    printf("epoch %3d/%-3d train %.4e | val mse %.4e | error px mean %.3f p50 %.3f p75 %.3f "
           "p95 %.3f p99.5 %.3f | %6.0f samples/s %5.1f s%s\n",
           e->epoch, e->epochs, e->train_loss, e->val_score, v->mean, v->p50, v->p75, v->p95,
           v->p995, e->samples_per_s, e->seconds, e->improved ? "  *saved" : "");
    fflush(stdout);
}

/* The task of --init's checkpoint, or of --model. */
static bf_status task_of(const bf_train_config *cfg, const char **task, bf_error *err)
{
    *task = bf_task_of_model(cfg->model);
    if (!cfg->init_path)
        return BF_OK;
    bf_model *m = NULL;
    bf_status st = bf_checkpoint_load(cfg->init_path, bf_backend_cpu(), &m, NULL, NULL, NULL,
                                      err);
    if (st == BF_OK)
        *task = bf_task_of_model(m->kind->name);
    bf_model_destroy(m);
    return st;
}

/* Under cfg->comm, this rank's rows [n r/P, n (r+1)/P) of a file of n (DESIGN §10);
 * recorded in cfg for the task. */
static void shard_of(bf_train_config *cfg, long n, long *first, long *count)
{
    const bf_comm *c = cfg->comm;
    *first = n * c->rank / c->size;
    *count = n * (c->rank + 1) / c->size - *first;
    cfg->train_first = *first;
    cfg->train_total = n;
}

/* A whole patch file and its SHA-256. */
static bf_status read_patches(const char *path, bf_patches *p, char sha[65], bf_error *err)
{
    bf_status st = bf_patches_read_h5(path, p, err);
    if (st == BF_OK)
        st = bf_sha256_file_hex(path, sha, err);
    return st;
}

/* The training patches: this rank's shard under cfg->comm, else all. Only rank 0 (or
 * the one process) hashes the file: the others must not read all of it. */
static bf_status read_train_patches(bf_train_config *cfg, const char *path, bf_patches *p,
                                    bf_error *err)
{
    if (!cfg->comm)
        return read_patches(path, p, cfg->train_sha256, err);
    long n = 0, first = 0, count = 0;
    bf_status st = bf_patches_h5_count(path, &n, err);
    if (st == BF_OK) {
        shard_of(cfg, n, &first, &count);
        st = bf_patches_read_h5_rows(path, first, count, p, err);
    }
    if (st == BF_OK && cfg->comm->rank == 0)
        st = bf_sha256_file_hex(path, cfg->train_sha256, err);
    return st;
}

static int train_peaks(bf_train_config *cfg, const bf_peaks_options *po, const char *train_path,
                       const char *val_path, epoch_sink *sink)
{
    bf_error err = {0};
    bf_patches train = {0}, val = {0};
    bf_peaks_result res;
    sink->print = print_peaks_epoch;
    cfg->on_epoch = log_epoch;
    cfg->user = sink;
    bf_status st = read_train_patches(cfg, train_path, &train, &err);
    if (st == BF_OK)
        st = read_patches(val_path, &val, cfg->val_sha256, &err);
    st = bf_comm_agree(cfg->comm, st, &err); /* a rank that cannot read stops them all */
    if (st == BF_OK) {
        printf("braggflow train: %ld training, %ld validation patches of %d x %d; batch %d, "
               "lr %g, seed %llu%s%s\n", cfg->train_total ? cfg->train_total : train.n, val.n,
               train.size, train.size, cfg->batch,
               cfg->lr, (unsigned long long)cfg->seed, po->augment ? ", +-1 px crop shifts" : "",
               ranks_note(cfg));
        st = bf_peaks_train(cfg, po, &train, &val, &res, &err);
    }
    if (st == BF_OK)
        printf("best epoch %d: val mse %.4e, error px mean %.3f p50 %.3f p75 %.3f p95 %.3f "
               "p99.5 %.3f%s\ncheckpoint %s; %.1f s\n", res.train.best_epoch,
               res.train.best_val_score, res.best_val.mean, res.best_val.p50, res.best_val.p75,
               res.best_val.p95, res.best_val.p995, res.train.stopped_early ? "; stopped early" : "",
               cfg->out_path, res.train.train_seconds);
    st = finish_log(sink, st, &err);
    bf_patches_free(&train);
    bf_patches_free(&val);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}

/* ", 2 ranks (lr scaling none)" under MPI, else "". */
static const char *ranks_note(const bf_train_config *cfg)
{
    static char note[80];
    note[0] = 0;
    if (cfg->comm)
        snprintf(note, sizeof note, ", %d ranks (lr scaling %s)", cfg->comm->size,
                 bf_lr_scaling_name(cfg->lr_scaling));
    return note;
}

/* A whole dataset file and its SHA-256. */
static bf_status read_set(const char *path, bf_dataset *d, char sha[65], bf_error *err)
{
    bf_status st = bf_dataset_read_h5(path, d, err);
    if (st == BF_OK)
        st = bf_sha256_file_hex(path, sha, err);
    return st;
}

/* The training set: this rank's shard under cfg->comm, else all; rank 0 alone hashes
 * it (read_train_patches). */
static bf_status read_train_set(bf_train_config *cfg, const char *path, bf_dataset *d,
                                bf_error *err)
{
    if (!cfg->comm)
        return read_set(path, d, cfg->train_sha256, err);
    long n = 0, first = 0, count = 0;
    bf_status st = bf_dataset_h5_count(path, &n, err);
    if (st == BF_OK) {
        shard_of(cfg, n, &first, &count);
        st = bf_dataset_read_h5_rows(path, first, count, d, err);
    }
    if (st == BF_OK && cfg->comm->rank == 0)
        st = bf_sha256_file_hex(path, cfg->train_sha256, err);
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
        {"augment", no_argument, 0, OPT_AUGMENT},       {"fc", required_argument, 0, OPT_FC},
        {"lr-scaling", required_argument, 0, OPT_LR_SCALING},
        {"warmup-epochs", required_argument, 0, OPT_WARMUP},
        {"log-json", required_argument, 0, OPT_LOG_JSON},
        {"bucket-floats", required_argument, 0, OPT_BUCKET},
        {"device", required_argument, 0, OPT_DEVICE},
        {0, 0, 0, 0}};
    const char *device = NULL;
    bf_train_config cfg;
    bf_train_config_defaults(&cfg);
    const char *train_path = NULL, *val_path = NULL, *log_path = NULL;
    long v = 0, hidden = 0;
    int opt, rc = 0, lr_given = 0, clip_given = 0;
    bf_peaks_options po = {0};
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
            rc = bf_cli_parse_count("train", "--hidden", optarg, 1, 65536, &hidden);
            break;
        case OPT_LR:
            rc = bf_cli_parse_positive("train", "--lr", optarg, 10, &cfg.lr);
            lr_given = 1;
            break;
        case OPT_CLIP:
            rc = bf_cli_parse_positive("train", "--clip", optarg, 1e30, &cfg.clip_norm);
            clip_given = 1;
            break;
        case OPT_AUGMENT: po.augment = 1; break;
        case OPT_LOG_JSON: log_path = optarg; break;
        case OPT_DEVICE: device = optarg; break;
        case OPT_LR_SCALING:
            if (bf_lr_scaling_parse(optarg, &cfg.lr_scaling) != 0)
                rc = bf_cli_usage_error("train", "--lr-scaling: '%s' is not none, sqrt or linear",
                                        optarg);
            break;
        case OPT_BUCKET:
            rc = bf_cli_parse_count("train", "--bucket-floats", optarg, 1, 0x7fffffffL, &v);
            cfg.bucket_floats = (size_t)v;
            break;
        case OPT_WARMUP:
            rc = bf_cli_parse_count("train", "--warmup-epochs", optarg, 0, 1000000, &v);
            cfg.warmup_epochs = (int)v;
            break;
        case OPT_FC: {
            char tail;
            int *f = po.fc;
            if (sscanf(optarg, "%d,%d,%d,%d%c", &f[0], &f[1], &f[2], &f[3], &tail) != 4 ||
                f[0] < 1 || f[1] < 1 || f[2] < 1 || f[3] < 1 || f[0] > 4096 || f[1] > 4096 ||
                f[2] > 4096 || f[3] > 4096)
                rc = bf_cli_usage_error("train", "--fc: '%s' is not four widths A,B,C,D",
                                        optarg);
            break;
        }
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
    if (!bf_model_kind_find(cfg.model) || !bf_task_of_model(cfg.model))
        return bf_cli_usage_error("train", "--model: '%s' is not a known model (%s)", cfg.model,
                                  bf_model_kind_list());
    if ((rc = bf_cli_device("train", device, &cfg.backend)) != 0)
        return rc;

    bf_error err = {0};
    const char *task = NULL;
    cfg.train_name = train_path;
    cfg.val_name = val_path;
    cfg.comm = bf_dist_world(); /* NULL unless mpirun started us (DESIGN §10) */
    if (cfg.comm && cfg.backend != bf_backend_cpu()) /* gradients are summed in host memory */
        return bf_cli_usage_error("train", "--device %s: not under mpirun (yet); use --device "
                                  "cpu", device);
    int rank0 = !cfg.comm || cfg.comm->rank == 0;
    epoch_sink sink = {0};
    bf_status st = task_of(&cfg, &task, &err);
    if (st == BF_OK && rank0) {
        /* fail now, not after an epoch, when --out cannot be written (rank 0 writes) */
        bf_atomic_file probe = {0};
        st = bf_atomic_begin(&probe, cfg.out_path, 1, &err);
        bf_atomic_abort(&probe);
    }
    if (st == BF_OK && rank0 && log_path) {
        st = bf_atomic_begin(&sink.af, log_path, 1, &err);
        sink.open = st == BF_OK;
    }
    st = bf_comm_agree(cfg.comm, st, &err);
    if (st != BF_OK) {
        finish_log(&sink, st, &err);
        return bf_cli_fail(&err);
    }
    if (!strcmp(task, "peaks")) {
        if (hidden) {
            finish_log(&sink, BF_ERR_INVALID, &err);
            return bf_cli_usage_error("train", "--hidden is structure_net's (fc1 width)");
        }
        cfg.lr = lr_given ? cfg.lr : 3e-4; /* BraggNN's main.py */
        cfg.clip_norm = clip_given ? cfg.clip_norm : 0;
        return train_peaks(&cfg, &po, train_path, val_path, &sink);
    }
    if (po.augment || po.fc[0]) {
        finish_log(&sink, BF_ERR_INVALID, &err);
        return bf_cli_usage_error("train", "--%s is braggnn's", po.augment ? "augment" : "fc");
    }
    bf_dataset train = {0}, val = {0};
    bf_structure_result res;
    sink.print = print_structure_epoch;
    cfg.on_epoch = log_epoch;
    cfg.user = &sink;
    st = read_train_set(&cfg, train_path, &train, &err);
    if (st == BF_OK)
        st = read_set(val_path, &val, cfg.val_sha256, &err);
    st = bf_comm_agree(cfg.comm, st, &err); /* a rank that cannot read stops them all */
    if (st == BF_OK) {
        printf("braggflow train: %ld training, %ld validation patterns of %d points; "
               "batch %d, lr %g, seed %llu%s\n", cfg.train_total ? cfg.train_total : train.n,
               val.n, train.length, cfg.batch, cfg.lr,
               (unsigned long long)cfg.seed, ranks_note(&cfg));
        st = bf_structure_train(&cfg, (int)hidden, &train, &val, &res, &err);
    }
    if (st == BF_OK) {
        char optim[4200];
        bf_checkpoint_optim_path(cfg.out_path, optim, sizeof optim);
        printf("best epoch %d: val loss %.4f, accuracy %.2f%%, mse %.3e (predicting the mean: "
               "%.3e)%s\ncheckpoint %s (optimiser state %s); %.1f s\n", res.train.best_epoch,
               res.train.best_val_score, 100 * res.best_val.accuracy, res.best_val.mse,
               res.best_val.mse_baseline, res.train.stopped_early ? "; stopped early" : "",
               cfg.out_path, optim, res.train.train_seconds);
    }
    st = finish_log(&sink, st, &err);
    bf_dataset_free(&train);
    bf_dataset_free(&val);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
