/*
 * index_kernel.c — the dot-product kernel every search spends its time in.
 *
 * Plain C that GCC vectorises by itself. The float reduction is written with
 * FA_KERNEL_WIDE independent partial sums (an array the SLP vectoriser turns
 * into 8 ymm registers on AVX2, 16 xmm on SSE2), so no -ffast-math is needed:
 * the compiler never has to reassociate a sum. The one flag the kernel gets
 * is fp-contract=fast (only here, by attribute): the project builds with
 * -std=c11, where GCC defaults to fp-contract=off and would emit vmulps +
 * vaddps instead of vfmadd231ps.
 *
 * target_clones builds the function twice: for x86-64-v3 (AVX2 + FMA; note
 * that target_clones("avx2,fma") would instead make two clones, one per
 * feature) and a baseline x86-64 one, and an ifunc resolver picks one at
 * load time, so the binary stays portable.
 *
 * Measured on the build machine (AMD EPYC, dim 512, 200k rows, out of
 * cache): one row at a time with 8 ymm accumulators streams about 30 GB/s;
 * 4 rows at a time sharing the probe loads (also 8 accumulators) only about
 * 13 GB/s, with or without software prefetch — probably four interleaved
 * streams 2 KiB apart suit the hardware prefetcher worse than one. So rows
 * are scored one after the other. Large sets are memory-bound: 1M x 512
 * floats is 2 GB per search.
 */
#include "index_int.h"

#define FA_KERNEL_WIDE 64 /* floats summed in parallel; a multiple of FA_INDEX_LANES */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FA_KERNEL_ATTR __attribute__((target_clones("arch=x86-64-v3", "default"), \
                                      optimize("fp-contract=fast")))
#else
#define FA_KERNEL_ATTR
#endif

FA_KERNEL_ATTR
void fa_index_score(const float *rows, size_t stride, size_t n_rows, const float *probe,
                    float *out)
{
    const float *restrict p = __builtin_assume_aligned(probe, FA_INDEX_ALIGN);

    for (size_t r = 0; r < n_rows; r++) {
        const float *restrict row = __builtin_assume_aligned(rows + r * stride, FA_INDEX_ALIGN);
        float acc[FA_KERNEL_WIDE] = {0};
        size_t j = 0;

        for (; j + FA_KERNEL_WIDE <= stride; j += FA_KERNEL_WIDE)
            for (int l = 0; l < FA_KERNEL_WIDE; l++)
                acc[l] += row[j + l] * p[j + l];
        for (; j < stride; j += FA_INDEX_LANES)
            for (int l = 0; l < FA_INDEX_LANES; l++)
                acc[l] += row[j + l] * p[j + l];
        /* Pairwise fold, again without reassociating any single sum. */
        for (int half = FA_KERNEL_WIDE / 2; half >= 1; half /= 2)
            for (int l = 0; l < half; l++)
                acc[l] += acc[l + half];
        out[r] = acc[0];
    }
}
