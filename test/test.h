/* Minimal test harness: QC_TEST(name) registers itself; checks report file:line and go on. */
#ifndef QC_TEST_H
#define QC_TEST_H

#include <math.h>
#include <stdio.h>

typedef void (*qc_test_fn)(void);
void qc_test_register(const char *name, qc_test_fn fn);
void qc_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Where test data lives (QC_TESTDATA env or test/data); generated files go under build/. */
const char *qc_test_build_dir(void);

#define QC_TEST(name)                                                        \
    static void test_##name(void);                                           \
    __attribute__((constructor)) static void register_##name(void)          \
    { qc_test_register(#name, test_##name); }                               \
    static void test_##name(void)

#define CHECK(cond)                                                          \
    do { if (!(cond)) qc_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); } while (0)
#define CHECK_INT(a, b)                                                      \
    do { long long a_ = (long long)(a), b_ = (long long)(b);                 \
         if (a_ != b_) qc_test_fail(__FILE__, __LINE__, "%s = %lld, expected %s = %lld", \
                                    #a, a_, #b, b_); } while (0)
#define CHECK_NEAR(a, b, rtol, atol)                                         \
    do { double a_ = (double)(a), b_ = (double)(b);                          \
         if (!(fabs(a_ - b_) <= (atol) + (rtol) * fabs(b_)))                 \
             qc_test_fail(__FILE__, __LINE__, "%s = %.9g, expected %s = %.9g", \
                          #a, a_, #b, b_); } while (0)
#define CHECK_OK(expr)                                                       \
    do { int rc_ = (expr);                                                   \
         if (rc_ != 0) qc_test_fail(__FILE__, __LINE__, "%s returned %d: %s", \
                                    #expr, rc_, err.msg); } while (0)

#endif
