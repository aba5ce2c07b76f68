/* A 256-entry code table looked up 16 values at a time (AVX-512) or 8 (AVX2), for the conv
 * kernels' epilogue (QC_CONV_QLUT) and the code-table step (ops_qdq.c). Private to src/exec; x86-64
 * with GCC only (the includer checks). */
#ifndef QC_LUT_X86_H
#define QC_LUT_X86_H

#include <immintrin.h>

/* The code of a uint8 fake quantization (scale q[0], zero point q[1]; ops_qdq.c's
 * fake_quant_avx2 on 16 lanes: a NaN quotient counts as 0, rounding to nearest even,
 * saturation), then the output for that code from the 256-entry table: eight two-register
 * permutes by the code's low 5 bits, the right one chosen by its top 3 bits. */
static inline __attribute__((always_inline, target("avx512f"))) __m512 qlut16(__m512 y,
                                                                                const float *q,
                                                                                const float *lut)
{
    __m512 a = _mm512_div_ps(y, _mm512_set1_ps(q[0]));
    __mmask16 ord = _mm512_cmp_ps_mask(a, a, _CMP_ORD_Q);
    a = _mm512_maskz_mov_ps(ord, _mm512_min_ps(_mm512_max_ps(a, _mm512_set1_ps(-1e6f)),
                                               _mm512_set1_ps(1e6f)));
    __m512i c = _mm512_add_epi32(_mm512_cvtps_epi32(a), _mm512_set1_epi32((int)q[1]));
    c = _mm512_min_epi32(_mm512_max_epi32(c, _mm512_setzero_si512()), _mm512_set1_epi32(255));
    __m512 v[8];
    for (int j = 0; j < 8; j++)
        v[j] = _mm512_permutex2var_ps(_mm512_loadu_ps(lut + 32 * j), c,
                                      _mm512_loadu_ps(lut + 32 * j + 16));
    __mmask16 b5 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(32));
    __mmask16 b6 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(64));
    __mmask16 b7 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(128));
    for (int j = 0; j < 4; j++)
        v[j] = _mm512_mask_mov_ps(v[2 * j], b5, v[2 * j + 1]);
    for (int j = 0; j < 2; j++)
        v[j] = _mm512_mask_mov_ps(v[2 * j], b6, v[2 * j + 1]);
    return _mm512_mask_mov_ps(v[0], b7, v[1]);
}

/* qlut16 on 8 lanes: the same code, the table read by a gather. */
static inline __attribute__((always_inline, target("avx2"))) __m256 qlut8(__m256 y,
                                                                           const float *q,
                                                                           const float *lut)
{
    __m256 a = _mm256_div_ps(y, _mm256_set1_ps(q[0]));
    a = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(a, _mm256_set1_ps(-1e6f)),
                                    _mm256_set1_ps(1e6f)),
                      _mm256_cmp_ps(a, a, _CMP_ORD_Q));
    __m256i c = _mm256_add_epi32(_mm256_cvtps_epi32(a), _mm256_set1_epi32((int)q[1]));
    c = _mm256_min_epi32(_mm256_max_epi32(c, _mm256_setzero_si256()), _mm256_set1_epi32(255));
    return _mm256_i32gather_ps(lut, c, 4);
}

#endif
