// Blurring diffusion (Hoogeboom & Salimans 2022), diagonal in the DCT basis of an image.
//
// The state is an image of shape (channels, height, width), flattened row-major. In the
// orthonormal 2-D DCT basis, frequency i with Laplacian eigenvalue
// lam_i = pi^2 (k_h^2 / H^2 + k_w^2 / W^2) is a scalar SDE with
//   alpha_i(t) = a(t) exp(-lam_i tau(t)),  sigma_i(t) = s(t),
// where a, s are the VP-linear schedule and tau(t) = sB^2 sin^2(pi t / 2) / 2 is the blur time.
// Then f_i = -beta/2 - lam_i tau' and g_i^2 = beta + 2 lam_i tau' s^2 (analytic/ checks both).
// Per frequency the SDE has its own schedule: "diagonal but not isotropic".
#pragma once

#include <cmath>

#include "pflow/sde/scalar_sdes.hpp"

namespace pflow {

// Orthonormal DCT-II matrix: C[k, j] = c_k cos(pi (j + 1/2) k / n).
template <class Scalar>
Mat<Scalar> dct_matrix(int n) {
  using std::cos;
  using std::sqrt;
  Mat<Scalar> c(n, n);
  for (int k = 0; k < n; ++k)
    for (int j = 0; j < n; ++j)
      c(k, j) = sqrt(Scalar(k == 0 ? 1 : 2) / n) * cos(pi<Scalar>() * (2 * j + 1) * k / (2 * n));
  return c;
}

template <class Scalar>
class Blurring : public LinearSde<Scalar> {
 public:
  Blurring(const Scalar& beta_min, const Scalar& beta_max, const Scalar& blur_sigma_max,
           int channels, int height, int width)
      : LinearSde<Scalar>(checked_dim(channels, height, width), channels * height * width, 1),
        rate_(LinearBeta<Scalar>::checked(beta_min, beta_max)),
        blur_sigma_max_(blur_sigma_max),
        channels_(channels),
        height_(height),
        width_(width),
        dct_h_(dct_matrix<Scalar>(height)),
        dct_w_(dct_matrix<Scalar>(width)) {
    require(blur_sigma_max >= 0, "blur_sigma_max", blur_sigma_max, "must be non-negative");
    const Scalar pi2 = pi<Scalar>() * pi<Scalar>();
    eigen_.resize(this->state_dim());
    for (int c = 0; c < channels; ++c)
      for (int kh = 0; kh < height; ++kh)
        for (int kw = 0; kw < width; ++kw)
          eigen_(index(c, kh, kw)) =
              pi2 * (Scalar(kh * kh) / (height * height) + Scalar(kw * kw) / (width * width));
  }
  std::string name() const override { return "blurring"; }
  Scalar t_max() const override { return 1; }
  const Vec<Scalar>& laplacian_eigenvalues() const { return eigen_; }

  // tau(t) = sB^2 sin^2(pi t/2) / 2 and tau'(t) = sB^2 pi sin(pi t) / 4.
  Scalar blur_time(const Scalar& t) const {
    using std::sin;
    const Scalar s = sin(pi<Scalar>() * t / 2);
    return blur_sigma_max_ * blur_sigma_max_ * s * s / 2;
  }
  Scalar blur_rate(const Scalar& t) const {
    using std::sin;
    return blur_sigma_max_ * blur_sigma_max_ * pi<Scalar>() * sin(pi<Scalar>() * t) / 4;
  }
  Scalar noise_sigma(const Scalar& t) const {
    using std::sqrt;
    return sqrt(Scalar(-boost::math::expm1(Scalar(-rate_.integral(t)))));
  }
  // alpha_i(t) per frequency.
  Vec<Scalar> alphas(const Scalar& t) const {
    using std::exp;
    Vec<Scalar> out(eigen_.size());
    const Scalar log_a = -rate_.integral(t) / 2, tau = blur_time(t);
    for (Eigen::Index i = 0; i < eigen_.size(); ++i) out(i) = exp(log_a - eigen_(i) * tau);
    return out;
  }

  BlockMatrix<Scalar> drift(const Scalar& t) const override {
    const Scalar b = rate_.beta(t), tp = blur_rate(t);
    Vec<Scalar> f(eigen_.size());
    for (Eigen::Index i = 0; i < f.size(); ++i) f(i) = -b / 2 - eigen_(i) * tp;
    return BlockMatrix<Scalar>::diagonal(f);
  }
  BlockMatrix<Scalar> diffusion(const Scalar& t) const override {
    const Scalar b = rate_.beta(t), tp = blur_rate(t), s = noise_sigma(t);
    Vec<Scalar> g2(eigen_.size());
    for (Eigen::Index i = 0; i < g2.size(); ++i) g2(i) = b + 2 * eigen_(i) * tp * s * s;
    return BlockMatrix<Scalar>::diagonal(g2);
  }
  std::optional<BlockMatrix<Scalar>> closed_transition(const Scalar& t,
                                                       const Scalar& s) const override {
    return BlockMatrix<Scalar>::diagonal(alphas(t).cwiseQuotient(alphas(s)));
  }
  // The noise stays isotropic: Sigma(t) = s(t)^2 I in every basis.
  std::optional<BlockMatrix<Scalar>> closed_covariance(const Scalar& t) const override {
    const Scalar s = noise_sigma(t);
    return BlockMatrix<Scalar>::shared(this->groups(), Mat<Scalar>::Constant(1, 1, s * s));
  }

  bool has_spectral_basis() const override { return true; }
  Mat<Scalar> to_spectral(const Mat<Scalar>& x) const override { return transform(x, false); }
  Mat<Scalar> from_spectral(const Mat<Scalar>& z) const override { return transform(z, true); }

 private:
  static int checked_dim(int c, int h, int w) {
    require(c > 0, "channels", c, "must be positive");
    require(h > 0, "height", h, "must be positive");
    require(w > 0, "width", w, "must be positive");
    return c * h * w;
  }
  int index(int c, int h, int w) const { return (c * height_ + h) * width_ + w; }

  // Per channel image X (H x W, row-major in the state): Z = C_h X C_w^T, inverse X = C_h^T Z C_w.
  Mat<Scalar> transform(const Mat<Scalar>& x, bool inverse) const {
    using RowMat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    if (x.rows() != this->state_dim())
      throw InputError("state rows", to_text(x.rows()),
                       "does not match the image size " + to_text(this->state_dim()));
    Mat<Scalar> out(x.rows(), x.cols());
    const int plane = height_ * width_;
    for (Eigen::Index n = 0; n < x.cols(); ++n)
      for (int c = 0; c < channels_; ++c) {
        RowMat img = Eigen::Map<const RowMat>(x.col(n).data() + c * plane, height_, width_);
        RowMat res = inverse ? RowMat(dct_h_.transpose() * img * dct_w_)
                             : RowMat(dct_h_ * img * dct_w_.transpose());
        Eigen::Map<RowMat>(out.col(n).data() + c * plane, height_, width_) = res;
      }
    return out;
  }

  LinearBeta<Scalar> rate_;
  Scalar blur_sigma_max_;
  int channels_, height_, width_;
  Mat<Scalar> dct_h_, dct_w_;
  Vec<Scalar> eigen_;
};

}  // namespace pflow
