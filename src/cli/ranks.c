/* cli/ranks.c — the data layer's bf_rank_link over MPI (braggflow/dist.h): the CLI
 * is the one place that sees both, so the data layer stays free of MPI (DESIGN §2,
 * §10 "As built"). */
#include "braggflow/dist.h"
#include "cli/cli.h"

#define TAG_BLOCK 11   /* a gathered block (collectives use no tags) */

static bf_status link_agree(void *user, bf_status st, bf_error *err)
{
    return bf_comm_agree(user, st, err);
}

static bf_status link_send(void *user, const void *buf, size_t bytes, bf_error *err)
{
    (void)user;
    return bf_dist_send(0, TAG_BLOCK, buf, bytes, err);
}

static bf_status link_recv(void *user, int from, void **buf, size_t *bytes, bf_error *err)
{
    (void)user;
    return bf_dist_recv(from, TAG_BLOCK, NULL, NULL, buf, bytes, err);
}

const bf_rank_link *bf_cli_rank_link(void)
{
    static bf_rank_link link;
    const bf_comm *world = bf_dist_world();
    if (!world || world->size < 2)
        return NULL;
    link = (bf_rank_link){.rank = world->rank, .size = world->size, .user = (void *)world,
                          .agree = link_agree, .send_to_0 = link_send, .recv_from = link_recv};
    return &link;
}
