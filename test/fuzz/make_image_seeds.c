/* Seed images for fuzz_image: small PNGs (gray, gray+alpha, RGB, RGBA, palette, 16-bit,
 * interlaced) and JPEGs (gray, RGB 4:2:0 and 4:4:4, progressive, restart markers, CMYK,
 * truncated) written with the same libpng/libjpeg qcal links. Built and run by tools/fuzz.sh.
 *
 *     make_image_seeds OUTDIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>
#include <jpeglib.h>

static int W = 13, H = 9;           /* odd sizes: resizing rounds differently per axis */

static unsigned char pixel(int x, int y, int c)
{
    return (unsigned char)((x * 37 + y * 91 + c * 53) & 0xff);
}

static void fail(const char *what)
{
    perror(what);
    exit(1);
}

static void png(const char *dir, const char *name, int color, int depth, int interlace)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        fail(path);
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    if (setjmp(png_jmpbuf(p)))
        fail("libpng");
    png_init_io(p, f);
    png_set_IHDR(p, info, W, H, depth, color, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (color == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[16];
        for (int i = 0; i < 16; i++)
            pal[i] = (png_color){ (png_byte)(i * 16), (png_byte)(255 - i * 16), 128 };
        png_set_PLTE(p, info, pal, 16);
        png_byte trans[2] = { 0, 128 };
        png_set_tRNS(p, info, trans, 2, NULL);
    }
    png_write_info(p, info);
    int passes = png_set_interlace_handling(p);
    int ch = png_get_channels(p, info), bps = depth == 16 ? 2 : 1;
    unsigned char row[64 * 4 * 2];
    for (int y = 0; y < H * passes; y++) {
        memset(row, 0, sizeof row);
        for (int x = 0; x < W; x++)
            for (int c = 0; c < ch; c++) {
                unsigned char v = pixel(x, y % H, c);
                if (color == PNG_COLOR_TYPE_PALETTE)
                    v &= 15;
                if (depth == 16) {
                    row[(x * ch + c) * 2] = v;
                    row[(x * ch + c) * 2 + 1] = (unsigned char)(255 - v);
                } else if (depth == 4) {
                    row[x / 2] |= (unsigned char)((v & 15) << (x % 2 ? 0 : 4));
                } else {
                    row[(x * ch + c) * bps] = v;
                }
            }
        png_write_row(p, row);
    }
    png_write_end(p, info);
    png_destroy_write_struct(&p, &info);
    if (fclose(f) != 0)
        fail(path);
}

static void jpeg(const char *dir, const char *name, int comps, J_COLOR_SPACE cs, int h_samp,
                 int progressive, int restart, long truncate_to)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    unsigned char *mem = NULL;
    unsigned long size = 0;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &size);
    c.image_width = W;
    c.image_height = H;
    c.input_components = comps;
    c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    if (comps == 3) {
        c.comp_info[0].h_samp_factor = h_samp;
        c.comp_info[0].v_samp_factor = h_samp;
    }
    if (progressive)
        jpeg_simple_progression(&c);
    c.restart_in_rows = restart;
    jpeg_start_compress(&c, TRUE);
    unsigned char row[64 * 4];
    while (c.next_scanline < c.image_height) {
        for (int x = 0; x < W; x++)
            for (int k = 0; k < comps; k++)
                row[x * comps + k] = pixel(x, (int)c.next_scanline, k);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.jpg", dir, name);
    FILE *f = fopen(path, "wb");
    unsigned long n = truncate_to > 0 && (unsigned long)truncate_to < size
                          ? (unsigned long)truncate_to : size;
    if (!f || fwrite(mem, 1, n, f) != n || fclose(f) != 0)
        fail(path);
    free(mem);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fputs("usage: make_image_seeds OUTDIR\n", stderr);
        return 2;
    }
    const char *d = argv[1];
    png(d, "gray8", PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE);
    png(d, "gray16", PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE);
    png(d, "gray_alpha", PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE);
    png(d, "rgb8", PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE);
    png(d, "rgb16", PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE);
    png(d, "rgba8", PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_NONE);
    png(d, "palette4", PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE);
    png(d, "rgb_interlaced", PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7);
    jpeg(d, "gray", 1, JCS_GRAYSCALE, 1, 0, 0, 0);
    jpeg(d, "rgb420", 3, JCS_RGB, 2, 0, 0, 0);
    jpeg(d, "rgb444", 3, JCS_RGB, 1, 0, 0, 0);
    jpeg(d, "progressive", 3, JCS_RGB, 2, 1, 0, 0);
    jpeg(d, "restart", 3, JCS_RGB, 1, 0, 1, 0);
    jpeg(d, "cmyk", 4, JCS_CMYK, 1, 0, 0, 0);
    jpeg(d, "truncated", 3, JCS_RGB, 1, 0, 0, 300);
    W = 64, H = 48;
    png(d, "rgb_64x48", PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE);
    jpeg(d, "rgb_64x48", 3, JCS_RGB, 2, 0, 0, 0);
    return 0;
}
