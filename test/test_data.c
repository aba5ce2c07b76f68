/* Calibration data folders: forms, checks, image decoding and preprocessing. Expected image
 * values are computed by hand in the tests (half-pixel bilinear weights written out). */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <png.h>
#include <jpeglib.h>
#include "onnx.pb-c.h"
#include "qc_data.h"
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
    snprintf(buf, sizeof buf, "/tmp/dt-data-XXXXXX");
    return mkdtemp(buf);
}

static const char *pathf(const char *dir, const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    if (strlen(dir) + strlen(name) + 2 > sizeof buf[k])
        return "/nonexistent";
    strcpy(buf[k], dir);
    strcat(buf[k], "/");
    strcat(buf[k], name);
    return buf[k];
}

static void save_f32(const char *path, int ndim, const int64_t *dims, const float *v)
{
    qc_err err = { 0 };
    qc_tensor t = { .dtype = QC_F32, .ndim = ndim, .data = (void *)v };
    memcpy(t.dims, dims, (size_t)ndim * sizeof dims[0]);
    CHECK_OK(qc_npy_write(path, &t, &err));
}

static int write_png(const char *path, int w, int h, const unsigned char *rgb)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)w;
    pi.height = (png_uint_32)h;
    pi.format = PNG_FORMAT_RGB;
    return png_image_write_to_file(&pi, path, 0, rgb, 0, NULL) ? 0 : -1;
}

static int write_jpeg(const char *path, int w, int h, const unsigned char *rgb)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
    return 0;
}

/* 2x2 image: (10,20,30) (250,0,100) / (0,128,255) (60,70,80) */
static const unsigned char px2[12] = { 10, 20, 30, 250, 0, 100, 0, 128, 255, 60, 70, 80 };

QC_TEST(data_png_nchw_normalized)
{
    qc_err err = { 0 };
    char *dir = tmpdir();
    CHECK(write_png(pathf(dir, "img.png"), 2, 2, px2) == 0);
    qc_value_info vi = { .name = "images", .dtype = QC_F32, .ndim = 4, .dims = { 1, 3, 4, 4 } };
    qc_model m = { .n_inputs = 1, .inputs = &vi };
    qc_preproc pp;
    qc_preproc_init(&pp);
    char *argv[] = { "x", "--mean", "0.485,0.456,0.406", "--std=0.229,0.224,0.225" };
    int i = 1;
    CHECK_INT(qc_preproc_parse_arg(&pp, 4, argv, &i, &err), 1);
    CHECK_INT(qc_preproc_parse_arg(&pp, 4, argv, &i, &err), 1);
    CHECK_INT(i, 4);
    qc_dataset *d = NULL;
    CHECK_OK(qc_dataset_open(&d, dir, &m, &pp, &err));
    if (!d)
        goto out;
    CHECK_INT(qc_dataset_count(d), 1);
    CHECK(!strcmp(qc_dataset_sample_name(d, 0), "img.png"));
    qc_tensor *in = NULL;
    CHECK_OK(qc_dataset_load(d, 0, &in, &err));
    CHECK_INT(in[0].ndim, 4);
    CHECK_INT(in[0].dims[1], 3);
    CHECK_INT(in[0].dims[3], 4);
    CHECK(!strcmp(in[0].name, "images"));
    const float *v = in[0].data;
    /* output (y=1, x=2): row weights .75/.25, column weights .25/.75.
     * R: .75*(.25*10 + .75*250) + .25*(.25*0 + .75*60) = 153.75 */
    CHECK_NEAR(v[0 * 16 + 1 * 4 + 2], (153.75 / 255 - 0.485) / 0.229, 1e-5, 1e-5);
    /* G: .75*(.25*20 + .75*0) + .25*(.25*128 + .75*70) = 3.75 + 21.125 = 24.875 */
    CHECK_NEAR(v[1 * 16 + 1 * 4 + 2], (24.875 / 255 - 0.456) / 0.224, 1e-5, 1e-5);
    /* corners are the pixels themselves: B at (3,0) is 255 */
    CHECK_NEAR(v[2 * 16 + 3 * 4 + 0], (255.0 / 255 - 0.406) / 0.225, 1e-5, 1e-5);
    CHECK_NEAR(v[0 * 16 + 0 * 4 + 0], (10.0 / 255 - 0.485) / 0.229, 1e-5, 1e-5);
    /* (y=0, x=1): row 0 only, columns .75/.25: B = .75*30 + .25*100 = 47.5 */
    CHECK_NEAR(v[2 * 16 + 0 * 4 + 1], (47.5 / 255 - 0.406) / 0.225, 1e-5, 1e-5);
    qc_dataset_free(d);
out:
    rm_tree(dir);
}

QC_TEST(data_png_nhwc_bgr_size_uint8_gray)
{
    qc_err err = { 0 };
    char *dir = tmpdir();
    CHECK(write_png(pathf(dir, "a.png"), 2, 2, px2) == 0);
    /* NHWC, BGR, symbolic H/W resolved by --size 2x2 (identity resize), scale 1 */
    qc_value_info vi = { .name = "x", .dtype = QC_F32, .ndim = 4, .dims = { -1, -1, -1, 3 } };
    qc_model m = { .n_inputs = 1, .inputs = &vi };
    qc_preproc pp;
    qc_preproc_init(&pp);
    char *argv[] = { "x", "--layout", "nhwc", "--channels=bgr", "--size", "2x2", "--scale",
                     "1", "--mean", "1" };
    for (int i = 1; i < 10;)
        CHECK_INT(qc_preproc_parse_arg(&pp, 10, argv, &i, &err), 1);
    qc_dataset *d = NULL;
    qc_tensor *in = NULL;
    CHECK_OK(qc_dataset_open(&d, dir, &m, &pp, &err));
    CHECK_OK(d ? qc_dataset_load(d, 0, &in, &err) : -1);
    if (in) {
        const float *v = in[0].data;
        CHECK_INT(in[0].dims[0], 1);
        CHECK_INT(in[0].dims[1], 2);
        CHECK_INT(in[0].dims[3], 3);
        CHECK_NEAR(v[0], 29.0, 0, 1e-6);             /* B of (0,0) minus mean 1 */
        CHECK_NEAR(v[2], 9.0, 0, 1e-6);              /* R of (0,0) */
        CHECK_NEAR(v[1 * 3 + 0], 99.0, 0, 1e-6);     /* B of (0,1) */
        CHECK_NEAR(v[2 * 3 + 1], 127.0, 0, 1e-6);    /* G of (1,0) */
    }
    qc_dataset_free(d);

    /* uint8 input: the resized pixels, rounded; 1x4 from 2 columns */
    qc_value_info vu = { .name = "u", .dtype = QC_U8, .ndim = 4, .dims = { 1, 3, 1, 4 } };
    m.inputs = &vu;
    qc_preproc_init(&pp);
    CHECK_OK(qc_dataset_open(&d, dir, &m, &pp, &err));
    in = NULL;
    CHECK_OK(d ? qc_dataset_load(d, 0, &in, &err) : -1);
    if (in) {
        const unsigned char *u = in[0].data;
        /* 2 rows -> 1: both rows at .5; R row mix: (10+0)/2=5, (250+60)/2=155;
         * columns 0..3: 5, .75*5+.25*155=42.5->42 (ties to even), .25*5+.75*155=117.5->118,
         * 155 */
        CHECK_INT(u[0], 5);
        CHECK_INT(u[1], 42);
        CHECK_INT(u[2], 118);
        CHECK_INT(u[3], 155);
    }
    qc_dataset_free(d);

    /* one channel: luma of the pixel */
    qc_value_info vg = { .name = "g", .dtype = QC_F32, .ndim = 3, .dims = { 1, 2, 2 } };
    m.inputs = &vg;
    CHECK_OK(qc_dataset_open(&d, dir, &m, &pp, &err));
    in = NULL;
    CHECK_OK(d ? qc_dataset_load(d, 0, &in, &err) : -1);
    if (in) {
        CHECK_INT(in[0].ndim, 3);
        CHECK_NEAR(((float *)in[0].data)[3], (0.299 * 60 + 0.587 * 70 + 0.114 * 80) / 255,
                   1e-5, 1e-6);
    }
    qc_dataset_free(d);
    rm_tree(dir);
}

QC_TEST(data_jpeg_and_bad_images)
{
    qc_err err = { 0 };
    char *dir = tmpdir();
    unsigned char flat[8 * 8 * 3];
    for (int i = 0; i < 64; i++) {
        flat[i * 3] = 200;
        flat[i * 3 + 1] = 100;
        flat[i * 3 + 2] = 50;
    }
    CHECK(write_jpeg(pathf(dir, "a.jpg"), 8, 8, flat) == 0);
    qc_value_info vi = { .name = "x", .dtype = QC_F32, .ndim = 4, .dims = { 1, 3, 8, 8 } };
    qc_model m = { .n_inputs = 1, .inputs = &vi };
    qc_preproc pp;
    qc_preproc_init(&pp);
    pp.scale = 1;
    qc_dataset *d = NULL;
    qc_tensor *in = NULL;
    CHECK_OK(qc_dataset_open(&d, dir, &m, &pp, &err));
    CHECK_OK(d ? qc_dataset_load(d, 0, &in, &err) : -1);
    if (in) {
        const float *v = in[0].data;
        CHECK_NEAR(v[0], 200, 0, 2.5);
        CHECK_NEAR(v[64 + 9], 100, 0, 2.5);
        CHECK_NEAR(v[128 + 63], 50, 0, 2.5);
    }
    qc_dataset_free(d);

    /* a truncated JPEG and a PNG that is not one: errors name the file */
    FILE *f = fopen(pathf(dir, "a.jpg"), "r+b");
    if (f) {
        CHECK(ftruncate(fileno(f), 200) == 0);
        fclose(f);
    }
    FILE *g = fopen(pathf(dir, "b.png"), "wb");
    if (g) {
        fputs("not an image", g);
        fclose(g);
    }
    CHECK_OK(qc_dataset_open(&d, dir, &m, &pp, &err));
    if (d) {
        CHECK(qc_dataset_load(d, 0, &in, &err) == QC_EINPUT);
        CHECK(strstr(err.msg, "a.jpg:") != NULL);
        CHECK(qc_dataset_load(d, 1, &in, &err) == QC_EINPUT);
        CHECK(strstr(err.msg, "b.png: not a PNG or JPEG image") != NULL);
    }
    qc_dataset_free(d);

    /* model input that images cannot feed */
    qc_value_info v5 = { .name = "x", .dtype = QC_F32, .ndim = 4, .dims = { 1, 224, 224, 3 } };
    m.inputs = &v5;
    CHECK_INT(qc_dataset_open(&d, dir, &m, &pp, &err), QC_EINPUT);
    CHECK(strstr(err.msg, "try --layout nhwc") != NULL);
    qc_value_info v6 = { .name = "x", .dtype = QC_F32, .ndim = 4, .dims = { 1, 3, -1, -1 } };
    m.inputs = &v6;
    CHECK_INT(qc_dataset_open(&d, dir, &m, &pp, &err), QC_EINPUT);
    CHECK(strstr(err.msg, "pass --size") != NULL);
    CHECK(d == NULL);
    rm_tree(dir);
}

QC_TEST(data_npy_files_checks)
{
    qc_err err = { 0 };
    char *dir = tmpdir();
    float a[12] = { 0 }, b[12];
    for (int i = 0; i < 12; i++)
        b[i] = (float)i;
    int64_t full[4] = { 1, 3, 2, 2 }, nobatch[3] = { 3, 2, 2 };
    save_f32(pathf(dir, "s2.npy"), 4, full, a);
    save_f32(pathf(dir, "s1.npy"), 3, nobatch, b);
    FILE *f = fopen(pathf(dir, "README.txt"), "w");     /* ignored */
    if (f)
        fclose(f);
    qc_value_info vi = { .name = "images", .dtype = QC_F32, .ndim = 4,
                         .dims = { -1, 3, 2, 2 } };
    qc_model m = { .n_inputs = 1, .inputs = &vi };
    qc_dataset *d = NULL;
    qc_tensor *in = NULL;
    CHECK_OK(qc_dataset_open(&d, dir, &m, NULL, &err));
    if (d) {
        CHECK_INT(qc_dataset_count(d), 2);
        CHECK(!strcmp(qc_dataset_sample_name(d, 0), "s1.npy"));
        CHECK_OK(qc_dataset_load(d, 0, &in, &err));
        CHECK_INT(in[0].ndim, 4);       /* batch dim prepended */
        CHECK_INT(in[0].dims[0], 1);
        CHECK_NEAR(((float *)in[0].data)[11], 11, 0, 0);
        CHECK_OK(qc_dataset_load(d, 1, &in, &err));
        CHECK_NEAR(((float *)in[0].data)[11], 0, 0, 0);
        qc_dataset_free(d);
    }

    /* shape mismatch: one line naming file, input and both shapes */
    qc_value_info v2 = { .name = "images", .dtype = QC_F32, .ndim = 4,
                         .dims = { 1, 3, 320, 320 } };
    m.inputs = &v2;
    CHECK_INT(qc_dataset_open(&d, dir, &m, NULL, &err), QC_EINPUT);
    char want[256];
    snprintf(want, sizeof want, "%s/s1.npy: input 'images' has shape [3,2,2], model expects "
             "[1,3,320,320]", dir);
    CHECK(!strcmp(err.msg, want));
    if (strcmp(err.msg, want))
        printf("    got: %s\n", err.msg);
    /* symbolic dims by name */
    v2.dims[0] = -1;
    v2.dim_params[0] = "batch";
    CHECK_INT(qc_dataset_open(&d, dir, &m, NULL, &err), QC_EINPUT);
    CHECK(strstr(err.msg, "model expects [batch,3,320,320]") != NULL);

    /* dtype mismatch */
    qc_value_info v3 = { .name = "ids", .dtype = QC_I32, .ndim = -1 };
    m.inputs = &v3;
    CHECK_INT(qc_dataset_open(&d, dir, &m, NULL, &err), QC_EINPUT);
    CHECK(strstr(err.msg, "input 'ids' is int32 but the file holds float32") != NULL);

    /* NaN / Inf: refused with the count unless allowed */
    b[3] = NAN;
    b[7] = INFINITY;
    save_f32(pathf(dir, "s1.npy"), 3, nobatch, b);
    m.inputs = &vi;
    CHECK_OK(qc_dataset_open(&d, dir, &m, NULL, &err));
    if (d) {
        CHECK_INT(qc_dataset_load(d, 0, &in, &err), QC_EINPUT);
        CHECK(strstr(err.msg, "s1.npy: input 'images' has 2 NaN/Inf values") != NULL);
        qc_dataset_free(d);
    }
    qc_preproc pp;
    qc_preproc_init(&pp);
    pp.allow_nonfinite = 1;
    CHECK_OK(qc_dataset_open(&d, dir, &m, &pp, &err));
    CHECK_OK(d ? qc_dataset_load(d, 0, &in, &err) : -1);
    qc_dataset_free(d);

    /* a truncated .npy is caught at open */
    FILE *t = fopen(pathf(dir, "s2.npy"), "r+b");
    if (t) {
        CHECK(ftruncate(fileno(t), 100) == 0);
        fclose(t);
    }
    CHECK_INT(qc_dataset_open(&d, dir, &m, &pp, &err), QC_EINPUT);
    CHECK(strstr(err.msg, "s2.npy: truncated") != NULL);

    /* a two-input model cannot use the files form */
    qc_value_info two[2] = { vi, vi };
    m.inputs = two;
    m.n_inputs = 2;
    CHECK_INT(qc_dataset_open(&d, dir, &m, &pp, &err), QC_EINPUT);
    CHECK(strstr(err.msg, "single-input") != NULL);
    rm_tree(dir);
}

static void write_pb(const char *path, const char *name, int64_t n, const float *v)
{
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    int64_t dims[1] = { n };
    tp.n_dims = 1;
    tp.dims = dims;
    tp.has_data_type = 1;
    tp.data_type = QC_F32;
    tp.name = (char *)name;
    tp.has_raw_data = 1;
    tp.raw_data.len = (size_t)n * 4;
    tp.raw_data.data = (uint8_t *)v;
    size_t len = onnx__tensor_proto__get_packed_size(&tp);
    uint8_t *buf = malloc(len);
    onnx__tensor_proto__pack(&tp, buf);
    qc_err err = { 0 };
    CHECK_OK(qc_write_file_atomic(path, buf, len, &err));
    free(buf);
}

QC_TEST(data_subfolders_multi_input)
{
    qc_err err = { 0 };
    char *dir = tmpdir(), sub[256];
    float x[4] = { 1, 2, 3, 4 }, y[4] = { 5, 6, 7, 8 };
    int64_t dims[1] = { 4 };
    /* sample "b": named files ('/' in the input name becomes '_'); sample "a": input_k.pb */
    snprintf(sub, sizeof sub, "%s/b", dir);
    CHECK(mkdir(sub, 0777) == 0);
    save_f32(pathf(sub, "x.npy"), 1, dims, x);
    save_f32(pathf(sub, "in_y.npy"), 1, dims, y);
    snprintf(sub, sizeof sub, "%s/a", dir);
    CHECK(mkdir(sub, 0777) == 0);
    write_pb(pathf(sub, "input_0.pb"), "x", 4, y);
    write_pb(pathf(sub, "input_1.pb"), "in/y", 4, x);
    write_pb(pathf(sub, "output_0.pb"), "z", 4, x);     /* ignored */
    qc_value_info vi[2] = {
        { .name = "x", .dtype = QC_F32, .ndim = 1, .dims = { 4 } },
        { .name = "in/y", .dtype = QC_F32, .ndim = 1, .dims = { -1 } },
    };
    qc_model m = { .n_inputs = 2, .inputs = vi };
    qc_dataset *d = NULL;
    qc_tensor *in = NULL;
    CHECK_OK(qc_dataset_open(&d, dir, &m, NULL, &err));
    if (d) {
        CHECK_INT(qc_dataset_count(d), 2);
        CHECK(!strcmp(qc_dataset_sample_name(d, 0), "a"));
        CHECK_OK(qc_dataset_load(d, 0, &in, &err));
        CHECK_NEAR(((float *)in[0].data)[0], 5, 0, 0);
        CHECK_NEAR(((float *)in[1].data)[3], 4, 0, 0);
        CHECK(!strcmp(in[1].name, "in/y"));
        CHECK_OK(qc_dataset_load(d, 1, &in, &err));
        CHECK_NEAR(((float *)in[0].data)[0], 1, 0, 0);
        CHECK_NEAR(((float *)in[1].data)[3], 8, 0, 0);
        CHECK_INT(qc_dataset_load(d, 2, &in, &err), QC_EUSAGE);
        qc_dataset_free(d);
    }
    /* a sample folder missing an input */
    remove(pathf(sub, "input_1.pb"));
    CHECK_INT(qc_dataset_open(&d, dir, &m, NULL, &err), QC_EINPUT);
    CHECK(strstr(err.msg, "/a: no file for input 'in/y' (expected in_y.npy") != NULL);
    /* files and folders mixed */
    save_f32(pathf(dir, "c.npy"), 1, dims, x);
    CHECK_INT(qc_dataset_open(&d, dir, &m, NULL, &err), QC_EINPUT);
    CHECK(strstr(err.msg, "both sample files") != NULL);
    rm_tree(dir);
}

QC_TEST(data_folder_errors)
{
    qc_err err = { 0 };
    char *dir = tmpdir();
    qc_value_info vi = { .name = "x", .dtype = QC_F32, .ndim = -1 };
    qc_model m = { .n_inputs = 1, .inputs = &vi };
    qc_dataset *d = NULL;
    CHECK_INT(qc_dataset_open(&d, dir, &m, NULL, &err), QC_EINPUT);
    CHECK(strstr(err.msg, ": no samples") != NULL);
    CHECK_INT(qc_dataset_open(&d, pathf(dir, "nope"), &m, NULL, &err), QC_EINPUT);
    CHECK(strstr(err.msg, "nope: no such folder") != NULL);
    FILE *f = fopen(pathf(dir, "file"), "w");
    if (f)
        fclose(f);
    CHECK_INT(qc_dataset_open(&d, pathf(dir, "file"), &m, NULL, &err), QC_EINPUT);
    CHECK(strstr(err.msg, "file: not a folder") != NULL);
    if (geteuid() != 0) {           /* root reads anything */
        float v = 1;
        int64_t dims[1] = { 1 };
        save_f32(pathf(dir, "p.npy"), 1, dims, &v);
        chmod(pathf(dir, "p.npy"), 0);
        CHECK_INT(qc_dataset_open(&d, dir, &m, NULL, &err), QC_EIO);
        CHECK(strstr(err.msg, "p.npy: cannot open: Permission denied") != NULL);
    }
    CHECK(d == NULL);
    rm_tree(dir);
}

QC_TEST(data_preproc_flags)
{
    qc_err err = { 0 };
    qc_preproc pp;
    qc_preproc_init(&pp);
    CHECK_NEAR(pp.scale, 1.0 / 255, 1e-7, 0);
    char *ok[] = { "x", "--scale=1/127.5", "--size", "320", "--allow-nonfinite", "--std",
                   "0.5", "--other" };
    int i = 1;
    CHECK_INT(qc_preproc_parse_arg(&pp, 8, ok, &i, &err), 1);
    CHECK_NEAR(pp.scale, 1.0 / 127.5, 1e-7, 0);
    CHECK_INT(qc_preproc_parse_arg(&pp, 8, ok, &i, &err), 1);
    CHECK_INT(pp.height, 320);
    CHECK_INT(pp.width, 320);
    CHECK_INT(qc_preproc_parse_arg(&pp, 8, ok, &i, &err), 1);
    CHECK_INT(pp.allow_nonfinite, 1);
    CHECK_INT(qc_preproc_parse_arg(&pp, 8, ok, &i, &err), 1);
    CHECK_INT(pp.n_std, 1);
    CHECK_INT(qc_preproc_parse_arg(&pp, 8, ok, &i, &err), 0);
    CHECK_INT(i, 7);
    const char *bad[][2] = { { "--size", "0x5" }, { "--size", "3x" }, { "--layout", "nwhc" },
                             { "--channels", "rgba" }, { "--scale", "1/0" },
                             { "--mean", "1,2,3,4,5" }, { "--std", "1,0,1" },
                             { "--mean", "" }, { "--scale", "abc" } };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char *argv[] = { "x", (char *)bad[k][0], (char *)bad[k][1] };
        i = 1;
        CHECK_INT(qc_preproc_parse_arg(&pp, 3, argv, &i, &err), QC_EUSAGE);
        CHECK(strstr(err.msg, bad[k][0]) != NULL);
    }
    char *missing[] = { "x", "--size" };
    i = 1;
    CHECK_INT(qc_preproc_parse_arg(&pp, 2, missing, &i, &err), QC_EUSAGE);
    CHECK(strstr(err.msg, "--size needs a value") != NULL);
}
