/* libFuzzer target: PNG/JPEG decoding (src/data/image.c, recognized by content) and the
 * resize + normalization into a model input (src/data/preprocess.c) in three geometries:
 * float NCHW RGB, uint8 NHWC gray, float NCHW BGR upscaled. */
#include "fuzz_util.h"
#include "data.h"

static qc_image img;                /* reused across inputs, like the dataset does */
static qc_tensor slot;

static void to_tensor(int dtype, int nhwc, int c, int h, int w, int bgr)
{
    qc_value_info vi = { .name = "x", .dtype = dtype, .ndim = 4 };
    int64_t nchw[4] = { 1, c, h, w }, nhwc_d[4] = { 1, h, w, c };
    memcpy(vi.dims, nhwc ? nhwc_d : nchw, sizeof nchw);
    qc_preproc pp;
    qc_image_geom g;
    qc_err err = { 0 };
    qc_preproc_init(&pp);
    pp.nhwc = nhwc;
    pp.bgr = bgr;
    int rc = qc_image_geom_plan(&vi, &pp, &g, &err);
    if (rc == QC_OK)
        rc = qc_image_to_tensor(&img, &g, &pp, &slot, "fuzz", &err);
    if (rc != QC_OK) {
        fprintf(stderr, "fuzz: a decoded %dx%d image did not convert: %s\n", img.width,
                img.height, err.msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file("in.img", data, size);
    qc_err err = { 0 };
    int rc = qc_image_decode(&img, path, &err);
    fuzz_check_err(rc, &err);
    if (rc != QC_OK)
        return 0;
    if (img.width <= 0 || img.height <= 0 ||
        (size_t)img.width * (size_t)img.height * 3 > img.capacity) {
        fprintf(stderr, "fuzz: decoded image %dx%d does not fit its buffer\n", img.width,
                img.height);
        abort();
    }
    switch (size % 3) {
    case 0: to_tensor(QC_F32, 0, 3, 8, 8, 0); break;
    case 1: to_tensor(QC_U8, 1, 1, 5, 7, 0); break;
    default: to_tensor(QC_F32, 0, 3, 2 * img.height % 61 + 1, 2 * img.width % 67 + 1, 1);
    }
    if (img.capacity > ((size_t)64 << 20))
        qc_image_free(&img);        /* keep the process small */
    return 0;
}
