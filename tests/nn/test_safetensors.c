/* tests/nn/test_safetensors.c — safetensors checkpoints: round trips, byte images as the
 * Python safetensors package writes them, and one test per way a file can be wrong. */
#include "braggflow/nn.h"
#include "test.h"

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define BAD_NAME "bad.safetensors"

static void tmp_file(char *out, size_t outsz, const char *leaf)
{
    snprintf(out, outsz, "%s/%s", bf_test_tmp_dir(), leaf);
}

/* A file image: u64 LE length of header, header, then data_len bytes 0, 1, 2, ... */
static void *image(const char *header, size_t data_len, size_t *len)
{
    size_t hl = strlen(header);
    *len = 8 + hl + data_len;
    unsigned char *b = malloc(*len ? *len : 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < data_len; i++)
        b[8 + hl + i] = (unsigned char)i;
    return b;
}

static bf_status parse_header(const char *header, size_t data_len, bf_safetensors *st,
                              bf_error *err)
{
    size_t len;
    void *b = image(header, data_len, &len);
    return bf_safetensors_parse(b, len, BAD_NAME, st, err);
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

/* Leftover temporary files ("<path>.tmp.<pid>") in the scratch folder. */
static int count_tmp_files(void)
{
    DIR *d = opendir(bf_test_tmp_dir());
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static bf_st_tensor tensor(const char *name, const char *dtype, int ndim, const int64_t *shape,
                           const void *data, size_t nbytes)
{
    bf_st_tensor t = {0};
    snprintf(t.name, sizeof t.name, "%s", name);
    snprintf(t.dtype, sizeof t.dtype, "%s", dtype);
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t.shape[i] = shape[i];
    t.data = data;
    t.nbytes = nbytes;
    return t;
}

static const char *tricky_note = "say \"hi\" \\ back\\slash\nnew line\ttab \x01 ctrl, "
                                 "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 /";

/* Writes the five tensors of the round-trip test to path. */
static bf_status write_sample(const char *path, bf_error *err)
{
    static const float w[6] = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -7.0f};
    static const int64_t idx[4] = {-1, 0, INT64_MAX, INT64_MIN};
    static const uint8_t bytes[5] = {0, 1, 127, 128, 255};
    static const double scalar = 3.141592653589793;
    static const int64_t s_w[2] = {2, 3}, s_idx[1] = {4}, s_bytes[1] = {5}, s_empty[2] = {0, 3};
    bf_st_tensor t[5] = {
        tensor("layer.0.weight", "F32", 2, s_w, w, sizeof w),
        tensor("indices", "I64", 1, s_idx, idx, sizeof idx),
        tensor("mask", "U8", 1, s_bytes, bytes, sizeof bytes),
        tensor("scale", "F64", 0, NULL, &scalar, sizeof scalar),
        tensor("empty", "F32", 2, s_empty, NULL, 0),
    };
    bf_st_meta meta[2] = {{.key = "format", .value = "pt"}, {.key = "note"}};
    meta[1].value = (char *)tricky_note;
    return bf_safetensors_write(path, t, 5, meta, 2, err);
}

BF_TEST(test_st_round_trip_tensors_and_metadata)
{
    char path[4200];
    tmp_file(path, sizeof path, "round.safetensors");
    bf_error err = {0};
    CHECK_MSG(write_sample(path, &err) == BF_OK, "%s", err.msg);
    CHECK(count_tmp_files() == 0);

    bf_safetensors st;
    CHECK_MSG(bf_safetensors_read(path, &st, &err) == BF_OK, "%s", err.msg);
    CHECK(st.n_tensors == 5 && st.n_meta == 2);
    /* The order given to the writer is the order read back. */
    CHECK(strcmp(st.tensors[0].name, "layer.0.weight") == 0);
    CHECK(strcmp(st.tensors[4].name, "empty") == 0);

    const bf_st_tensor *t = bf_safetensors_find(&st, "layer.0.weight");
    CHECK(t && strcmp(t->dtype, "F32") == 0 && t->ndim == 2 && t->shape[0] == 2 &&
          t->shape[1] == 3 && t->nbytes == 24);
    float w[6];
    memcpy(w, t->data, sizeof w);
    CHECK(w[0] == 1.5f && w[2] == 3.25f && w[4] == 1e-30f && w[5] == -7.0f);

    t = bf_safetensors_find(&st, "indices");
    CHECK(t && strcmp(t->dtype, "I64") == 0 && t->ndim == 1 && t->nbytes == 32);
    int64_t idx[4];
    memcpy(idx, t->data, sizeof idx);
    CHECK(idx[0] == -1 && idx[2] == INT64_MAX && idx[3] == INT64_MIN);

    t = bf_safetensors_find(&st, "mask");
    CHECK(t && strcmp(t->dtype, "U8") == 0 && t->nbytes == 5);
    CHECK(memcmp(t->data, "\x00\x01\x7f\x80\xff", 5) == 0);

    t = bf_safetensors_find(&st, "scale");
    CHECK(t && t->ndim == 0 && t->nbytes == 8);
    double scalar;
    memcpy(&scalar, t->data, sizeof scalar);
    CHECK(scalar == 3.141592653589793);

    t = bf_safetensors_find(&st, "empty");
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 3 && t->nbytes == 0);

    /* Data pointers point into the owned buffer. */
    for (int i = 0; i < st.n_tensors; i++) {
        const char *d = st.tensors[i].data, *b = st.buffer;
        CHECK(d >= b && d + st.tensors[i].nbytes <= b + st.buffer_len);
    }

    CHECK(strcmp(bf_safetensors_meta(&st, "format"), "pt") == 0);
    CHECK(strcmp(bf_safetensors_meta(&st, "note"), tricky_note) == 0);
    CHECK(bf_safetensors_meta(&st, "absent") == NULL);
    CHECK(bf_safetensors_find(&st, "absent") == NULL);
    bf_safetensors_free(&st);
    CHECK(all_zero(&st, sizeof st));
}

BF_TEST(test_st_header_is_escaped_and_padded_to_8_bytes)
{
    char path[4200];
    tmp_file(path, sizeof path, "escaped.safetensors");
    bf_error err = {0};
    CHECK_MSG(write_sample(path, &err) == BF_OK, "%s", err.msg);
    char *text;
    size_t len;
    CHECK(bf_read_file(path, &text, &len, &err) == BF_OK);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)(unsigned char)text[i] << (8 * i);
    CHECK(n % 8 == 0 && 8 + n <= len);
    /* Metadata first, control bytes as \u00XX, UTF-8 as is. */
    const char *expect = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"say \\\"hi\\\" "
                         "\\\\ back\\\\slash\\u000anew line\\u0009tab \\u0001 ctrl, "
                         "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 /\"},";
    CHECK(strncmp(text + 8, expect, strlen(expect)) == 0);
    size_t end = 8 + (size_t)n;
    while (text[end - 1] == ' ')
        end--;
    CHECK(text[end - 1] == '}' && 8 + n - end < 8);
    free(text);

    /* Every residue of the JSON length mod 8 ends up aligned. */
    for (int k = 1; k <= 8; k++) {
        char name[16];
        memset(name, 'n', (size_t)k);
        name[k] = 0;
        uint8_t one = 7;
        bf_st_tensor t = tensor(name, "U8", 0, NULL, &one, 1);
        CHECK(bf_safetensors_write(path, &t, 1, NULL, 0, &err) == BF_OK);
        bf_safetensors st;
        CHECK_MSG(bf_safetensors_read(path, &st, &err) == BF_OK, "%s", err.msg);
        size_t data_start = (size_t)((const char *)st.tensors[0].data - (const char *)st.buffer);
        CHECK(data_start % 8 == 0 && st.buffer_len == data_start + 1);
        CHECK(*(const uint8_t *)st.tensors[0].data == 7);
        bf_safetensors_free(&st);
    }
}

/* Bytes exactly as safetensors.torch.save_file({"a": torch.tensor([1., 2.]),
 * "b": torch.tensor([[-3]])}, metadata={"format": "pt"}) lays them out: metadata first,
 * compact JSON, spaces to a multiple of 8, then contiguous little-endian data. */
static const unsigned char python_file[] =
    "\x90\x00\x00\x00\x00\x00\x00\x00"
    "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
    "\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[8,16]}}"
    "   "
    "\x00\x00\x80\x3f\x00\x00\x00\x40"
    "\xfd\xff\xff\xff\xff\xff\xff\xff";

BF_TEST(test_st_reads_bytes_written_by_python)
{
    /* The simplest file: one tensor, 54-byte header plus 2 spaces. */
    static const unsigned char simple[] =
        "\x38\x00\x00\x00\x00\x00\x00\x00"
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  "
        "\x00\x00\x80\x3f\x00\x00\x00\x40";
    bf_error err = {0};
    bf_safetensors st;
    void *b = malloc(sizeof simple - 1);
    memcpy(b, simple, sizeof simple - 1);
    CHECK_MSG(bf_safetensors_parse(b, sizeof simple - 1, "simple", &st, &err) == BF_OK, "%s",
              err.msg);
    CHECK(st.n_tensors == 1 && st.n_meta == 0);
    float a[2];
    memcpy(a, st.tensors[0].data, sizeof a);
    CHECK(a[0] == 1.0f && a[1] == 2.0f);
    bf_safetensors_free(&st);

    /* Through a file, with metadata and a second dtype. */
    char path[4200];
    tmp_file(path, sizeof path, "python.safetensors");
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fwrite(python_file, 1, sizeof python_file - 1, fp) == sizeof python_file - 1);
    fclose(fp);
    CHECK_MSG(bf_safetensors_read(path, &st, &err) == BF_OK, "%s", err.msg);
    CHECK(st.n_tensors == 2 && st.n_meta == 1);
    CHECK(strcmp(bf_safetensors_meta(&st, "format"), "pt") == 0);
    const bf_st_tensor *t = bf_safetensors_find(&st, "b");
    CHECK(t && strcmp(t->dtype, "I64") == 0 && t->ndim == 2 && t->shape[0] == 1 &&
          t->shape[1] == 1);
    int64_t v;
    memcpy(&v, t->data, sizeof v);
    CHECK(v == -3);
    bf_safetensors_free(&st);
}

BF_TEST(test_st_decodes_escapes_and_tolerates_layout_variants)
{
    bf_error err = {0};
    bf_safetensors st;
    /* \u escapes (a surrogate pair too), short escapes, blanks everywhere, an unknown
     * field with nested values, a gap between tensors, trailing bytes, a zero-size
     * tensor sharing an offset. */
    const char *h = " {\n\t\"__metadata__\" : { \"k\\u00e9y\" : \"\\ud83d\\ude00 \\\"\\/\\b\\f\\n"
                    "\\r\\t\\\\\" } ,\r\n \"w\\u00E9\" : { \"shape\" : [ 2 ] , \"dtype\" : "
                    "\"U8\", \"extra\": {\"x\": [1, -2.5e+3, true, false, null, \"s\"]},"
                    " \"data_offsets\" : [ 4 , 6 ] }, \"z\": {\"dtype\":\"F32\",\"shape\":"
                    "[0],\"data_offsets\":[6,6]}, \"y\":{\"dtype\":\"BOOL\",\"shape\":[],"
                    "\"data_offsets\":[0,1]} }  ";
    CHECK_MSG(parse_header(h, 9, &st, &err) == BF_OK, "%s", err.msg);
    CHECK(st.n_tensors == 3 && st.n_meta == 1);
    CHECK(strcmp(st.meta[0].key, "k\xc3\xa9y") == 0);
    CHECK(strcmp(st.meta[0].value, "\xf0\x9f\x98\x80 \"/\b\f\n\r\t\\") == 0);
    const bf_st_tensor *t = bf_safetensors_find(&st, "w\xc3\xa9");
    CHECK(t && t->nbytes == 2 && memcmp(t->data, "\x04\x05", 2) == 0);
    bf_safetensors_free(&st);

    /* An empty header object is a valid file with nothing in it. */
    CHECK_MSG(parse_header("{}      ", 0, &st, &err) == BF_OK, "%s", err.msg);
    CHECK(st.n_tensors == 0 && st.n_meta == 0);
    CHECK(bf_safetensors_find(&st, "a") == NULL && bf_safetensors_meta(&st, "a") == NULL);
    bf_safetensors_free(&st);
}

static const struct {
    const char *header;
    size_t data_len;
    const char *why; /* a piece of the expected message */
} bad_headers[] = {
    /* invalid JSON */
    {"", 0, "header byte 0: invalid JSON: the header is empty"},
    {"{\"a\":{\"dtype\":\"F32\",}}", 0, "header byte 20: invalid JSON"},
    {"{\"a\" {}}", 0, "header byte 5: invalid JSON: expected ':'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "header byte 53"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8,
     "unexpected bytes after"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8, "leading zero"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]}}", 8, "integers"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":tru}}", 8,
     "invalid JSON"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":[1 2]}}", 8,
     "expected ',' or ']'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":\"\\q\"}}", 8,
     "unknown escape"},
    {"{\"a\nb\":{}}", 0, "control byte 0x0a"},
    {"{\"\xc3\x28\":{}}", 0, "invalid UTF-8"},
    {"{\"\xed\xa0\x80\":{}}", 0, "invalid UTF-8"},    /* a surrogate encoded in UTF-8 */
    {"{\"\xc0\xaf\":{}}", 0, "invalid UTF-8"},        /* overlong '/' */
    {"{\"\\ud800x\":{}}", 0, "not followed by a low surrogate"},
    {"{\"\\udc00\":{}}", 0, "unpaired low surrogate"},
    {"{\"\\u12g4\":{}}", 0, "4 hex digits"},
    {"{\"abc", 0, "unterminated string"},
    {"{'a':{}}", 0, "expected a string key"},
    /* the header is not an object */
    {"[1,2]", 0, "the header is not a JSON object"},
    {"\"a\"", 0, "the header is not a JSON object"},
    {"{\"a\":[1]}", 0, "tensor 'a': expected an object"},
    /* dtype */
    {"{\"a\":{\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "unknown dtype 'F128'"},
    {"{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype"},
    {"{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype: expected a string"},
    /* shape */
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8, "negative"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "not an integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e1],\"data_offsets\":[0,8]}}", 8, "not an integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "expected an array"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}",
     8, "overflows"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[2305843009213693952,8],\"data_offsets\":[0,8]}}", 8,
     "overflows"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,8]}}", 8,
     "too large"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999999],\"data_offsets\":[0,8]}}", 8,
     "too large"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
     "more than 8 entries"},
    /* data_offsets */
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "[begin, end]"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", 16, "more than 2"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,\"8\"]}}", 8, "integers"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 8, "not an integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "end < begin"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 7, "beyond the 7-byte"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 8, "beyond"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]}}", 8,
     "beyond"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551616]}}", 8,
     "too large"},
    /* byte count */
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 12, "need 12"},
    {"{\"a\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,4]}}", 8, "need 8"},
    /* missing or repeated fields */
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing \"data_offsets\""},
    {"{\"a\":{}}", 0, "missing \"dtype\""},
    {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "duplicate field \"dtype\""},
    /* overlaps and duplicates */
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     12, "overlap"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
     8, "'a' and 'b' overlap"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
     8, "overlap"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
     "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
     2, "duplicate tensor name 'a'"},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate __metadata__"},
    {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "duplicate __metadata__ key 'k'"},
    /* names and metadata */
    {"{\"a\\u0000b\":{}}", 0, "NUL in the name"},
    {"{\"__metadata__\":{\"k\":1}}", 0, "value of 'k' is not a string"},
    {"{\"__metadata__\":{\"k\":[\"v\"]}}", 0, "value of 'k' is not a string"},
    {"{\"__metadata__\":{\"k\":null}}", 0, "value of 'k' is not a string"},
    {"{\"__metadata__\":[]}", 0, "expected an object of strings"},
    {"{\"__metadata__\":{\"k\":\"a\\u0000\"}}", 0, "holds a NUL"},
};

BF_TEST(test_st_rejects_bad_headers_with_a_message_naming_the_file)
{
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        bf_error err = {0};
        bf_safetensors st;
        bf_status s = parse_header(bad_headers[i].header, bad_headers[i].data_len, &st, &err);
        CHECK_MSG(s == BF_ERR_PARSE || s == BF_ERR_INVALID, "case %zu: status %d", i, (int)s);
        CHECK_MSG(strncmp(err.msg, BAD_NAME ": ", strlen(BAD_NAME) + 2) == 0, "case %zu: %s", i,
                  err.msg);
        CHECK_MSG(strstr(err.msg, bad_headers[i].why) != NULL, "case %zu: '%s' lacks '%s'", i,
                  err.msg, bad_headers[i].why);
        CHECK(strchr(err.msg, '\n') == NULL);
        CHECK(all_zero(&st, sizeof st)); /* nothing left to free */
    }
}

BF_TEST(test_st_rejects_deep_nesting_in_unknown_fields)
{
    char h[512];
    int n = snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],"
                                  "\"x\":");
    for (int depth = 0; depth < 40; depth++)
        h[n++] = '[';
    h[n] = 0;
    bf_error err = {0};
    bf_safetensors st;
    CHECK(parse_header(h, 1, &st, &err) == BF_ERR_PARSE);
    CHECK_MSG(strstr(err.msg, BAD_NAME) && strstr(err.msg, "nesting deeper than 32"), "%s",
              err.msg);

    /* Nesting within the limit is fine. */
    n = snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],"
                              "\"x\":");
    for (int depth = 0; depth < 20; depth++)
        h[n++] = '[';
    for (int depth = 0; depth < 20; depth++)
        h[n++] = ']';
    snprintf(h + n, sizeof h - (size_t)n, "}}");
    err = (bf_error){0};
    CHECK_MSG(parse_header(h, 1, &st, &err) == BF_OK, "%s", err.msg);
    bf_safetensors_free(&st);
}

BF_TEST(test_st_limits_name_and_key_lengths_to_the_struct_fields)
{
    char h[512], name[200];
    bf_error err = {0};
    bf_safetensors st;
    for (int len = 127; len <= 128; len++) {
        memset(name, 'x', (size_t)len);
        name[len] = 0;
        snprintf(h, sizeof h, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}",
                 name);
        err = (bf_error){0};
        bf_status s = parse_header(h, 1, &st, &err);
        if (len == 127) {
            CHECK_MSG(s == BF_OK && strcmp(st.tensors[0].name, name) == 0, "%s", err.msg);
            bf_safetensors_free(&st);
        } else {
            CHECK(s == BF_ERR_INVALID);
            CHECK_MSG(strstr(err.msg, BAD_NAME) && strstr(err.msg, "longer than 127 bytes"),
                      "%s", err.msg);
        }
    }
    for (int len = 63; len <= 64; len++) {
        memset(name, 'k', (size_t)len);
        name[len] = 0;
        snprintf(h, sizeof h, "{\"__metadata__\":{\"%s\":\"v\"}}", name);
        err = (bf_error){0};
        bf_status s = parse_header(h, 0, &st, &err);
        if (len == 63) {
            CHECK_MSG(s == BF_OK && strcmp(bf_safetensors_meta(&st, name), "v") == 0, "%s",
                      err.msg);
            bf_safetensors_free(&st);
        } else {
            CHECK(s == BF_ERR_INVALID);
            CHECK_MSG(strstr(err.msg, BAD_NAME) && strstr(err.msg, "longer than 63 bytes"),
                      "%s", err.msg);
        }
    }
}

BF_TEST(test_st_rejects_short_files_and_bad_header_lengths)
{
    bf_error err = {0};
    bf_safetensors st;
    CHECK(bf_safetensors_parse(NULL, 0, BAD_NAME, &st, &err) == BF_ERR_PARSE);
    CHECK_MSG(strstr(err.msg, BAD_NAME) && strstr(err.msg, "shorter than"), "%s", err.msg);

    void *b = malloc(7);
    memset(b, 0, 7);
    err = (bf_error){0};
    CHECK(bf_safetensors_parse(b, 7, BAD_NAME, &st, &err) == BF_ERR_PARSE);
    CHECK(strstr(err.msg, "7 bytes") != NULL);

    /* Length beyond the file. */
    b = malloc(12);
    memcpy(b, "\x05\x00\x00\x00\x00\x00\x00\x00{}  ", 12);
    err = (bf_error){0};
    CHECK(bf_safetensors_parse(b, 12, BAD_NAME, &st, &err) == BF_ERR_PARSE);
    CHECK_MSG(strstr(err.msg, BAD_NAME) && strstr(err.msg, "exceeds the 4 bytes"), "%s",
              err.msg);

    /* Absurd lengths, including ones that would wrap 8 + N. */
    static const char *const absurd[] = {"\x01\xe1\xf5\x05\x00\x00\x00\x00", /* 100000001 */
                                         "\xff\xff\xff\xff\xff\xff\xff\xff",
                                         "\xf8\xff\xff\xff\xff\xff\xff\xff"};
    for (int i = 0; i < 3; i++) {
        b = malloc(16);
        memcpy(b, absurd[i], 8);
        memcpy((char *)b + 8, "{}      ", 8);
        err = (bf_error){0};
        CHECK(bf_safetensors_parse(b, 16, BAD_NAME, &st, &err) == BF_ERR_PARSE);
        CHECK_MSG(strstr(err.msg, BAD_NAME) && strstr(err.msg, "absurd"), "%s", err.msg);
    }
}

BF_TEST(test_st_rejects_every_truncation)
{
    char path[4200];
    tmp_file(path, sizeof path, "trunc.safetensors");
    bf_error err = {0};
    /* The last data bytes belong to a tensor, so every cut loses something. */
    CHECK_MSG(write_sample(path, &err) == BF_OK, "%s", err.msg);
    char *full;
    size_t len;
    CHECK(bf_read_file(path, &full, &len, &err) == BF_OK);
    const size_t py_len = sizeof python_file - 1;
    for (int which = 0; which < 2; which++) {
        const char *src = which ? (const char *)python_file : full;
        size_t n = which ? py_len : len;
        for (size_t cut = 0; cut < n; cut++) {
            void *b = malloc(cut ? cut : 1);
            memcpy(b, src, cut);
            bf_safetensors st;
            err = (bf_error){0};
            bf_status s = bf_safetensors_parse(b, cut, BAD_NAME, &st, &err);
            CHECK_MSG(s == BF_ERR_PARSE || s == BF_ERR_INVALID, "cut %zu of %zu", cut, n);
            CHECK(strstr(err.msg, BAD_NAME) != NULL);
        }
    }
    free(full);
}

BF_TEST(test_st_write_refuses_inconsistent_tensors_and_leaves_no_file)
{
    char path[4200];
    tmp_file(path, sizeof path, "refused.safetensors");
    float x[3] = {1, 2, 3};
    int64_t s3[1] = {3}, neg[1] = {-3};
    int64_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 3};
    struct {
        bf_st_tensor t[2];
        int n;
        const char *why;
    } cases[] = {
        {{tensor("x", "F32", 1, s3, x, 8)}, 1, "does not match"},
        {{tensor("x", "F16", 1, s3, x, 12)}, 1, "does not match"},
        {{tensor("x", "F31", 1, s3, x, 12)}, 1, "unknown dtype"},
        {{tensor("x", "F32", 1, neg, x, 12)}, 1, "negative"},
        {{tensor("x", "F32", 1, s3, NULL, 12)}, 1, "no data"},
        {{tensor("__metadata__", "F32", 1, s3, x, 12)}, 1, "reserved"},
        {{tensor("\xff", "F32", 1, s3, x, 12)}, 1, "UTF-8"},
        {{tensor("x", "F32", 1, s3, x, 12), tensor("x", "F32", 1, s3, x, 12)}, 2,
         "duplicate tensor name 'x'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bf_error err = {0};
        CHECK(bf_safetensors_write(path, cases[i].t, cases[i].n, NULL, 0, &err) ==
              BF_ERR_INVALID);
        CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, cases[i].why), "case %zu: %s", i,
                  err.msg);
        CHECK(access(path, F_OK) != 0);
    }
    bf_error err = {0};
    bf_st_tensor t = tensor("x", "F32", 1, s3, x, 12);
    t.ndim = 9;
    memcpy(t.shape, s9, sizeof t.shape); /* only 8 fit: the 9th dim cannot be given */
    CHECK(bf_safetensors_write(path, &t, 1, NULL, 0, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "ndim 9") != NULL);
    bf_st_meta meta[2] = {{.key = "k", .value = "1"}, {.key = "k", .value = "2"}};
    err = (bf_error){0};
    CHECK(bf_safetensors_write(path, NULL, 0, meta, 2, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "duplicate metadata key 'k'") != NULL);
    meta[1].value = NULL;
    snprintf(meta[1].key, sizeof meta[1].key, "j");
    err = (bf_error){0};
    CHECK(bf_safetensors_write(path, NULL, 0, meta, 2, &err) == BF_ERR_INVALID);
    CHECK(access(path, F_OK) != 0 && count_tmp_files() == 0);

    /* A key filling its whole field has no room for the NUL; negative counts. */
    memset(meta[1].key, 'k', sizeof meta[1].key);
    meta[1].value = "v";
    err = (bf_error){0};
    CHECK(bf_safetensors_write(path, NULL, 0, meta, 2, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "not NUL-terminated") != NULL);
    err = (bf_error){0};
    CHECK(bf_safetensors_write(path, &t, -1, NULL, 0, &err) == BF_ERR_INVALID);
    err = (bf_error){0};
    CHECK(bf_safetensors_write(path, NULL, 1, NULL, 0, &err) == BF_ERR_INVALID);
    CHECK(access(path, F_OK) != 0 && count_tmp_files() == 0);
}

BF_TEST(test_st_write_into_missing_directory_fails_with_io_error)
{
    char path[4200];
    tmp_file(path, sizeof path, "no/such/dir/model.safetensors");
    float x = 1;
    bf_st_tensor t = tensor("x", "F32", 0, NULL, &x, 4);
    bf_error err = {0};
    CHECK(bf_safetensors_write(path, &t, 1, NULL, 0, &err) == BF_ERR_IO);
    CHECK_MSG(strstr(err.msg, path) != NULL, "%s", err.msg);
    char dir[4200];
    tmp_file(dir, sizeof dir, "no");
    CHECK(access(dir, F_OK) != 0 && count_tmp_files() == 0);

    bf_safetensors st;
    err = (bf_error){0};
    CHECK(bf_safetensors_read(path, &st, &err) == BF_ERR_IO);
    CHECK(strstr(err.msg, path) != NULL);
    CHECK(all_zero(&st, sizeof st));
}

BF_TEST(test_st_failed_overwrite_keeps_the_old_file)
{
    char path[4200], tmp[4300];
    tmp_file(path, sizeof path, "keep.safetensors");
    bf_error err = {0};
    CHECK_MSG(write_sample(path, &err) == BF_OK, "%s", err.msg);
    char *before;
    size_t before_len;
    CHECK(bf_read_file(path, &before, &before_len, &err) == BF_OK);

    /* 1. The temporary file cannot be created: a directory sits at its name. */
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(mkdir(tmp, 0700) == 0);
    float x = 9;
    bf_st_tensor t = tensor("x", "F32", 0, NULL, &x, 4);
    CHECK(bf_safetensors_write(path, &t, 1, NULL, 0, &err) == BF_ERR_IO);
    CHECK(strstr(err.msg, path) != NULL);
    CHECK(rmdir(tmp) == 0);

    /* 2. The disk "fills" halfway through the data: a file-size limit makes write fail. */
    static float big[1 << 16];
    int64_t n_big = 1 << 16;
    bf_st_tensor tb = tensor("big", "F32", 1, &n_big, big, sizeof big);
    struct rlimit old_lim, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old_lim) == 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old_lim;
    lim.rlim_cur = 4096;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    err = (bf_error){0};
    bf_status s = bf_safetensors_write(path, &tb, 1, NULL, 0, &err);
    setrlimit(RLIMIT_FSIZE, &old_lim);
    signal(SIGXFSZ, old_handler);
    CHECK_MSG(s == BF_ERR_IO && strstr(err.msg, path), "%d %s", (int)s, err.msg);
    CHECK(count_tmp_files() == 0);

    /* 3. The path is a directory: rename fails after a complete temporary file. */
    char dirpath[4200];
    tmp_file(dirpath, sizeof dirpath, "a_directory.safetensors");
    CHECK(mkdir(dirpath, 0700) == 0);
    err = (bf_error){0};
    CHECK(bf_safetensors_write(dirpath, &t, 1, NULL, 0, &err) == BF_ERR_IO);
    CHECK(strstr(err.msg, dirpath) != NULL && count_tmp_files() == 0);
    bf_safetensors st;
    err = (bf_error){0};
    CHECK(bf_safetensors_read(dirpath, &st, &err) == BF_ERR_IO);
    CHECK(strstr(err.msg, dirpath) != NULL);
    rmdir(dirpath);

    char *after;
    size_t after_len;
    CHECK(bf_read_file(path, &after, &after_len, &err) == BF_OK);
    CHECK(after_len == before_len && memcmp(before, after, before_len) == 0);
    free(before);
    free(after);
}

BF_TEST(test_st_free_is_safe_on_zeroed_and_freed_structs)
{
    bf_safetensors st;
    memset(&st, 0, sizeof st);
    bf_safetensors_free(&st);
    bf_safetensors_free(&st);
    bf_safetensors_free(NULL);
    CHECK(bf_safetensors_find(&st, "x") == NULL && bf_safetensors_meta(&st, "x") == NULL);
    CHECK(bf_safetensors_find(NULL, "x") == NULL && bf_safetensors_meta(NULL, "x") == NULL);

    bf_error err = {0};
    CHECK(parse_header("{\"__metadata__\":{\"a\":\"b\"}}", 0, &st, &err) == BF_OK);
    bf_safetensors_free(&st);
    bf_safetensors_free(&st);
    CHECK(all_zero(&st, sizeof st));
}
