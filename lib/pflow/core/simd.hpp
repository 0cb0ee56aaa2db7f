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
// Per-element kernels (any width gives the same bits): a model output's conversion
// (convert_output) and the finiteness check after every step.
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

// Whether every p_i (i < n) is finite: Eigen's allFinite() (whose loop is scalar).
bool all_finite(const double* p, std::ptrdiff_t n);

}  // namespace pflow::kernels
