// AVX-512 kernels for the hot loops of a double solve, chosen at run time, with the bits of the
// portable Eigen code they replace.
//
// pflow is built for the x86-64 baseline (SSE2, no -march): one binary for every x86-64 machine.
// Eigen's vectorised code then works on two doubles at a time; these kernels make the same
// operations eight lanes wide, in the same order and with the same roundings (no multiply-add
// is fused), so every result, and every shipped file, is the same with them and without them
// (tests "... bit-identical to Eigen's"). On a CPU without AVX-512 the callers keep Eigen's code.
//
// The mixture score's softmax over components (Marginal::softmax; at d = 2, K = 8 Eigen's exp was
// 40% of a solve, README "Speed"):
//   - exp(x): Eigen 3.4's pexp_double (the Cephes rational approximation, multiply-adds as a
//     product then a sum, its pldexp in four factors) lane for lane; the last element of an odd
//     count goes through std::exp, as Eigen's scalar tail does;
//   - the sum over components: Eigen's redux order for a column (two packet accumulators, the
//     alignment of the column's start, the scalar ends);
//   - subtraction of the column's maximum, the flush of subnormal weights and the division are
//     per element.
// Per-element kernels (any width gives the same bits): the weighted sum of the component scores
// (the precision form, d >= 5), a model output's conversion (convert_output) and the finiteness
// check after every step.
#pragma once

#include <cstddef>

namespace pflow::kernels {

// True when this CPU runs the AVX-512 kernels (AVX512F and AVX512DQ; checked once) and they are
// enabled. The functions below require it.
bool have_simd();
// Enables or disables the kernels (default: enabled), e.g. for a test that compares them with
// Eigen's code on the same machine. Not for use while a solve runs.
void enable_simd(bool enabled);

// For each column j of a rows x cols column-major block of terms a (contiguous; the column starts
// at a + j rows):
//   top_j = max_i a_ij,  e_ij = exp(a_ij - top_j) (0 below the smallest normal double),
//   total_j = sum_i e_ij,  weights_ij = e_ij / total_j,
// with the arithmetic of Eigen 3.4's SSE2 code on a freshly allocated rows x cols array (see
// above). top and total (cols each) are written when not null. Requires rows >= 2; terms and
// weights may not overlap.
void simd_softmax(const double* terms, double* weights, std::ptrdiff_t rows, std::ptrdiff_t cols,
                  double* top, double* total);

// Eigen 3.4's order of summation for n doubles starting at p (SSE2 packets of two) when the
// first 16-byte-aligned element is p[aligned_start] (0 or 1): the reference the kernel follows,
// exposed for its test.
double eigen_ordered_sum(const double* p, std::ptrdiff_t n, std::ptrdiff_t aligned_start);

// result_i = ((a_from out_i + b_from x_i) - b_to x_i) / a_to for i < n: Eigen's
// (a_from * out + b_from * x) stored, then (score - b_to * x) / a_to (convert_output).
void convert_affine(const double* out, const double* x, std::ptrdiff_t n, double a_from,
                    double b_from, double b_to, double a_to, double* result);

// score_ij = -(((w_0j y0_ij + w_1j y1_ij) + w_2j y2_ij) + ...) for i < rows, j < cols: the
// mixture score's weighted sum of the K component terms y_k (rows x cols each, column-major, at
// parts[k]) with the responsibilities w (K x cols, column-major), summed in component order as
// Marginal's Eigen loop does.
void weighted_sum(const double* const* parts, const double* weights, std::ptrdiff_t components,
                  std::ptrdiff_t rows, std::ptrdiff_t cols, double* score);

// out_ij = z_ij - m_i for i < rows, j < cols (column-major): the residuals of a column block
// from a component's mean, as Eigen's colwise() difference makes them.
void subtract_mean(const double* z, const double* mean, std::ptrdiff_t rows, std::ptrdiff_t cols,
                   double* out);

// The precision form's quadratic terms: terms[j * stride] = offset - sign * dot(c_j, y_j) / 2 for
// the columns j < cols of c and y (rows x cols, column-major), each dot in eight lanes as
// lane_dot sums it. Unlike the others, runs on any CPU (portably where have_simd() is false).
void quadratic_terms(const double* c, const double* y, std::ptrdiff_t rows, std::ptrdiff_t cols,
                     double offset, double sign, double* terms, std::ptrdiff_t stride);

// sum_i a_i b_i in the kernels' order, portable (the fallback of quadratic_terms, and the
// reference its test compares with): lane l (0..7) sums the products of i = l mod 8 in increasing
// i, then ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
double lane_dot(const double* a, const double* b, std::ptrdiff_t n);

// Whether every p_i (i < n) is finite: Eigen's allFinite() (whose loop is scalar).
bool all_finite(const double* p, std::ptrdiff_t n);

}  // namespace pflow::kernels
