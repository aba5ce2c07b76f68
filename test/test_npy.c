/* .npy reader/writer and the atomic file helpers. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "qc_io.h"
#include "qc_npy.h"
#include "test.h"

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(p);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *tmpdir(void)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "/tmp/dt-npy-XXXXXX");
    return mkdtemp(buf);
}

static void write_raw(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* A v1/v2/v3 file with the given header dict text and data bytes (header padded to 64). */
static void write_npy(const char *path, int version, const char *dict, const void *data,
                      size_t n)
{
    unsigned char buf[1024];
    size_t pre = version == 1 ? 10 : 12, hl = strlen(dict) + 1;
    size_t total = (pre + hl + 63) / 64 * 64, hlen = total - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)version;
    buf[7] = 0;
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    if (version != 1)
        buf[10] = buf[11] = 0;
    memcpy(buf + pre, dict, hl - 1);
    memset(buf + pre + hl - 1, ' ', hlen - hl);
    buf[total - 1] = '\n';
    memcpy(buf + total, data, n);
    write_raw(path, buf, total + n);
}

QC_TEST(npy_roundtrip_f32)
{
    qc_err err = { 0 };
    char *dir = tmpdir(), path[128];
    CHECK(dir != NULL);
    snprintf(path, sizeof path, "%s/a.npy", dir);
    float v[6] = { 1.5f, -2.0f, 0.0f, 3.25f, 1e-30f, -7.0f };
    qc_tensor t = { .dtype = QC_F32, .ndim = 2, .dims = { 2, 3 }, .data = v };
    CHECK_OK(qc_npy_write(path, &t, &err));
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK_INT((st.st_size - 24) % 64, 0);
    FILE *f = fopen(path, "rb");
    char head[129] = { 0 };
    CHECK(f && fread(head, 1, 128, f) == 128);
    if (f)
        fclose(f);
    CHECK(!memcmp(head, "\x93NUMPY\x01\x00", 8));
    CHECK_INT((unsigned char)head[8] | (unsigned char)head[9] << 8, 118);
    CHECK(strstr(head + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }")
          != NULL);
    CHECK(head[127] == '\n');

    qc_tensor r;
    CHECK_OK(qc_npy_read(path, &r, &err));
    CHECK_INT(r.dtype, QC_F32);
    CHECK_INT(r.ndim, 2);
    CHECK_INT(r.dims[0], 2);
    CHECK_INT(r.dims[1], 3);
    CHECK(r.data && !memcmp(r.data, v, sizeof v));
    qc_tensor_free(&r);
    rm_tree(dir);
}

QC_TEST(npy_roundtrip_types)
{
    qc_err err = { 0 };
    char *dir = tmpdir(), path[128];
    snprintf(path, sizeof path, "%s/b.npy", dir);
    int64_t i64[5] = { -1, 0, 1, INT64_MAX, INT64_MIN };
    uint8_t u8 = 200, bools[4] = { 1, 0, 0, 1 };
    int32_t i32[3] = { -5, 7, 1 << 30 };
    int8_t i8[2] = { -128, 127 };
    struct { int dtype, ndim; int64_t dims[2]; void *data; size_t n; const char *shape; } cs[] = {
        { QC_I64, 1, { 5 }, i64, sizeof i64, "(5,)" },
        { QC_U8, 0, { 0 }, &u8, 1, "()" },
        { QC_BOOL, 2, { 2, 2 }, bools, 4, "(2, 2)" },
        { QC_I32, 2, { 3, 1 }, i32, sizeof i32, "(3, 1)" },
        { QC_I8, 1, { 2 }, i8, 2, "(2,)" },
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        qc_tensor t = { .dtype = cs[c].dtype, .ndim = cs[c].ndim, .data = cs[c].data };
        memcpy(t.dims, cs[c].dims, sizeof cs[c].dims);
        CHECK_OK(qc_npy_write(path, &t, &err));
        char head[129] = { 0 };
        FILE *f = fopen(path, "rb");
        CHECK(f && fread(head, 1, 128, f) == 128);
        if (f)
            fclose(f);
        CHECK(strstr(head + 10, cs[c].shape) != NULL);
        qc_tensor r;
        CHECK_OK(qc_npy_read(path, &r, &err));
        CHECK_INT(r.dtype, cs[c].dtype);
        CHECK_INT(r.ndim, cs[c].ndim);
        CHECK_INT(qc_tensor_nbytes(&r), cs[c].n);
        CHECK(r.data && !memcmp(r.data, cs[c].data, cs[c].n));
        qc_tensor_free(&r);
    }
    rm_tree(dir);
}

QC_TEST(npy_header_variants)
{
    qc_err err = { 0 };
    char *dir = tmpdir(), path[128];
    snprintf(path, sizeof path, "%s/c.npy", dir);
    float v[4] = { 1, 2, 3, 4 };
    const char *dicts[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
        "{\"shape\":(2,2),\"fortran_order\":False,\"descr\":\"<f4\"}",
        "{'descr':'<f4','fortran_order':False,'shape':(2L, 2L)}",
        "{ 'fortran_order' : False , 'shape' : ( 2 , 2 , ) , 'descr' : '<f4' , }",
    };
    for (int version = 1; version <= 3; version++) {
        for (size_t k = 0; k < sizeof dicts / sizeof dicts[0]; k++) {
            write_npy(path, version, dicts[k], v, sizeof v);
            qc_tensor r;
            CHECK_OK(qc_npy_read(path, &r, &err));
            CHECK_INT(r.ndim, 2);
            CHECK_INT(r.dims[1], 2);
            CHECK(r.data && !memcmp(r.data, v, sizeof v));
            qc_tensor_free(&r);
        }
    }
    /* fortran order is harmless for 1-d data */
    write_npy(path, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (4,), }", v,
              sizeof v);
    qc_tensor r;
    CHECK_OK(qc_npy_read(path, &r, &err));
    qc_tensor_free(&r);
    rm_tree(dir);
}

QC_TEST(npy_f8_and_f2_become_f32)
{
    qc_err err = { 0 };
    char *dir = tmpdir(), path[128];
    snprintf(path, sizeof path, "%s/d.npy", dir);
    double d[3] = { 0.1, -1e10, 3.0 };
    write_npy(path, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", d,
              sizeof d);
    qc_npy_info info;
    CHECK_OK(qc_npy_read_header(path, &info, &err));
    CHECK_INT(info.file_dtype, QC_F64);
    CHECK_INT(info.dtype, QC_F32);
    qc_tensor r;
    CHECK_OK(qc_npy_read(path, &r, &err));
    CHECK_INT(r.dtype, QC_F32);
    for (int i = 0; i < 3 && r.data; i++)
        CHECK(((float *)r.data)[i] == (float)d[i]);
    qc_tensor_free(&r);
    uint16_t h[2] = { 0x3c00, 0xc000 };     /* 1.0, -2.0 */
    write_npy(path, 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", h,
              sizeof h);
    CHECK_OK(qc_npy_read(path, &r, &err));
    CHECK(r.data && ((float *)r.data)[0] == 1.0f && ((float *)r.data)[1] == -2.0f);
    qc_tensor_free(&r);
    rm_tree(dir);
}

static void expect_fail(const char *path, int code, const char *needle)
{
    qc_err err = { 0 };
    qc_tensor r = { 0 };
    int rc = qc_npy_read(path, &r, &err);
    CHECK_INT(rc, code);
    if (!strstr(err.msg, needle) || !strstr(err.msg, path))
        qc_test_fail(__FILE__, __LINE__, "message '%s' lacks '%s' or the path", err.msg,
                     needle);
    CHECK(r.data == NULL);
}

QC_TEST(npy_errors)
{
    char *dir = tmpdir(), path[128];
    snprintf(path, sizeof path, "%s/e.npy", dir);
    float v[4] = { 1, 2, 3, 4 };
    write_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v,
              sizeof v);
    expect_fail(path, QC_EINPUT, "truncated");
    write_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", v,
              sizeof v);
    expect_fail(path, QC_EINPUT, "unexpected bytes");
    write_npy(path, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", v,
              sizeof v);
    expect_fail(path, QC_EINPUT, "big-endian");
    write_npy(path, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", v,
              sizeof v);
    expect_fail(path, QC_EINPUT, "Fortran");
    write_npy(path, 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", v,
              sizeof v);
    expect_fail(path, QC_EINPUT, "unsupported dtype '<c8'");
    write_npy(path, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }",
              v, sizeof v);
    expect_fail(path, QC_EINPUT, "structured");
    write_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }", v,
              sizeof v);
    expect_fail(path, QC_EINPUT, "malformed");
    write_npy(path, 1, "{'descr': '<f4', 'shape': (4,), }", v, sizeof v);
    expect_fail(path, QC_EINPUT, "missing");
    write_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': "
              "(4294967296, 4294967296, 4294967296), }", v, sizeof v);
    expect_fail(path, QC_EINPUT, "too large");
    write_npy(path, 4, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", v,
              sizeof v);
    expect_fail(path, QC_EINPUT, "version");
    write_raw(path, "\x93NUMPY\x01\x00\xff\x7f{'descr'", 17);
    expect_fail(path, QC_EINPUT, "truncated .npy header");
    write_raw(path, "PK\x03\x04 not numpy", 14);
    expect_fail(path, QC_EINPUT, "bad magic");
    snprintf(path, sizeof path, "%s/missing.npy", dir);
    expect_fail(path, QC_EINPUT, "cannot open");
    rm_tree(dir);
}

QC_TEST(npy_read_reuse_keeps_buffer)
{
    qc_err err = { 0 };
    char *dir = tmpdir(), path[128];
    snprintf(path, sizeof path, "%s/f.npy", dir);
    float v[4] = { 1, 2, 3, 4 };
    qc_tensor t = { .dtype = QC_F32, .ndim = 1, .dims = { 4 }, .data = v };
    CHECK_OK(qc_npy_write(path, &t, &err));
    qc_tensor r = { 0 };
    CHECK_OK(qc_npy_read_reuse(path, &r, &err));
    void *first = r.data;
    CHECK_INT(r.capacity, 16);
    CHECK_OK(qc_npy_read_reuse(path, &r, &err));
    CHECK(r.data == first);
    t.dims[0] = 2;
    CHECK_OK(qc_npy_write(path, &t, &err));
    CHECK_OK(qc_npy_read_reuse(path, &r, &err));
    CHECK(r.data == first);
    CHECK_INT(r.dims[0], 2);
    qc_tensor_free(&r);
    rm_tree(dir);
}

QC_TEST(npy_write_unsupported_dtype)
{
    qc_err err = { 0 };
    uint16_t x = 0;
    qc_tensor t = { .dtype = QC_BF16, .ndim = 1, .dims = { 1 }, .data = &x };
    CHECK_INT(qc_npy_write("/tmp/dt-never.npy", &t, &err), QC_EUNSUPPORTED);
    CHECK(access("/tmp/dt-never.npy", F_OK) != 0);
}

QC_TEST(io_atomic_write)
{
    qc_err err = { 0 };
    char *dir = tmpdir(), path[128], tmp[160];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    CHECK_OK(qc_write_file_atomic(path, "hello", 5, &err));
    CHECK_OK(qc_write_file_atomic(path, "hi", 2, &err));
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 2);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmp, F_OK) != 0);

    /* aborting leaves the old file alone and no temp file behind */
    qc_afile a;
    CHECK_OK(qc_afile_open(&a, path, &err));
    CHECK(access(tmp, F_OK) == 0);
    CHECK_OK(qc_afile_write(&a, "xxxxxxxx", 8, &err));
    qc_afile_abort(&a);
    CHECK(access(tmp, F_OK) != 0);
    CHECK(stat(path, &st) == 0 && st.st_size == 2);

    snprintf(path, sizeof path, "%s/nope/out.bin", dir);
    CHECK_INT(qc_write_file_atomic(path, "x", 1, &err), QC_EIO);
    CHECK(strstr(err.msg, path) != NULL);
    CHECK(strstr(err.msg, "No such file") != NULL);
#ifdef __linux__
    /* a full device: the write (or fsync) fails and the temp file is removed */
    if (access("/dev/full", W_OK) == 0) {
        static char big[1 << 16];
        qc_afile b;
        b.f = fopen("/dev/full", "wb");
        b.path = strdup("/dev/full");
        b.tmp = NULL;
        int rc = qc_afile_write(&b, big, sizeof big, &err);
        if (rc == QC_OK)
            rc = qc_afile_commit(&b, &err);
        CHECK_INT(rc, QC_EIO);
        CHECK(strstr(err.msg, "/dev/full") != NULL);
        qc_afile_abort(&b);
    }
#endif
    rm_tree(dir);
}

QC_TEST(io_mkdir_p_and_names)
{
    qc_err err = { 0 };
    char *dir = tmpdir(), path[160], buf[64];
    snprintf(path, sizeof path, "%s/a/b//c/", dir);
    CHECK_OK(qc_mkdir_p(path, &err));
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK_OK(qc_mkdir_p(path, &err));        /* exists: fine */
    snprintf(path, sizeof path, "%s/file", dir);
    write_raw(path, "x", 1);
    CHECK_INT(qc_mkdir_p(path, &err), QC_EIO);
    CHECK(strstr(err.msg, "not a folder") != NULL);
    snprintf(path, sizeof path, "%s/file/sub", dir);
    CHECK_INT(qc_mkdir_p(path, &err), QC_EIO);
    CHECK(!strcmp(qc_safe_filename("a/b\\c", buf, sizeof buf), "a_b_c"));
    CHECK(!strcmp(qc_safe_filename("..", buf, sizeof buf), "_.."));
    CHECK(!strcmp(qc_safe_filename("", buf, sizeof buf), "_"));
    CHECK(!strcmp(qc_safe_filename("output:0", buf, sizeof buf), "output:0"));
    CHECK(!strcmp(qc_safe_filename("abcdef", buf, 4), "abc"));
    const char *joins[][3] = { { "d", "f.npy", "d/f.npy" }, { "d/", "f", "d/f" },
                               { "", "f", "f" }, { "/", "f", "/f" }, { "a/b", "", "a/b/" } };
    for (size_t i = 0; i < sizeof joins / sizeof joins[0]; i++) {
        char *j = qc_path_join(joins[i][0], joins[i][1]);
        CHECK(j && !strcmp(j, joins[i][2]));
        free(j);
    }
    rm_tree(dir);
}
