// The mixture score's softmax over components (Marginal::softmax) as one AVX-512 pass per
// column, chosen at run time, with the bits of the portable Eigen code it replaces.
//
// pflow is built for the x86-64 baseline (SSE2, no -march), so Eigen's vectorised exp works on
// two doubles at a time; at d = 2, K = 8 it was 40% of a solve (README "Speed"). This kernel
// makes the same operations eight lanes wide, in the same order and with the same roundings:
//   - exp(x): Eigen 3.4's pexp_double (the Cephes rational approximation, multiply-adds as a
//     product then a sum, its pldexp in four factors) lane for lane; the last element of an odd
//     count goes through std::exp, as Eigen's scalar tail does;
//   - the sum over components: Eigen's redux order for a column (two packet accumulators, the
//     alignment of the column's start, the scalar ends);
//   - subtraction of the column's maximum, the flush of subnormal weights and the division are
//     per element.
// So every result, and every shipped file, is the same on a machine with AVX-512 and on one
// without (there the caller keeps Eigen's code): test "the AVX-512 softmax is bit-identical to
// Eigen's".
#pragma once

#include <cstddef>

namespace pflow::kernels {

// True when this CPU runs the AVX-512 kernel (AVX512F and AVX512DQ; checked once) and it is
// enabled.
bool have_simd_softmax();
// Enables or disables the kernel (default: enabled), e.g. for a test that compares it with
// Eigen's code on the same machine. Not for use while scores are being evaluated.
void enable_simd_softmax(bool enabled);

// For each column j of a rows x cols column-major block of terms a (contiguous; the column starts
// at a + j rows):
//   top_j = max_i a_ij,  e_ij = exp(a_ij - top_j) (0 below the smallest normal double),
//   total_j = sum_i e_ij,  weights_ij = e_ij / total_j,
// with the arithmetic of Eigen 3.4's SSE2 code on a freshly allocated rows x cols array (see
// above). top and total (cols each) are written when not null. Requires have_simd_softmax() and
// rows >= 2; terms and weights may not overlap.
void simd_softmax(const double* terms, double* weights, std::ptrdiff_t rows, std::ptrdiff_t cols,
                  double* top, double* total);

// Eigen 3.4's order of summation for n doubles starting at p (SSE2 packets of two) when the
// first 16-byte-aligned element is p[aligned_start] (0 or 1): the reference the kernel follows,
// exposed for its test.
double eigen_ordered_sum(const double* p, std::ptrdiff_t n, std::ptrdiff_t aligned_start);

}  // namespace pflow::kernels
