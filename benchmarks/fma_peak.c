/* The float32 FMA ceiling of this CPU: `threads` threads, each 12 independent chains of 8-wide
 * float32 fused multiply-adds held in registers (no memory traffic), so the figure is what the FMA
 * units can do at the clock the cores run at — the most any float32 convolution can reach.
 *
 *     cc -O2 -mavx2 -mfma -pthread benchmarks/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak 2
 *
 * Prints one JSON line: threads, GFLOP/s (2 FLOPs per lane of each FMA), seconds. 256-bit vectors
 * run on any AVX2 + FMA CPU; on Zen 4 (this machine) 512-bit ones give the same figure (its
 * AVX-512 units are 256 bits wide). `benchmarks/float32_ceiling.py` builds and runs it.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 12
#define ITERATIONS 1000000000L

static void *fma_chains(void *result) {
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  __m256 a0 = _mm256_set1_ps(0.f), a1 = _mm256_set1_ps(1.f), a2 = _mm256_set1_ps(2.f);
  __m256 a3 = _mm256_set1_ps(3.f), a4 = _mm256_set1_ps(4.f), a5 = _mm256_set1_ps(5.f);
  __m256 a6 = _mm256_set1_ps(6.f), a7 = _mm256_set1_ps(7.f), a8 = _mm256_set1_ps(8.f);
  __m256 a9 = _mm256_set1_ps(9.f), a10 = _mm256_set1_ps(10.f), a11 = _mm256_set1_ps(11.f);
  for (long k = 0; k < ITERATIONS; k++) {
    a0 = _mm256_fmadd_ps(a0, b, c); a1 = _mm256_fmadd_ps(a1, b, c); a2 = _mm256_fmadd_ps(a2, b, c);
    a3 = _mm256_fmadd_ps(a3, b, c); a4 = _mm256_fmadd_ps(a4, b, c); a5 = _mm256_fmadd_ps(a5, b, c);
    a6 = _mm256_fmadd_ps(a6, b, c); a7 = _mm256_fmadd_ps(a7, b, c); a8 = _mm256_fmadd_ps(a8, b, c);
    a9 = _mm256_fmadd_ps(a9, b, c); a10 = _mm256_fmadd_ps(a10, b, c); a11 = _mm256_fmadd_ps(a11, b, c);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  *(float *)result = lanes[0]; /* used, so the chains are not optimised away */
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  if (threads < 1 || threads > 256) {
    fprintf(stderr, "usage: %s [threads 1..256]\n", argv[0]);
    return 2;
  }
  pthread_t *ids = malloc(sizeof(pthread_t) * threads);
  float *results = malloc(sizeof(float) * threads);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < threads; i++) pthread_create(&ids[i], NULL, fma_chains, &results[i]);
  for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  double flops = 2.0 * 8 * CHAINS * (double)ITERATIONS * threads;
  printf("{\"threads\": %d, \"gflops\": %.1f, \"seconds\": %.2f, \"check\": %g}\n", threads, flops / seconds / 1e9,
         seconds, (double)results[0]);
  free(ids);
  free(results);
  return 0;
}
