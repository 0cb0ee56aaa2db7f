// The marginal p_t of Gaussian-mixture data under a linear SDE, with its analytic score and the
// eps / x0 / v predictions (docs/NOTES.md sec. 3).
//
// p_t = sum_k w_k N(m_k, C_k), m_k = Psi(t,0) lift(mu_k), C_k = Psi lift(S_k) Psi^T + Sigma(t),
// score = -sum_k gamma_k C_k^{-1} (x - m_k), gamma = softmax_k(log w_k + log N(x; m_k, C_k)).
// Factorisations are made once per t (in the constructor), never per particle.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include <Eigen/QR>

#include "pflow/core/simd.hpp"
#include "pflow/sde/scalar_sdes.hpp"
#include "pflow/target/gaussian_mixture.hpp"

namespace pflow {

template <class Scalar>
class Marginal {
 public:
  Marginal(const LinearSde<Scalar>& sde, const GaussianMixture<Scalar>& data, const Scalar& t);

  const Scalar& time() const { return t_; }
  const BlockMatrix<Scalar>& transition() const { return psi_; }    // Psi(t, 0), spectral
  const BlockMatrix<Scalar>& covariance() const { return sigma_; }  // Sigma(t), spectral

  // log(w_k N(x; m_k, C_k)) per component k and column of x (K x n): log p_t(x, k). Their
  // log-sum-exp over k is log p_t(x); the largest names the most probable component.
  Mat<Scalar> component_log_joint(const Mat<Scalar>& x) const {
    return log_terms(sde_->to_spectral(x)).first;
  }
  // log p_t(y | x) for each column of x: the log-sum-exp of log p_t(x, k) over the components
  // labelled y, minus log p_t(x) (a labelled mixture; docs/NOTES.md sec. 14).
  Vec<Scalar> class_log_posterior(const Mat<Scalar>& x, int y) const;
  // grad_x log p_t(y | x) = sum_k (r^y_k - r_k) s_k (D x n): s_k = -C_k^{-1} (x - m_k) the
  // component scores, r the responsibilities, r^y those within class y (zero outside it).
  Mat<Scalar> class_score(const Mat<Scalar>& x, int y) const;
  // log p_t(x) for each column of x (D x n).
  Vec<Scalar> log_density(const Mat<Scalar>& x) const {
    return evaluate(sde_->to_spectral(x), true).log_density;
  }
  // grad_x log p_t(x), D x n.
  Mat<Scalar> score(const Mat<Scalar>& x) const {
    if (spectral_is_identity_) return evaluate(x).score;
    return sde_->from_spectral(evaluate(sde_->to_spectral(x)).score);
  }
  // tr(W grad_x score(x)) for each column of x, with W given in the SDE's spectral basis (the
  // trace is the same in either basis: the basis change is orthogonal). With the Hessian of the
  // log-mixture, H = sum_k g_k (s_k s_k^T - C_k^{-1}) - s s^T (s_k = -C_k^{-1} (z - m_k), s =
  // sum_k g_k s_k, g the responsibilities), tr(W H) = sum_k g_k (s_k^T W s_k - tr(W C_k^{-1}))
  // - s^T W s (docs/NOTES.md sec. 12).
  Vec<Scalar> score_divergence(const Mat<Scalar>& x, const BlockMatrix<Scalar>& w) const;

  // grad_x score(x) v for each column of x with its own tangent v (D x n): the Hessian of the
  // log-mixture applied to v, sum_k g_k (s_k (s_k . v) - C_k^{-1} v) - s (s . v), in the
  // spectral basis and back.
  Mat<Scalar> score_jvp(const Mat<Scalar>& x, const Mat<Scalar>& v) const;

  // Noise prediction eps = -K^T score with K K^T = Sigma(t) (K = lower Cholesky factor;
  // K = sigma(t) for scalar SDEs).
  Mat<Scalar> eps(const Mat<Scalar>& x) const {
    const Mat<Scalar> s = evaluate(sde_->to_spectral(x)).score;
    return sde_->from_spectral(-noise_factor().transpose().apply(s));
  }
  // Tweedie: E[Psi lift(x0) | x_t] = x + Sigma score, so x0_hat = data part of
  // Psi^{-1} (x + Sigma score); d x n.
  Mat<Scalar> x0(const Mat<Scalar>& x) const {
    const Mat<Scalar> z = sde_->to_spectral(x);
    const Mat<Scalar> s = evaluate(z).score;
    return sde_->data_part(psi_inv_.apply(z + sigma_.apply(s)));
  }
  // v = alpha eps - sigma x0_hat (Salimans & Ho 2022); defined for scalar SDEs.
  Mat<Scalar> v(const Mat<Scalar>& x) const {
    const auto* scalar = dynamic_cast<const ScalarSde<Scalar>*>(sde_);
    if (!scalar)
      throw InputError("prediction", "v",
                       "is defined for scalar SDEs only, not for " + sde_->name());
    return scalar->alpha(t_) * eps(x) - scalar->sigma(t_) * x0(x);
  }
  const BlockMatrix<Scalar>& noise_factor() const {
    if (!noise_factor_)
      throw InputError("t", to_text(t_), "Sigma(t) is singular here: eps-prediction is undefined");
    return *noise_factor_;
  }

  // n samples of p_t (D x n).
  // (The Cholesky factors of C_k, made here whatever factors the score uses, so that a seed
  // gives the same samples as it always did.)
  Mat<Scalar> sample(int n, Rng& rng) const;

 private:
  struct Component {
    Scalar log_weight;
    Mat<Scalar> mean;                         // D x 1, spectral
    std::optional<BlockMatrix<Scalar>> chol;  // L L^T = C_k (not made on the spectral path)
    BlockMatrix<Scalar> chol_inv;             // A with A^T A = C_k^{-1}: L^{-1}, or spectral
    // Or, for a dense S_k under a scalar SDE from d = 5, A = diag(inv_root) U^T with U the
    // data's cached eigenvectors (chol_inv is then empty).
    const Mat<Scalar>* vectors = nullptr;
    Vec<Scalar> inv_root;
    // Or, for S_k = D + U diag(l) U^T (low rank plus diagonal) under a scalar SDE,
    // A = (I - Q diag(shrink) Q^T) diag(inv_root) with inv_root = delta^{-1/2}
    // (low_rank_whitening); chol_inv is then empty too.
    bool low_rank = false;
    Mat<Scalar> low_rank_basis;   // Q, d x r, orthonormal columns
    Vec<Scalar> low_rank_shrink;  // r
    Scalar log_det;
  };

  // C = alpha^2 S + sigma^2 I = diag(delta) + B0 B0^T with delta = alpha^2 D + sigma^2 and
  // B0 = alpha U diag(l)^{1/2}. With B = diag(delta)^{-1/2} B0 = Q diag(s) V^T (thin SVD, from a QR
  // factorisation of B), C^{-1} = diag(delta)^{-1/2} (I + B B^T)^{-1} diag(delta)^{-1/2} and (I + B
  // B^T)^{-1/2} = I - Q diag(1 - (1 + s^2)^{-1/2}) Q^T, so A = (I - Q diag(shrink) Q^T)
  // diag(delta)^{-1/2} has A^T A = C^{-1}, and log det C = sum log delta + sum log(1 + s^2).
  // O(d r^2) per t (O(d r) when D = c I: then Q = U); false if C is singular.
  static bool low_rank_whitening(const LowRankPlusDiagonal& s0, const Scalar& alpha,
                                 const Scalar& sigma, Component& c) {
    using std::log;
    using std::sqrt;
    const Eigen::Index d = s0.diagonal.size(), r = s0.rank();
    const Vec<Scalar> delta =
        (alpha * alpha * s0.diagonal.template cast<Scalar>().array() + sigma * sigma).matrix();
    if (!(delta.minCoeff() > 0)) return false;
    c.low_rank = true;
    c.inv_root = delta.cwiseSqrt().cwiseInverse();
    const Mat<Scalar> u = s0.vectors.template cast<Scalar>();
    Vec<Scalar> s2(r);  // s^2
    if (s0.scaled_identity) {
      c.low_rank_basis = u;
      s2 = (alpha * alpha / delta(0)) * s0.values.template cast<Scalar>();
    } else {
      const Mat<Scalar> b = c.inv_root.asDiagonal() * alpha * u *
                            s0.values.template cast<Scalar>().cwiseSqrt().asDiagonal();
      const Eigen::HouseholderQR<Mat<Scalar>> qr(b);
      const Mat<Scalar> q = qr.householderQ() * Mat<Scalar>::Identity(d, r);
      // B = Q1 R and R R^T = W diag(s^2) W^T (r x r), so Q = Q1 W.
      const Mat<Scalar> upper = qr.matrixQR().topRows(r).template triangularView<Eigen::Upper>();
      const Eigen::SelfAdjointEigenSolver<Mat<Scalar>> eig(upper * upper.transpose());
      c.low_rank_basis = q * eig.eigenvectors();
      s2 = eig.eigenvalues().cwiseMax(Scalar(0));
    }
    c.low_rank_shrink.resize(r);
    Scalar log_det = 0;
    for (Eigen::Index i = 0; i < d; ++i) log_det += log(delta(i));
    for (Eigen::Index i = 0; i < r; ++i) {
      const Scalar root = sqrt(1 + s2(i));  // 1 - 1/root without cancellation
      c.low_rank_shrink(i) = s2(i) / (root * (1 + root));
      log_det += 2 * log(root);
    }
    c.log_det = log_det;
    return true;
  }
  // A (z - m_k) and A^T y for a component, whichever form its A has.
  static Mat<Scalar> whiten(const Component& c, const Mat<Scalar>& centred) {
    if (c.vectors) return c.inv_root.asDiagonal() * (c.vectors->transpose() * centred);
    if (c.low_rank) return shrink(c, c.inv_root.asDiagonal() * centred);
    return c.chol_inv.apply(centred);
  }
  static Mat<Scalar> whiten_transpose(const Component& c, const Mat<Scalar>& y) {
    if (c.vectors) return *c.vectors * (c.inv_root.asDiagonal() * y);
    if (c.low_rank) return c.inv_root.asDiagonal() * shrink(c, y);
    return c.chol_inv.transpose().apply(y);
  }
  // (I - Q diag(shrink) Q^T) y, O(d r) per column; in double the two products go through
  // OpenBLAS (1024 particles at d = 3072, r = 64: they are the score's cost).
  static Mat<Scalar> shrink(const Component& c, Mat<Scalar> y) {
    const Mat<Scalar>& q = c.low_rank_basis;
    Mat<Scalar> coefficients(q.cols(), y.cols());
    if constexpr (std::is_same_v<Scalar, double>)
      blas_gemm(true, 1.0, q, y.data(), y.cols(), 0.0, coefficients.data());
    else
      coefficients.noalias() = q.transpose() * y;
    coefficients = c.low_rank_shrink.asDiagonal() * coefficients;
    if constexpr (std::is_same_v<Scalar, double>)
      blas_gemm(false, -1.0, q, coefficients.data(), y.cols(), 1.0, y.data());
    else
      y.noalias() -= q * coefficients;
    return y;
  }
  // The precision C_k^{-1} = A_k^T A_k of a dense whitening (d x d; a symmetric rank-d product,
  // OpenBLAS's dsyrk in double: exactly symmetric, and at d = 16 a mixture solve's error against
  // float128 was 5x smaller than with Eigen's product).
  static Mat<Scalar> precision(const Component& c) {
    const Mat<Scalar> root = c.vectors ? Mat<Scalar>(*c.vectors * c.inv_root.asDiagonal())
                                       : Mat<Scalar>(c.chol_inv.stored_block(0).transpose());
    if constexpr (std::is_same_v<Scalar, double>)
      return lapack_gram(root);
    else
      return root * root.transpose();
  }

  // A itself (formed for the spectral and low-rank forms: the divergence and Jacobian paths need
  // it).
  static BlockMatrix<Scalar> whitening_matrix(const Component& c) {
    if (c.vectors)
      return BlockMatrix<Scalar>::dense(c.inv_root.asDiagonal() * c.vectors->transpose());
    if (c.low_rank) {
      const Eigen::Index d = c.inv_root.size();
      return BlockMatrix<Scalar>::dense(shrink(c, Mat<Scalar>::Identity(d, d)) *
                                        c.inv_root.asDiagonal());
    }
    return c.chol_inv;
  }
  struct Evaluation {
    Vec<Scalar> log_density;
    Mat<Scalar> score;
    Mat<Scalar> responsibilities;  // K x n: posterior weights of the components
  };

  static const Scalar& log_2pi() {  // once per number type, not per evaluation
    using std::log;
    static const Scalar value = log(2 * pi<Scalar>());
    return value;
  }

  // log sum_i exp(v_i) of a vector or a column, without a copy (one call per particle).
  template <class Derived>
  static Scalar log_sum_exp(const Eigen::MatrixBase<Derived>& v) {
    using std::exp;
    using std::log;
    const Scalar top = v.maxCoeff();
    Scalar total = 0;
    for (Eigen::Index i = 0; i < v.size(); ++i) total += exp(v(i) - top);
    return top + log(total);
  }

  // log w_k + log N(z; m_k, C_k) (K x n) in spectral coordinates, and the whitened residuals
  // L_k^{-1} (z - m_k) of each component.
  std::pair<Mat<Scalar>, std::vector<Mat<Scalar>>> log_terms(const Mat<Scalar>& z) const;

  // The score in spectral coordinates, the responsibilities and, when asked for, the
  // log-density (the log-sum-exp over components of log w_k + log N(z; m_k, C_k)).
  Evaluation evaluate(const Mat<Scalar>& z, bool with_log_density = false) const;

  // gamma_k = e^{a_k - top} / sum_i e^{a_i - top} from the terms a (K x n), and the log-sum-exp
  // top + log(sum) when asked for. The exponentials run on a plain array, so that Eigen
  // vectorises them (one exp per component and particle).
  static void softmax(const Mat<Scalar>& terms, Evaluation& out, bool with_log_density) {
    using Row = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;
    Mat<Scalar>& resp = out.responsibilities;
    if (terms.rows() == 1) {
      resp.setOnes();
      if (with_log_density) out.log_density = terms.row(0).transpose();
      return;
    }
    if (simd_softmax(terms, out, with_log_density, 0, terms.cols())) return;
    const Row top = terms.colwise().maxCoeff();
    resp.noalias() = terms - top.replicate(terms.rows(), 1);
    resp.array() = resp.array().exp();
    // Weights below the smallest normal double (a - top < -708: well-separated components at
    // small t) become zero: they change no sum by a representable amount, while subnormal
    // operands slow every product with them ~100x (the weighted sum of the K component scores
    // took half of a d = 64, K = 8 solve).
    if constexpr (std::is_same_v<Scalar, double>)
      resp = (resp.array() < std::numeric_limits<double>::min()).select(0.0, resp);
    const Row total = resp.colwise().sum();
    resp.array().rowwise() /= total.array();
    if (with_log_density) out.log_density = (top.array() + total.array().log()).transpose();
  }
  // The same for the columns begin .. begin + count - 1 alone (through a copy: the
  // exponentials then run on a whole array, as above).
  static void softmax_columns(const Mat<Scalar>& terms, Evaluation& out, bool with_log_density,
                              Eigen::Index begin, Eigen::Index count) {
    if (terms.rows() > 1 && simd_softmax(terms, out, with_log_density, begin, count)) return;
    Evaluation part{Vec<Scalar>(with_log_density ? count : 0), Mat<Scalar>(),
                    Mat<Scalar>(terms.rows(), count)};
    softmax(terms.middleCols(begin, count), part, with_log_density);
    out.responsibilities.middleCols(begin, count) = part.responsibilities;
    if (with_log_density) out.log_density.segment(begin, count) = part.log_density;
  }

  // The two above in one AVX-512 pass per column, with the same bits, where the CPU has it
  // (core/simd.hpp; double only, at least two components). False: not run.
  static bool simd_softmax(const Mat<Scalar>& terms, Evaluation& out, bool with_log_density,
                           Eigen::Index begin, Eigen::Index count) {
    if constexpr (std::is_same_v<Scalar, double>) {
      if (!kernels::have_simd()) return false;
      const Eigen::Index rows = terms.rows();
      using Row = Eigen::Matrix<double, 1, Eigen::Dynamic>;
      Row top(with_log_density ? count : 0), total(with_log_density ? count : 0);
      kernels::simd_softmax(terms.data() + begin * rows, out.responsibilities.data() + begin * rows,
                            rows, count, with_log_density ? top.data() : nullptr,
                            with_log_density ? total.data() : nullptr);
      if (with_log_density)  // as in softmax: Eigen's log on a fresh row
        out.log_density.segment(begin, count) = (top.array() + total.array().log()).transpose();
      return true;
    } else {
      return false;
    }
  }

  // Every whitening a single dense matrix (a scalar SDE): D = d rows, fixed for d <= 4.
  template <int D>
  Evaluation evaluate_dense(const Mat<Scalar>& z, bool with_log_density) const {
    using Rows = Eigen::Matrix<Scalar, D, Eigen::Dynamic>;
    using Square = Eigen::Matrix<Scalar, D, D>;
    const Eigen::Index n = z.cols(), dim = z.rows();
    const int kk = static_cast<int>(comps_.size());
    Evaluation out{Vec<Scalar>(with_log_density ? n : 0), Mat<Scalar>(dim, n), Mat<Scalar>(kk, n)};
    const Eigen::Map<const Rows> zd(z.data(), dim, n);
    Eigen::Map<Rows> score(out.score.data(), dim, n);
    auto product = [](const Square& a, const Rows& x, auto&& dst) {
      if constexpr (D == Eigen::Dynamic)
        dst.noalias() = a * x;
      else
        dst.noalias() = a.lazyProduct(x);
    };
    // Precision form, from d = 5, once there are at least as many particles as dimensions and
    // every whitening is dense: P_k = C_k^{-1} = A_k^T A_k is formed (d^3 per component, a
    // symmetric rank-d product) and each component costs one product y_k = P_k (z - m_k) instead
    // of two. The quadratic form is (z - m_k) . y_k and the score -sum_k gamma_k y_k: half the
    // product flops of the whitened form below. (d <= 4 keeps the fixed-size kernels and the
    // arithmetic it always had.)
    if constexpr (D == Eigen::Dynamic) {
      const bool all_dense =
          std::none_of(comps_.begin(), comps_.end(), [](const Component& c) { return c.low_rank; });
      if (all_dense && n >= dim) {
        const bool need_terms = kk > 1 || with_log_density;
        // One component: y = -P (z - m) goes straight into the score.
        const Scalar sign = kk == 1 ? Scalar(-1) : Scalar(1);
        std::vector<Square> precisions;
        for (const Component& c : comps_) precisions.push_back(sign * precision(c));
        Mat<Scalar> terms(need_terms ? kk : 0, n);
        // Columns in blocks whose K products stay in cache (256 KB): all K of them are read again
        // once the responsibilities are known (d = 64, K = 8: 1.1x against 1024-column chunks).
        const Eigen::Index block =
            std::min<Eigen::Index>(n, std::max<Eigen::Index>(64, 32768 / (kk * dim)));
        Rows centred(dim, block);
        Eigen::Matrix<Scalar, D, 1> sum(dim);
        std::vector<Rows> products(kk == 1 ? 0 : kk, Rows(dim, block));  // y_k
        std::vector<const Scalar*> parts;  // their data, for the weighted-sum kernel
        for (const Rows& p : products) parts.push_back(p.data());
        for (Eigen::Index begin = 0; begin < n; begin += block) {
          const Eigen::Index m = std::min(block, n - begin);
          for (int k = 0; k < kk; ++k) {
            const Component& c = comps_[k];
            Eigen::Map<Rows> y(kk == 1 ? out.score.data() + begin * dim : products[k].data(), dim,
                               m);
            const Scalar offset = c.log_weight - (c.log_det + Scalar(dim) * log_2pi()) / 2;
            if constexpr (std::is_same_v<Scalar, double>) {
              // The residuals and the quadratic forms through the AVX-512 kernels where the CPU
              // has them; the dot products in their eight-lane order either way (core/simd.hpp).
              if (kernels::have_simd())
                kernels::subtract_mean(zd.data() + begin * dim, c.mean.data(), dim, m,
                                       centred.data());
              else
                centred.leftCols(m) = zd.middleCols(begin, m).colwise() - c.mean.col(0);
              blas_gemm(false, 1.0, precisions[k], centred.data(), m, 0.0, y.data());  // OpenBLAS
              if (need_terms)
                kernels::quadratic_terms(centred.data(), y.data(), dim, m, offset, sign,
                                         terms.data() + begin * kk + k, kk);
            } else {
              centred.leftCols(m) = zd.middleCols(begin, m).colwise() - c.mean.col(0);
              product(precisions[k], centred.leftCols(m), y);
              if (need_terms)  // column by column: contiguous, vectorised dot products
                for (Eigen::Index j = 0; j < m; ++j)
                  terms(k, begin + j) = offset - sign * centred.col(j).dot(y.col(j)) / 2;
            }
          }
          if (!need_terms) continue;
          softmax_columns(terms, out, with_log_density, begin, m);
          if (kk == 1) continue;
          // -sum_k gamma_k y_k, one column at a time, summed in a small buffer and stored once.
          const Mat<Scalar>& resp = out.responsibilities;
          if constexpr (std::is_same_v<Scalar, double>) {
            if (kernels::have_simd()) {  // the same operations, eight rows at a time
              kernels::weighted_sum(parts.data(), resp.data() + begin * kk, kk, dim, m,
                                    out.score.data() + begin * dim);
              continue;
            }
          }
          for (Eigen::Index j = 0; j < m; ++j) {
            sum.noalias() = resp(0, begin + j) * products[0].col(j);
            for (int k = 1; k < kk; ++k) sum.noalias() += resp(k, begin + j) * products[k].col(j);
            score.col(begin + j) = -sum;
          }
        }
        if (!need_terms) out.responsibilities.setOnes();
        return out;
      }
    } else if (kk == 1 && !with_log_density && n >= dim) {
      // One Gaussian: score = -C^{-1} (z - m), the precision A^T A formed once.
      const Square a = whitening_matrix(comps_[0]).stored_block(0);
      const Square precision = -(a.transpose() * a);
      product(precision, zd.colwise() - comps_[0].mean.col(0), score);
      out.responsibilities.setOnes();
      return out;
    }
    Mat<Scalar> terms(kk, n);
    std::vector<Rows> whitened(kk);
    for (int k = 0; k < kk; ++k) {  // A_k (z - m_k) and log w_k + log N(z; m_k, C_k)
      const Component& c = comps_[k];
      whitened[k].resize(dim, n);
      if constexpr (D == Eigen::Dynamic) {
        if (c.low_rank) {
          whitened[k] = whiten(c, zd.colwise() - c.mean.col(0));
        } else if (c.vectors) {  // diag(inv_root) U^T (z - m_k): U^T read in place by the product
          const Mat<Scalar> centred = zd.colwise() - c.mean.col(0);
          if constexpr (std::is_same_v<Scalar, double>)
            blas_gemm(true, 1.0, *c.vectors, centred.data(), n, 0.0, whitened[k].data());
          else
            whitened[k].noalias() = c.vectors->transpose() * centred;
          whitened[k] = c.inv_root.asDiagonal() * whitened[k];
        } else {
          product(c.chol_inv.stored_block(0), zd.colwise() - c.mean.col(0), whitened[k]);
        }
      } else {
        product(c.chol_inv.stored_block(0), zd.colwise() - c.mean.col(0), whitened[k]);
      }
      const Scalar offset = c.log_weight - (c.log_det + Scalar(dim) * log_2pi()) / 2;
      terms.row(k) = (offset - whitened[k].colwise().squaredNorm().array() / 2).matrix();
    }
    softmax(terms, out, with_log_density);
    // gamma_k C_k^{-1} (z - m_k) = A_k^T (gamma_k A_k (z - m_k)): the responsibilities scale
    // the whitened residuals in place, before the product.
    for (int k = 0; k < kk; ++k) {
      if (kk > 1) whitened[k].array().rowwise() *= out.responsibilities.row(k).array();
      if constexpr (D == Eigen::Dynamic) {  // accumulated by the product itself, no temporary
        if (comps_[k].low_rank) {
          if (k == 0)
            score = -whiten_transpose(comps_[k], whitened[k]);
          else
            score -= whiten_transpose(comps_[k], whitened[k]);
          continue;
        }
        if (comps_[k].vectors) {  // A^T w = U (diag(inv_root) w)
          whitened[k] = comps_[k].inv_root.asDiagonal() * whitened[k];
          if constexpr (std::is_same_v<Scalar, double>)
            blas_gemm(false, -1.0, *comps_[k].vectors, whitened[k].data(), n, k == 0 ? 0.0 : 1.0,
                      score.data());
          else if (k == 0)
            score.noalias() = -(*comps_[k].vectors * whitened[k]);
          else
            score.noalias() -= *comps_[k].vectors * whitened[k];
          continue;
        }
        // A^T read in place (transpose() is a view): no d x d copy per evaluation.
        const auto at = comps_[k].chol_inv.stored_block(0).transpose();
        if (k == 0)
          score.noalias() = -(at * whitened[k]);
        else
          score.noalias() -= at * whitened[k];
      } else {
        const Square at = comps_[k].chol_inv.stored_block(0).transpose();
        if (k == 0)
          score.noalias() = -(at.lazyProduct(whitened[k]));
        else
          score.noalias() -= at.lazyProduct(whitened[k]);
      }
    }
    return out;
  }

  // Block-structured whitenings (matrix SDEs): products through BlockMatrix::apply.
  Evaluation evaluate_blocks(const Mat<Scalar>& z, bool with_log_density) const {
    const Eigen::Index n = z.cols(), dim = z.rows();
    const int kk = static_cast<int>(comps_.size());
    auto [terms, whitened] = log_terms(z);
    Evaluation out{Vec<Scalar>(with_log_density ? n : 0), Mat<Scalar>::Zero(dim, n),
                   Mat<Scalar>(kk, n)};
    softmax(terms, out, with_log_density);
    for (int k = 0; k < kk; ++k) {
      whitened[k].array().rowwise() *= out.responsibilities.row(k).array();
      out.score -= whiten_transpose(comps_[k], whitened[k]);
    }
    return out;
  }

  const LinearSde<Scalar>* sde_;
  const GaussianMixture<Scalar>* data_;
  Scalar t_;
  BlockMatrix<Scalar> psi_, psi_inv_, sigma_;
  std::optional<BlockMatrix<Scalar>> noise_factor_;
  std::vector<Component> comps_;
  bool dense_ = false;  // every whitening one dense block: evaluate_dense
  // A scalar SDE's spectral basis is the standard one: the score skips two copies of the states.
  bool spectral_is_identity_ = false;
};

// The members that instantiate the factorisations and products, defined out of the class: for
// double, mp50 and f128 they are compiled once (instantiate_mixture.cpp) and every other
// translation unit links them (the declarations at the end), instead of compiling them again.

template <class Scalar>
Marginal<Scalar>::Marginal(const LinearSde<Scalar>& sde, const GaussianMixture<Scalar>& data,
                           const Scalar& t)
    : sde_(&sde), data_(&data), t_(t) {
  using std::log;
  require(data.dim() == sde.data_dim(), "target dimension", data.dim(),
          "does not match the SDE's data dimension " + to_text(sde.data_dim()));
  psi_ = sde.transition(t, Scalar(0));
  psi_inv_ = psi_.inverse();
  sigma_ = sde.covariance(t);
  const Mat<Scalar> means = sde.lift_data(data.means());
  const auto* scalar = dynamic_cast<const ScalarSde<Scalar>*>(&sde);
  for (int k = 0; k < data.components(); ++k) {
    Component c;
    c.log_weight = log(data.weights()(k));
    c.mean = psi_.apply(means.col(k));
    auto singular = [&] {
      return InputError("t", to_text(t),
                        "the marginal covariance of component " + to_text(k) + " of the " +
                            data.kind() + " target is singular here (sigma(t) = 0?)");
    };
    // Under a scalar SDE a dense S_k = U diag(l) U^T gives C_k = U diag(alpha^2 l + sigma^2)
    // U^T at every t: the whitening A = diag(v)^{-1/2} U^T (A^T A = C_k^{-1})
    // in O(d^2), with no factorisation per t (docs/NOTES.md sec. 3).
    const LowRankPlusDiagonal* low_rank = scalar ? data.low_rank(k) : nullptr;
    const auto* spectrum = scalar && !low_rank ? data.spectrum(k) : nullptr;
    if (low_rank) {
      if (!low_rank_whitening(*low_rank, scalar->alpha(t), scalar->sigma(t), c)) throw singular();
    } else if (spectrum) {
      const Scalar a = scalar->alpha(t), s = scalar->sigma(t);
      const Vec<Scalar> v = (a * a * spectrum->values.array() + s * s).matrix();
      if (!(v.minCoeff() > 0)) throw singular();
      c.inv_root = v.cwiseSqrt().cwiseInverse();
      // From d = 5 (no fixed-size products) A is applied as diag(inv_root) U^T, two products
      // with U, and never formed: at d = 3072 forming it took as long as the products.
      if (v.size() > 4)
        c.vectors = &spectrum->vectors;
      else
        c.chol_inv =
            BlockMatrix<Scalar>::dense(c.inv_root.asDiagonal() * spectrum->vectors.transpose());
      c.log_det = log_of_product(v);
    } else {
      const BlockMatrix<Scalar> cov = sde.marginal_covariance(data.cov(k), psi_, sigma_);
      try {
        c.chol = cov.cholesky();
        c.log_det = c.chol->logdet_from_cholesky();
      } catch (const NumericalError&) {
        throw singular();
      }
      c.chol_inv = c.chol->inverse();
    }
    comps_.push_back(std::move(c));
  }
  dense_ = std::all_of(comps_.begin(), comps_.end(), [](const Component& c) {
    return c.vectors || c.low_rank || c.chol_inv.groups() == 1;
  });
  spectral_is_identity_ = scalar != nullptr;
  // K with K K^T = Sigma(t), once per t. Sigma(0) = 0 has none: eps is then undefined, while
  // the score of non-degenerate data still is.
  try {
    noise_factor_ = sigma_.cholesky();
  } catch (const NumericalError&) {
    noise_factor_.reset();
  }
}

template <class Scalar>
Vec<Scalar> Marginal<Scalar>::class_log_posterior(const Mat<Scalar>& x, int y) const {
  const Mat<Scalar> joint = component_log_joint(x);
  const std::vector<int> members = data_->class_members(y);
  Vec<Scalar> out(x.cols());
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    Vec<Scalar> in_class(static_cast<Eigen::Index>(members.size()));
    for (size_t i = 0; i < members.size(); ++i)
      in_class(static_cast<Eigen::Index>(i)) = joint(members[i], j);
    out(j) = log_sum_exp(in_class) - log_sum_exp(joint.col(j));
  }
  return out;
}

template <class Scalar>
Mat<Scalar> Marginal<Scalar>::class_score(const Mat<Scalar>& x, int y) const {
  using std::exp;
  const auto [terms, whitened] = log_terms(sde_->to_spectral(x));
  const std::vector<int> members = data_->class_members(y);
  const int kk = static_cast<int>(comps_.size());
  Mat<Scalar> weight(kk, x.cols());  // r^y_k - r_k
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    Vec<Scalar> in_class(static_cast<Eigen::Index>(members.size()));
    for (size_t i = 0; i < members.size(); ++i)
      in_class(static_cast<Eigen::Index>(i)) = terms(members[i], j);
    const Scalar all = log_sum_exp(terms.col(j)), cls = log_sum_exp(in_class);
    for (int k = 0; k < kk; ++k) {
      const bool member = std::find(members.begin(), members.end(), k) != members.end();
      weight(k, j) = (member ? exp(terms(k, j) - cls) : Scalar(0)) - exp(terms(k, j) - all);
    }
  }
  Mat<Scalar> out = Mat<Scalar>::Zero(x.rows(), x.cols());
  for (int k = 0; k < kk; ++k)  // s_k = -L^{-T} L^{-1} (z - m_k)
    out -= whiten_transpose(comps_[k], whitened[k]) * weight.row(k).asDiagonal();
  return sde_->from_spectral(out);
}

template <class Scalar>
Vec<Scalar> Marginal<Scalar>::score_divergence(const Mat<Scalar>& x,
                                               const BlockMatrix<Scalar>& w) const {
  const Mat<Scalar> z = sde_->to_spectral(x);
  const Evaluation e = evaluate(z);
  const Eigen::Index n = z.cols();
  const Mat<Scalar> ws = w.apply(e.score);
  Vec<Scalar> out = -(ws.cwiseProduct(e.score)).colwise().sum().transpose();
  for (size_t k = 0; k < comps_.size(); ++k) {
    const Component& c = comps_[k];
    const Mat<Scalar> sk = -whiten_transpose(c, whiten(c, z.colwise() - c.mean.col(0)));
    const BlockMatrix<Scalar> a = whitening_matrix(c);
    const Scalar trace = (w * a.transpose() * a).trace();
    const Vec<Scalar> quadratic = (w.apply(sk).cwiseProduct(sk)).colwise().sum().transpose();
    for (Eigen::Index j = 0; j < n; ++j)
      out(j) += e.responsibilities(static_cast<Eigen::Index>(k), j) * (quadratic(j) - trace);
  }
  return out;
}

template <class Scalar>
Mat<Scalar> Marginal<Scalar>::score_jvp(const Mat<Scalar>& x, const Mat<Scalar>& v) const {
  const Mat<Scalar> z = sde_->to_spectral(x), vz = sde_->to_spectral(v);
  const Evaluation e = evaluate(z);
  const Eigen::Index n = z.cols();
  Mat<Scalar> out = -e.score * (e.score.cwiseProduct(vz)).colwise().sum().asDiagonal();
  for (size_t k = 0; k < comps_.size(); ++k) {
    const Component& c = comps_[k];
    const BlockMatrix<Scalar> a = whitening_matrix(c);
    const BlockMatrix<Scalar> precision = a.transpose() * a;
    const Mat<Scalar> sk = -precision.apply(z.colwise() - c.mean.col(0));
    const Mat<Scalar> term =
        sk * (sk.cwiseProduct(vz)).colwise().sum().asDiagonal() - precision.apply(vz);
    for (Eigen::Index j = 0; j < n; ++j)
      out.col(j) += e.responsibilities(static_cast<Eigen::Index>(k), j) * term.col(j);
  }
  return sde_->from_spectral(out);
}

template <class Scalar>
Mat<Scalar> Marginal<Scalar>::sample(int n, Rng& rng) const {
  // (Low rank plus diagonal data too: a structured factor would draw d + r normals, and double
  // data, which is examined for structure, would no longer start from the states that 50-digit
  // data with the same seed starts from.)
  std::vector<BlockMatrix<Scalar>> chol;
  for (int k = 0; k < data_->components(); ++k)
    chol.push_back(comps_[k].chol
                       ? *comps_[k].chol
                       : sde_->marginal_covariance(data_->cov(k), psi_, sigma_).cholesky());
  Mat<Scalar> z(sde_->state_dim(), n);
  for (int j = 0; j < n; ++j) {
    const int k = data_->pick_component(rng);
    z.col(j) = comps_[k].mean + chol[k].apply(rng.normal_matrix<Scalar>(sde_->state_dim(), 1));
  }
  return sde_->from_spectral(z);
}

template <class Scalar>
std::pair<Mat<Scalar>, std::vector<Mat<Scalar>>> Marginal<Scalar>::log_terms(
    const Mat<Scalar>& z) const {
  const Eigen::Index n = z.cols(), dim = z.rows();
  const int kk = static_cast<int>(comps_.size());
  Mat<Scalar> terms(kk, n);
  std::vector<Mat<Scalar>> whitened(kk);
  for (int k = 0; k < kk; ++k) {
    const Component& c = comps_[k];
    whitened[k] = whiten(c, z.colwise() - c.mean.col(0));
    const Vec<Scalar> sq = whitened[k].colwise().squaredNorm().transpose();
    for (Eigen::Index j = 0; j < n; ++j)
      terms(k, j) = c.log_weight - (sq(j) + c.log_det + Scalar(dim) * log_2pi()) / 2;
  }
  return {std::move(terms), std::move(whitened)};
}

template <class Scalar>
auto Marginal<Scalar>::evaluate(const Mat<Scalar>& z, bool with_log_density) const -> Evaluation {
  if (!dense_) return evaluate_blocks(z, with_log_density);
  switch (z.rows()) {  // fixed sizes: unrolled products, no packing (d = 2: 2.6x)
    case 1:
      return evaluate_dense<1>(z, with_log_density);
    case 2:
      return evaluate_dense<2>(z, with_log_density);
    case 3:
      return evaluate_dense<3>(z, with_log_density);
    case 4:
      return evaluate_dense<4>(z, with_log_density);
    default:
      return evaluate_dense<Eigen::Dynamic>(z, with_log_density);
  }
}

extern template class Marginal<double>;
extern template class Marginal<mp50>;
extern template class Marginal<f128>;

}  // namespace pflow
