// AVX-512 kernels with Eigen 3.4's SSE2 arithmetic (simd.hpp). The AVX-512 code is
// confined to functions with a target attribute, so the rest of this translation unit (and
// anything inlined from headers) stays baseline x86-64; dispatch is by cpuid at run time.
//
// Products and sums are separate intrinsics: no multiply-add is fused (fp contraction off), as
// in Eigen's SSE2 build, where pmadd(a, b, c) is padd(pmul(a, b), c).
#include "pflow/core/simd.hpp"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

#if defined(__x86_64__) && defined(__clang__)
#define PFLOW_SIMD 1
#include <immintrin.h>
#endif

#pragma STDC FP_CONTRACT OFF

namespace pflow::kernels {

double eigen_ordered_sum(const double* p, std::ptrdiff_t n, std::ptrdiff_t aligned_start) {
  // Eigen/src/Core/Redux.h, LinearVectorizedTraversal without unrolling, packet size 2.
  const std::ptrdiff_t start = aligned_start < n ? aligned_start : n;
  const std::ptrdiff_t size2 = (n - start) / 4 * 4, size1 = (n - start) / 2 * 2;
  const std::ptrdiff_t end2 = start + size2, end1 = start + size1;
  if (size1 == 0) {  // too short for a packet: left to right
    double sum = p[0];
    for (std::ptrdiff_t i = 1; i < n; ++i) sum += p[i];
    return sum;
  }
  double lane0 = p[start], lane1 = p[start + 1];
  if (size1 > 2) {
    double next0 = p[start + 2], next1 = p[start + 3];
    for (std::ptrdiff_t i = start + 4; i < end2; i += 4) {
      lane0 += p[i];
      lane1 += p[i + 1];
      next0 += p[i + 2];
      next1 += p[i + 3];
    }
    lane0 += next0;
    lane1 += next1;
    if (end1 > end2) {
      lane0 += p[end2];
      lane1 += p[end2 + 1];
    }
  }
  double sum = lane0 + lane1;  // predux
  for (std::ptrdiff_t i = 0; i < start; ++i) sum += p[i];
  for (std::ptrdiff_t i = end1; i < n; ++i) sum += p[i];
  return sum;
}

double lane_dot(const double* a, const double* b, std::ptrdiff_t n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (std::ptrdiff_t i = 0; i < n; ++i) lane[i % 8] += a[i] * b[i];
  return ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
}

namespace {
void portable_quadratic_terms(const double* c, const double* y, std::ptrdiff_t rows,
                              std::ptrdiff_t cols, double offset, double sign, double* terms,
                              std::ptrdiff_t stride) {
  for (std::ptrdiff_t j = 0; j < cols; ++j)
    terms[j * stride] = offset - sign * lane_dot(c + j * rows, y + j * rows, rows) / 2;
}
}  // namespace

#ifdef PFLOW_SIMD
namespace {

#define PFLOW_AVX512 __attribute__((target("avx512f,avx512dq")))

// The lanes of an eight-double register that hold data when `remaining` elements are left.
PFLOW_AVX512 inline __mmask8 lanes_for(std::ptrdiff_t remaining) {
  return remaining >= 8 ? 0xff : static_cast<__mmask8>((1u << remaining) - 1);
}

// Eigen 3.4's pexp_double (GenericPacketMathFunctions.h) with its SSE2 pldexp, eight lanes.
// Operand orders follow Eigen's pmin/pmax (arguments swapped, so NaN propagates as there).
PFLOW_AVX512 inline __m512d eigen_exp(__m512d input) {
  const __m512d one = _mm512_set1_pd(1.0), two = _mm512_set1_pd(2.0), half = _mm512_set1_pd(0.5);
  __m512d x = _mm512_min_pd(_mm512_set1_pd(709.784), input);  // pmin(x, 709.784)
  x = _mm512_max_pd(_mm512_set1_pd(-709.784), x);             // pmax(x, -709.784)
  // n = floor(x log2(e) + 1/2)
  __m512d fx = _mm512_add_pd(_mm512_mul_pd(_mm512_set1_pd(1.4426950408889634073599), x), half);
  fx = _mm512_roundscale_pd(fx, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  // g = x - n log 2 in two steps (C1 + C2 = log 2)
  x = _mm512_sub_pd(x, _mm512_mul_pd(fx, _mm512_set1_pd(0.693145751953125)));
  x = _mm512_sub_pd(x, _mm512_mul_pd(fx, _mm512_set1_pd(1.42860682030941723212e-6)));
  const __m512d x2 = _mm512_mul_pd(x, x);
  auto madd = [](__m512d a, __m512d b, __m512d c)
                  PFLOW_AVX512 { return _mm512_add_pd(_mm512_mul_pd(a, b), c); };
  __m512d px = _mm512_set1_pd(1.26177193074810590878e-4);
  px = madd(px, x2, _mm512_set1_pd(3.02994407707441961300e-2));
  px = madd(px, x2, _mm512_set1_pd(9.99999999999999999910e-1));
  px = _mm512_mul_pd(px, x);
  __m512d qx = _mm512_set1_pd(3.00198505138664455042e-6);
  qx = madd(qx, x2, _mm512_set1_pd(2.52448340349684104192e-3));
  qx = madd(qx, x2, _mm512_set1_pd(2.27265548208155028766e-1));
  qx = madd(qx, x2, _mm512_set1_pd(2.00000000000000000009e0));
  x = _mm512_div_pd(px, _mm512_sub_pd(qx, px));
  x = madd(two, x, one);
  // pldexp (SSE/PacketMath.h): e clamped to [-2099, 2099], 2^e as 2^b 2^b 2^b 2^(e - 3b) with
  // b = floor(e / 4); each factor's exponent field is (b + 1023) << 52.
  __m512d e = _mm512_max_pd(_mm512_set1_pd(-2099.0), fx);
  e = _mm512_min_pd(_mm512_set1_pd(2099.0), e);
  const __m256i ei = _mm512_cvtpd_epi32(e);
  const __m256i b = _mm256_srai_epi32(ei, 2);
  const __m512i bias = _mm512_set1_epi64(1023);
  auto power = [&bias](__m256i exponent) PFLOW_AVX512 {
    return _mm512_castsi512_pd(
        _mm512_slli_epi64(_mm512_add_epi64(_mm512_cvtepi32_epi64(exponent), bias), 52));
  };
  const __m512d c = power(b);
  __m512d out = _mm512_mul_pd(_mm512_mul_pd(_mm512_mul_pd(x, c), c), c);
  out =
      _mm512_mul_pd(out, power(_mm256_sub_epi32(_mm256_sub_epi32(_mm256_sub_epi32(ei, b), b), b)));
  return _mm512_max_pd(input, out);  // pmax(2^n exp(g), input): non-finite inputs
}

PFLOW_AVX512 void softmax_avx512(const double* terms, double* weights, std::ptrdiff_t rows,
                                 std::ptrdiff_t cols, double* top, double* total) {
  const __m512d smallest_normal = _mm512_set1_pd(std::numeric_limits<double>::min());
  const __m512d lowest = _mm512_set1_pd(-std::numeric_limits<double>::infinity());
  // Eigen's exp on the whole rows x cols array ends in std::exp for an odd element count.
  const bool scalar_tail = (rows * cols) % 2 == 1;
  for (std::ptrdiff_t j = 0; j < cols; ++j) {
    const double* a = terms + j * rows;
    double* w = weights + j * rows;
    __m512d peak = lowest;
    for (std::ptrdiff_t i = 0; i < rows; i += 8) {
      const __mmask8 lanes = lanes_for(rows - i);
      peak = _mm512_max_pd(peak, _mm512_mask_loadu_pd(lowest, lanes, a + i));
    }
    const double column_top = _mm512_reduce_max_pd(peak);
    const __m512d shift = _mm512_set1_pd(column_top);
    for (std::ptrdiff_t i = 0; i < rows; i += 8) {
      const __mmask8 lanes = lanes_for(rows - i);
      const __m512d value = _mm512_sub_pd(_mm512_maskz_loadu_pd(lanes, a + i), shift);
      __m512d weight = eigen_exp(value);
      weight = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(weight, smallest_normal, _CMP_LT_OQ), weight,
                                    _mm512_setzero_pd());
      _mm512_mask_storeu_pd(w + i, lanes, weight);
    }
    if (scalar_tail && j == cols - 1) {
      const double e = std::exp(a[rows - 1] - column_top);
      w[rows - 1] = e < std::numeric_limits<double>::min() ? 0.0 : e;
    }
    // The column's first element sits at offset j rows into the array: its 16-byte alignment.
    const double sum = eigen_ordered_sum(w, rows, (j * rows) % 2);
    const __m512d divisor = _mm512_set1_pd(sum);
    for (std::ptrdiff_t i = 0; i < rows; i += 8) {
      const __mmask8 lanes = lanes_for(rows - i);
      _mm512_mask_storeu_pd(w + i, lanes,
                            _mm512_div_pd(_mm512_maskz_loadu_pd(lanes, w + i), divisor));
    }
    if (top) top[j] = column_top;
    if (total) total[j] = sum;
  }
}

PFLOW_AVX512 void convert_avx512(const double* out, const double* x, std::ptrdiff_t n,
                                 double a_from, double b_from, double b_to, double a_to,
                                 double* result) {
  for (std::ptrdiff_t i = 0; i < n; ++i) {  // vectorised by the compiler, eight lanes
    const double score = a_from * out[i] + b_from * x[i];
    result[i] = (score - b_to * x[i]) / a_to;
  }
}

PFLOW_AVX512 void weighted_sum_avx512(const double* const* parts, const double* weights,
                                      std::ptrdiff_t components, std::ptrdiff_t rows,
                                      std::ptrdiff_t cols, double* score) {
  // Eight rows per register, the last ones masked (at d = 16 a compiler-vectorised loop of
  // 32-element strides ran scalar).
  for (std::ptrdiff_t j = 0; j < cols; ++j) {
    const double* w = weights + j * components;
    const std::ptrdiff_t offset = j * rows;
    for (std::ptrdiff_t i = 0; i < rows; i += 8) {
      const __mmask8 lanes = lanes_for(rows - i);
      __m512d sum =
          _mm512_mul_pd(_mm512_set1_pd(w[0]), _mm512_maskz_loadu_pd(lanes, parts[0] + offset + i));
      for (std::ptrdiff_t k = 1; k < components; ++k)
        sum =
            _mm512_add_pd(sum, _mm512_mul_pd(_mm512_set1_pd(w[k]),
                                             _mm512_maskz_loadu_pd(lanes, parts[k] + offset + i)));
      _mm512_mask_storeu_pd(score + offset + i, lanes, _mm512_xor_pd(sum, _mm512_set1_pd(-0.0)));
    }
  }
}

PFLOW_AVX512 void subtract_mean_avx512(const double* z, const double* mean, std::ptrdiff_t rows,
                                       std::ptrdiff_t cols, double* out) {
  for (std::ptrdiff_t j = 0; j < cols; ++j)
    for (std::ptrdiff_t i = 0; i < rows; i += 8) {
      const __mmask8 lanes = lanes_for(rows - i);
      _mm512_mask_storeu_pd(out + j * rows + i, lanes,
                            _mm512_sub_pd(_mm512_maskz_loadu_pd(lanes, z + j * rows + i),
                                          _mm512_maskz_loadu_pd(lanes, mean + i)));
    }
}

PFLOW_AVX512 void quadratic_terms_avx512(const double* c, const double* y, std::ptrdiff_t rows,
                                         std::ptrdiff_t cols, double offset, double sign,
                                         double* terms, std::ptrdiff_t stride) {
  for (std::ptrdiff_t j = 0; j < cols; ++j) {
    const double* a = c + j * rows;
    const double* b = y + j * rows;
    __m512d lane = _mm512_setzero_pd();
    for (std::ptrdiff_t i = 0; i < rows; i += 8) {
      const __mmask8 lanes = lanes_for(rows - i);
      // masked-off lanes add 0 * 0: no change (a lane is never -0: it starts at +0)
      lane = _mm512_add_pd(lane, _mm512_mul_pd(_mm512_maskz_loadu_pd(lanes, a + i),
                                               _mm512_maskz_loadu_pd(lanes, b + i)));
    }
    // ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), as lane_dot
    const __m256d half =
        _mm256_add_pd(_mm512_castpd512_pd256(lane), _mm512_extractf64x4_pd(lane, 1));
    const __m128d quarter =
        _mm_add_pd(_mm256_castpd256_pd128(half), _mm256_extractf128_pd(half, 1));
    const double dot = _mm_cvtsd_f64(quarter) + _mm_cvtsd_f64(_mm_unpackhi_pd(quarter, quarter));
    terms[j * stride] = offset - sign * dot / 2;
  }
}

PFLOW_AVX512 bool all_finite_avx512(const double* p, std::ptrdiff_t n) {
  const double largest = std::numeric_limits<double>::max();
  bool finite = true;
  for (std::ptrdiff_t i = 0; i < n; ++i) finite &= std::fabs(p[i]) <= largest;  // NaN: false
  return finite;
}

std::atomic<bool> simd_enabled{true};

}  // namespace

bool have_simd() {
  static const bool available =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  return available && simd_enabled.load(std::memory_order_relaxed);
}
void enable_simd(bool enabled) {
  simd_enabled = enabled;
}

void simd_softmax(const double* terms, double* weights, std::ptrdiff_t rows, std::ptrdiff_t cols,
                  double* top, double* total) {
  softmax_avx512(terms, weights, rows, cols, top, total);
}
void convert_affine(const double* out, const double* x, std::ptrdiff_t n, double a_from,
                    double b_from, double b_to, double a_to, double* result) {
  convert_avx512(out, x, n, a_from, b_from, b_to, a_to, result);
}
void weighted_sum(const double* const* parts, const double* weights, std::ptrdiff_t components,
                  std::ptrdiff_t rows, std::ptrdiff_t cols, double* score) {
  weighted_sum_avx512(parts, weights, components, rows, cols, score);
}
void subtract_mean(const double* z, const double* mean, std::ptrdiff_t rows, std::ptrdiff_t cols,
                   double* out) {
  subtract_mean_avx512(z, mean, rows, cols, out);
}
void quadratic_terms(const double* c, const double* y, std::ptrdiff_t rows, std::ptrdiff_t cols,
                     double offset, double sign, double* terms, std::ptrdiff_t stride) {
  if (have_simd()) return quadratic_terms_avx512(c, y, rows, cols, offset, sign, terms, stride);
  portable_quadratic_terms(c, y, rows, cols, offset, sign, terms, stride);
}
bool all_finite(const double* p, std::ptrdiff_t n) {
  return all_finite_avx512(p, n);
}

#else  // not x86-64 with clang: have_simd() is false and callers keep Eigen's code

bool have_simd() {
  return false;
}
void enable_simd(bool) {}
void simd_softmax(const double*, double*, std::ptrdiff_t, std::ptrdiff_t, double*, double*) {
  throw std::logic_error("simd_softmax: this build has no AVX-512 kernels (see have_simd)");
}
void convert_affine(const double* out, const double* x, std::ptrdiff_t n, double a_from,
                    double b_from, double b_to, double a_to, double* result) {
  for (std::ptrdiff_t i = 0; i < n; ++i)
    result[i] = ((a_from * out[i] + b_from * x[i]) - b_to * x[i]) / a_to;
}
void weighted_sum(const double*, const double*, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t,
                  double*) {
  throw std::logic_error("weighted_sum: this build has no AVX-512 kernels (see have_simd)");
}
void subtract_mean(const double* z, const double* mean, std::ptrdiff_t rows, std::ptrdiff_t cols,
                   double* out) {
  for (std::ptrdiff_t j = 0; j < cols; ++j)
    for (std::ptrdiff_t i = 0; i < rows; ++i) out[j * rows + i] = z[j * rows + i] - mean[i];
}
void quadratic_terms(const double* c, const double* y, std::ptrdiff_t rows, std::ptrdiff_t cols,
                     double offset, double sign, double* terms, std::ptrdiff_t stride) {
  portable_quadratic_terms(c, y, rows, cols, offset, sign, terms, stride);
}
bool all_finite(const double* p, std::ptrdiff_t n) {
  for (std::ptrdiff_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

#endif

}  // namespace pflow::kernels
