/* madd_rate: multiply-adds per second of three AVX2 inner steps in a register-only loop, each
 * against FMA's, the question behind conv_avx2.c's integer tiles (which instruction pays on
 * a CPU without VNNI): VFMADD (8 float products a step), VPMADDWD + VPADDD on 16-bit codes
 * (16 products, exact for any int8 weights) and VPMADDUBSW + VPMADDWD + VPADDD on 8-bit codes
 * (32 products, exact only for weights whose pairs fit 16 bits). Ten or twelve independent
 * accumulators, so throughput, not latency, bounds each loop.
 *
 *   cc -O2 -o build/madd_rate tools/ab/madd_rate.c && build/madd_rate
 *
 * Not part of the build or the tests. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#define A2 __attribute__((target("avx2,fma"), noinline))
#define R10(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9)
#define N 100000000L

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* 10 FMAs a step: 80 products */
static A2 double fma_loop(float *out)
{
#define DF(i) __m256 a##i = _mm256_set1_ps((float)i * 1e-9f);
    R10(DF)
    __m256 w0 = _mm256_set1_ps(1.0f), w1 = _mm256_set1_ps(0.5f);
    double t = now();
    for (long n = 0; n < N; n++) {
        __asm__ volatile("" : "+x"(w0), "+x"(w1));
#define F(i) a##i = _mm256_fmadd_ps(w0, w1, a##i);
        R10(F)
    }
    t = now() - t;
#define SF(i) +a##i[0]
    *out = 0 R10(SF);
    return t;
}

/* 10 VPMADDWD + VPADDD a step: 160 products */
static A2 double madd16_loop(int *out)
{
#define DI(i) __m256i b##i = _mm256_set1_epi32(i);
    R10(DI)
    __m256i v0 = _mm256_set1_epi16(3), v1 = _mm256_set1_epi16(5);
    double t = now();
    for (long n = 0; n < N; n++) {
        __asm__ volatile("" : "+x"(v0), "+x"(v1));
#define I(i) b##i = _mm256_add_epi32(b##i, _mm256_madd_epi16(v0, v1));
        R10(I)
    }
    t = now() - t;
#define SI(i) +_mm256_extract_epi32(b##i, 0)
    *out = 0 R10(SI);
    return t;
}

/* 10 VPMADDUBSW + VPMADDWD + VPADDD a step: 320 products */
static A2 double maddubs_loop(int *out)
{
#define DU(i) __m256i c##i = _mm256_set1_epi32(i);
    R10(DU)
    __m256i u0 = _mm256_set1_epi8(3), u1 = _mm256_set1_epi8(5), ones = _mm256_set1_epi16(1);
    double t = now();
    for (long n = 0; n < N; n++) {
        __asm__ volatile("" : "+x"(u0), "+x"(u1), "+x"(ones));
#define U(i) c##i = _mm256_add_epi32(c##i, _mm256_madd_epi16(_mm256_maddubs_epi16(u0, u1), ones));
        R10(U)
    }
    t = now() - t;
#define SU(i) +_mm256_extract_epi32(c##i, 0)
    *out = 0 R10(SU);
    return t;
}

int main(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        fprintf(stderr, "madd_rate: this CPU has no AVX2 + FMA\n");
        return 1;
    }
    for (int round = 0; round < 2; round++) {
        float f;
        int i, u;
        double tf = fma_loop(&f), ti = madd16_loop(&i), tu = maddubs_loop(&u);
        printf("fma %.3f ns a step (80 products); madd16 %.3f ns (160): %.2fx fma's rate; "
               "maddubs %.3f ns (320): %.2fx  (%g %d %d)\n", tf / N * 1e9, ti / N * 1e9,
               (160 / ti) / (80 / tf), tu / N * 1e9, (320 / tu) / (80 / tf), f, i, u);
    }
    return 0;
}
