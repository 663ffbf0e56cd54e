/* core/sha256.c — SHA-256 (FIPS 180-4) for provenance hashes of inputs and outputs. */
#include "braggflow/core.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_block(uint32_t h[8], const uint8_t blk[64])
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
               (uint32_t)blk[4 * i + 2] << 8 | blk[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + S1 + ch + K[i] + w[i];
        uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void bf_sha256_init(bf_sha256 *ctx)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(ctx->h, h0, sizeof h0);
    ctx->nbytes = 0;
    ctx->nbuf = 0;
}

void bf_sha256_update(bf_sha256 *ctx, const void *data, size_t n)
{
    const uint8_t *p = data;
    ctx->nbytes += n;
    while (n > 0) {
        size_t take = 64 - ctx->nbuf;
        if (take > n)
            take = n;
        memcpy(ctx->buf + ctx->nbuf, p, take);
        ctx->nbuf += take;
        p += take;
        n -= take;
        if (ctx->nbuf == 64) {
            sha256_block(ctx->h, ctx->buf);
            ctx->nbuf = 0;
        }
    }
}

void bf_sha256_final(bf_sha256 *ctx, uint8_t digest[32])
{
    uint64_t bits = ctx->nbytes * 8;
    uint8_t pad = 0x80;
    bf_sha256_update(ctx, &pad, 1);
    uint8_t zero = 0;
    while (ctx->nbuf != 56)
        bf_sha256_update(ctx, &zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    bf_sha256_update(ctx, len, 8);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(ctx->h[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(ctx->h[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(ctx->h[i] >> 8);
        digest[4 * i + 3] = (uint8_t)ctx->h[i];
    }
}

void bf_sha256_digest_hex(const uint8_t d[32], char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[64] = 0;
}

void bf_sha256_hex(const void *data, size_t n, char hex[65])
{
    bf_sha256 ctx;
    uint8_t d[32];
    bf_sha256_init(&ctx);
    bf_sha256_update(&ctx, data, n);
    bf_sha256_final(&ctx, d);
    bf_sha256_digest_hex(d, hex);
}

bf_status bf_sha256_file(const char *path, uint8_t digest[32], bf_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return bf_error_set(err, BF_ERR_IO, "%s: cannot open for reading", path);
    bf_sha256 ctx;
    bf_sha256_init(&ctx);
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        bf_sha256_update(&ctx, buf, n);
    int bad = ferror(fp);
    fclose(fp);
    if (bad)
        return bf_error_set(err, BF_ERR_IO, "%s: read error", path);
    bf_sha256_final(&ctx, digest);
    return BF_OK;
}

bf_status bf_sha256_file_hex(const char *path, char hex[65], bf_error *err)
{
    uint8_t d[32];
    bf_status st = bf_sha256_file(path, d, err);
    if (st == BF_OK)
        bf_sha256_digest_hex(d, hex);
    return st;
}
