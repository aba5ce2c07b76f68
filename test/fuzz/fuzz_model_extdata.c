/* libFuzzer target: fuzz_model with external data allowed from a folder of known files
 * (see fuzz_model.c), and the loaded model written back with qc_model_save. */
#define FUZZ_EXTDATA 1
#include "fuzz_model.c"
