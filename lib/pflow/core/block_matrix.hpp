// BlockMatrix: a D x D matrix kept in the structure the SDE gives it.
//
// The state of dimension D = groups * block is split into `groups` independent groups of
// `block` coordinates; coordinate j of group i sits at index j * groups + i. A scalar SDE on
// R^d is groups = d, block = 1 with one shared 1x1 block; CLD on (x, v) in R^{2d} is groups = d,
// block = 2 with one shared 2x2 block (x_i at i, v_i at d + i); blurring is groups = d, block = 1
// with one block per frequency; a dense matrix is groups = 1, block = D. Operations keep the
// structure, so a d = 3072 state never builds a dense 3072 x 3072 matrix unless asked to.
#pragma once

#include <functional>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/LU>

#include "pflow/core/errors.hpp"
#include "pflow/core/scalar.hpp"

namespace pflow {

// sum_i log v_i of positive numbers, with one log per run of factors whose product stays inside
// [1e-100, 1e100] rather than one per entry (a log costs ~60 multiplications in mp50).
template <class Scalar>
Scalar log_of_product(const Vec<Scalar>& v) {
  using std::log;
  const Scalar big = Scalar(1e100), small = Scalar(1e-100);
  Scalar logs = 0, product = 1;
  for (Eigen::Index i = 0; i < v.size(); ++i) {
    product *= v(i);
    if (product > big || product < small) {
      logs += log(product);
      product = 1;
    }
  }
  return logs + log(product);
}

template <class Scalar>
class BlockMatrix {
 public:
  using M = Mat<Scalar>;

  BlockMatrix() = default;

  // One block shared by all groups.
  static BlockMatrix shared(int groups, M block) {
    const int size = static_cast<int>(block.rows());
    return BlockMatrix(groups, size, {std::move(block)});
  }
  // One block per group.
  static BlockMatrix per_group(std::vector<M> blocks) {
    const int b = blocks.empty() ? 0 : static_cast<int>(blocks.front().rows());
    const int g = static_cast<int>(blocks.size());
    return BlockMatrix(g, b, std::move(blocks));
  }
  static BlockMatrix dense(M m) {
    const int size = static_cast<int>(m.rows());
    return BlockMatrix(1, size, {std::move(m)});
  }
  static BlockMatrix identity(int groups, int block) {
    return shared(groups, M::Identity(block, block));
  }
  static BlockMatrix zero(int groups, int block) { return shared(groups, M::Zero(block, block)); }
  // A diagonal matrix with one 1x1 block per entry of `diag`.
  static BlockMatrix diagonal(const Vec<Scalar>& diag) {
    std::vector<M> blocks(diag.size(), M(1, 1));
    for (Eigen::Index i = 0; i < diag.size(); ++i) blocks[i](0, 0) = diag(i);
    return per_group(std::move(blocks));
  }

  int groups() const { return groups_; }
  int block_size() const { return block_; }
  int dim() const { return groups_ * block_; }
  bool is_shared() const { return blocks_.size() == 1; }
  int stored_blocks() const { return static_cast<int>(blocks_.size()); }
  const M& block(int group) const { return blocks_[is_shared() ? 0 : group]; }
  M& stored_block(int k) { return blocks_[k]; }
  const M& stored_block(int k) const { return blocks_[k]; }

  // The full D x D matrix in the natural index order. For tests and small problems.
  M to_dense() const {
    M out = M::Zero(dim(), dim());
    for (int i = 0; i < groups_; ++i) {
      const M& b = block(i);
      for (int r = 0; r < block_; ++r)
        for (int c = 0; c < block_; ++c) out(r * groups_ + i, c * groups_ + i) = b(r, c);
    }
    return out;
  }

  // Re-expresses the matrix with coarser structure: as a dense matrix when layouts differ.
  BlockMatrix as_dense() const { return groups_ == 1 ? *this : dense(to_dense()); }

  // this * X for a D x n matrix X (particles as columns). A dense matrix of size <= 4 multiplies
  // coefficient by coefficient: Eigen's blocked product would pack X first, which costs more
  // than the product itself at so small a depth (the score of a 2-D mixture: 1.6x).
  M apply(const M& x) const {
    check_rows(x.rows());
    if (groups_ == 1) {
      if (block_ <= 4) return blocks_[0].lazyProduct(x);
      return blocks_[0] * x;
    }
    M out = M::Zero(x.rows(), x.cols());
    for (int r = 0; r < block_; ++r)
      for (int c = 0; c < block_; ++c) {
        auto dst = out.middleRows(r * groups_, groups_);
        auto src = x.middleRows(c * groups_, groups_);
        if (is_shared()) {
          if (blocks_[0](r, c) != Scalar(0)) dst += blocks_[0](r, c) * src;
        } else {
          Vec<Scalar> coeff(groups_);
          for (int i = 0; i < groups_; ++i) coeff(i) = blocks_[i](r, c);
          dst += coeff.asDiagonal() * src;
        }
      }
    return out;
  }

  BlockMatrix transpose() const {
    return map([](const M& b) { return M(b.transpose()); });
  }
  BlockMatrix inverse() const {
    return map([](const M& b) { return M(b.inverse()); });
  }
  // Lower Cholesky factor L with L L^T = this; throws NumericalError if not positive definite.
  BlockMatrix cholesky() const {
    return map([](const M& b) {
      Eigen::LLT<M> llt(b);
      if (llt.info() != Eigen::Success) throw NumericalError("Cholesky factorisation failed");
      return M(llt.matrixL());
    });
  }
  // Symmetric part (A + A^T)/2, used to remove round-off asymmetry of covariances.
  BlockMatrix symmetrized() const {
    return map([](const M& b) { return M((b + b.transpose()) / Scalar(2)); });
  }
  BlockMatrix scaled(const Scalar& s) const {
    return map([&](const M& b) { return M(s * b); });
  }
  // log det, from a Cholesky factorisation (the matrix must be positive definite).
  Scalar logdet_spd() const {
    using std::log;
    Scalar total = 0;
    for (const M& b : blocks_) {
      Eigen::LLT<M> llt(b);
      if (llt.info() != Eigen::Success) throw NumericalError("Cholesky factorisation failed");
      Scalar s = 0;
      for (int k = 0; k < block_; ++k) s += log(Scalar(llt.matrixLLT()(k, k)));
      total += 2 * s;
    }
    return is_shared() ? total * groups_ : total;
  }
  // log det(L L^T) = 2 sum_k log L_kk for this matrix L, a Cholesky factor (cholesky()).
  Scalar logdet_from_cholesky() const {
    Scalar total = 0;
    for (const M& b : blocks_) total += 2 * log_of_product(Vec<Scalar>(b.diagonal()));
    return is_shared() ? total * groups_ : total;
  }
  Scalar trace() const {
    Scalar total = 0;
    for (const M& b : blocks_) total += b.trace();
    return is_shared() ? total * groups_ : total;
  }
  Scalar max_abs() const {
    Scalar m = 0;
    for (const M& b : blocks_) m = std::max<Scalar>(m, b.cwiseAbs().maxCoeff());
    return m;
  }

  // The diagonal of a matrix of 1x1 blocks (block_size() == 1).
  Vec<Scalar> diagonal_values() const {
    Vec<Scalar> v(groups_);
    for (int i = 0; i < groups_; ++i) v(i) = block(i)(0, 0);
    return v;
  }

  friend BlockMatrix operator*(const BlockMatrix& a, const BlockMatrix& b) {
    // A diagonal (1x1 blocks: a scalar SDE's Psi) times one dense block is a row or column
    // scaling, O(d^2): densifying the diagonal made it a d^3 product (60 GFLOP at d = 3072).
    // The same values: each entry's sum has one nonzero term.
    if (a.dim() == b.dim() && a.block_ == 1 && b.groups_ == 1 && b.block_ > 1)
      return dense(a.diagonal_values().asDiagonal() * b.blocks_[0]);
    if (a.dim() == b.dim() && b.block_ == 1 && a.groups_ == 1 && a.block_ > 1)
      return dense(a.blocks_[0] * b.diagonal_values().asDiagonal());
    return combine(a, b, [](const M& x, const M& y) { return M(x * y); });
  }
  friend BlockMatrix operator+(const BlockMatrix& a, const BlockMatrix& b) {
    return combine(a, b, [](const M& x, const M& y) { return M(x + y); });
  }
  friend BlockMatrix operator-(const BlockMatrix& a, const BlockMatrix& b) {
    return combine(a, b, [](const M& x, const M& y) { return M(x - y); });
  }
  friend BlockMatrix operator*(const Scalar& s, const BlockMatrix& a) { return a.scaled(s); }

  template <class F>
  BlockMatrix map(F&& f) const {
    BlockMatrix out = *this;
    for (M& b : out.blocks_) b = f(b);
    if (!out.blocks_.empty()) out.block_ = static_cast<int>(out.blocks_[0].rows());
    return out;
  }

 private:
  BlockMatrix(int groups, int block, std::vector<M> blocks)
      : groups_(groups), block_(block), blocks_(std::move(blocks)) {}

  void check_rows(Eigen::Index rows) const {
    if (rows != dim())
      throw InputError("state rows", to_text(rows),
                       "does not match the SDE state dimension " + to_text(dim()));
  }

  template <class F>
  static BlockMatrix combine(const BlockMatrix& a, const BlockMatrix& b, F&& f) {
    if (a.dim() != b.dim())
      throw InputError("matrix dimension", to_text(b.dim()), "expected " + to_text(a.dim()));
    if (a.groups_ != b.groups_ || a.block_ != b.block_) {
      return dense(f(a.to_dense(), b.to_dense()));
    }
    if (a.is_shared() && b.is_shared()) return shared(a.groups_, f(a.blocks_[0], b.blocks_[0]));
    std::vector<M> out(a.groups_);
    for (int i = 0; i < a.groups_; ++i) out[i] = f(a.block(i), b.block(i));
    return per_group(std::move(out));
  }

  int groups_ = 0;
  int block_ = 0;
  std::vector<M> blocks_;
};

template <class Scalar>
Scalar max_abs_diff(const BlockMatrix<Scalar>& a, const BlockMatrix<Scalar>& b) {
  return (a - b).max_abs();
}

}  // namespace pflow
