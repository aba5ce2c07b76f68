#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <png.h>
#include <jpeglib.h>
#include <jerror.h>
#include "data.h"

/* Refuses images whose decoded size would be absurd (decompression bombs, corrupt headers). */
#define MAX_PIXELS ((size_t)1 << 28)

static int reserve(qc_image *img, int w, int h, const char *path, qc_err *err)
{
    if (w <= 0 || h <= 0 || (size_t)w * (size_t)h > MAX_PIXELS)
        return qc_errf(err, QC_EINPUT, "%s: unsupported image size %dx%d", path, w, h);
    size_t n = (size_t)w * (size_t)h * 3;
    if (n > img->capacity) {
        free(img->rgb);
        img->rgb = malloc(n);
        img->capacity = img->rgb ? n : 0;
        if (!img->rgb)
            return qc_errf(err, QC_ENOMEM, "%s: out of memory for a %dx%d image", path, w, h);
    }
    img->width = w;
    img->height = h;
    return QC_OK;
}

static int decode_png(qc_image *img, const char *path, qc_err *err)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&pi, path))
        return qc_errf(err, QC_EINPUT, "%s: cannot decode PNG: %s", path, pi.message);
    /* Gray, palette, 16-bit and alpha all become 8-bit RGB (alpha composited on black). */
    pi.format = PNG_FORMAT_RGB;
    int rc = pi.width > INT32_MAX || pi.height > INT32_MAX
                 ? qc_errf(err, QC_EINPUT, "%s: unsupported image size", path)
                 : reserve(img, (int)pi.width, (int)pi.height, path, err);
    if (rc) {
        png_image_free(&pi);
        return rc;
    }
    png_color black = { 0, 0, 0 };
    if (!png_image_finish_read(&pi, &black, img->rgb, 0, NULL)) {
        rc = qc_errf(err, QC_EINPUT, "%s: cannot decode PNG: %s", path, pi.message);
        png_image_free(&pi);
        return rc;
    }
    return QC_OK;
}

typedef struct jerr_ctx {
    struct jpeg_error_mgr mgr;
    jmp_buf               jump;
    int                   warning;  /* first warning code, 0 if none */
    int                   eof;      /* the data ended early: at the end of the file or at a
                                     * marker (libjpeg pads the rest with gray) */
} jerr_ctx;

static void jpeg_fail(j_common_ptr cinfo)
{
    longjmp(((jerr_ctx *)cinfo->err)->jump, 1);
}

/* libjpeg prints warnings to stderr by default; library code must stay silent. */
static void jpeg_message(j_common_ptr cinfo, int level)
{
    jerr_ctx *je = (jerr_ctx *)cinfo->err;
    if (level < 0 && !je->warning)
        je->warning = je->mgr.msg_code ? je->mgr.msg_code : -1;
    if (level < 0 &&
        (je->mgr.msg_code == JWRN_JPEG_EOF || je->mgr.msg_code == JWRN_HIT_MARKER))
        je->eof = 1;
}

static void jpeg_silent(j_common_ptr cinfo)
{
    (void)cinfo;
}

static int decode_jpeg(qc_image *img, FILE *f, const char *path, qc_err *err)
{
    struct jpeg_decompress_struct cinfo;
    jerr_ctx je;
    cinfo.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = jpeg_fail;
    je.mgr.emit_message = jpeg_message;
    je.mgr.output_message = jpeg_silent;
    je.warning = 0;
    je.eof = 0;
    if (setjmp(je.jump)) {
        char msg[JMSG_LENGTH_MAX];
        je.mgr.format_message((j_common_ptr)&cinfo, msg);
        jpeg_destroy_decompress(&cinfo);
        return qc_errf(err, QC_EINPUT, "%s: cannot decode JPEG: %s", path, msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return qc_errf(err, QC_EINPUT, "%s: CMYK JPEG images are not supported", path);
    }
    /* Checked before jpeg_start_decompress: progressive and multi-scan files are decoded there
     * into a whole-image coefficient buffer, so a few hundred bytes declaring 30000x10000
     * pixels would cost a gigabyte and seconds. Huffman coding spends at least one bit per
     * 8x8 block on its DC coefficient: a shorter file cannot hold the image. */
    uint64_t w = cinfo.image_width, h = cinfo.image_height, blocks = ((w + 7) / 8) * ((h + 7) / 8);
    struct stat st;
    if (w == 0 || h == 0 || w * h > MAX_PIXELS) {
        jpeg_destroy_decompress(&cinfo);
        return qc_errf(err, QC_EINPUT, "%s: unsupported image size %llux%llu", path,
                       (unsigned long long)w, (unsigned long long)h);
    }
    if (!cinfo.arith_code && fstat(fileno(f), &st) == 0 && (uint64_t)st.st_size < blocks / 8) {
        jpeg_destroy_decompress(&cinfo);
        return qc_errf(err, QC_EINPUT, "%s: truncated or corrupt JPEG data (%lld bytes cannot "
                       "hold %llux%llu pixels)", path, (long long)st.st_size,
                       (unsigned long long)w, (unsigned long long)h);
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int rc = QC_OK;
    if (cinfo.output_components != 3)
        rc = qc_errf(err, QC_EINPUT, "%s: JPEG decodes to %d channels, expected 3", path,
                     cinfo.output_components);
    if (rc == QC_OK)
        rc = reserve(img, (int)cinfo.output_width, (int)cinfo.output_height, path, err);
    if (rc) {
        jpeg_destroy_decompress(&cinfo);
        return rc;
    }
    size_t stride = (size_t)img->width * 3;
    /* Stop at the end of the data: a few hundred bytes may declare 16000x16000 pixels, and
     * decoding the gray padding would cost seconds and most of a gigabyte for nothing. */
    while (cinfo.output_scanline < cinfo.output_height && !je.eof) {
        JSAMPROW row = img->rgb + cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    /* A truncated file is padded with gray by libjpeg: calibrating on it would be wrong. */
    if (je.eof)
        rc = qc_errf(err, QC_EINPUT, "%s: truncated or corrupt JPEG data", path);
    else
        jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return rc;
}

int qc_image_decode(qc_image *img, const char *path, qc_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return qc_errf(err, errno == ENOENT ? QC_EINPUT : QC_EIO, "%s: cannot open: %s", path,
                       strerror(errno));
    unsigned char sig[8];
    size_t got = fread(sig, 1, sizeof sig, f);
    int rc;
    if (got == 8 && !png_sig_cmp(sig, 0, 8)) {
        fclose(f);
        return decode_png(img, path, err);
    }
    if (got >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff) {
        rewind(f);
        rc = decode_jpeg(img, f, path, err);
    } else {
        rc = qc_errf(err, QC_EINPUT, "%s: not a PNG or JPEG image", path);
    }
    fclose(f);
    return rc;
}

void qc_image_free(qc_image *img)
{
    free(img->rgb);
    img->rgb = NULL;
    img->capacity = 0;
}
