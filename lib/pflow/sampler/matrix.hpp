// Samplers for matrix-valued SDEs (CLD, blurring, generic linear), in the SDE's spectral
// coordinates (docs/NOTES.md sec. 4):
//
//   gddim   (Zhang, Tao & Chen 2023, eq. 11-13 and 18) eps = -K^T score with K K^T = C(t);
//           order q: eps extrapolated by the Lagrange polynomial in t through the last q + 1
//           points, x_t = Psi(t,s) x_s + sum_j C_j eps_j,
//           C_j = int_s^t Psi(t,r) D(r) K_r^{-T} l_j(r) dr, D = G G^T / 2.
//           K = R (a factor that follows the R-ODE dR/dt = (F + D C^{-1}) R) makes
//           int_s^t Psi(t,r) D R_r^{-T} dr = R_t - Psi(t,s) R_s exactly, so order 0 is exact for
//           Dirac data (C = Sigma(t)) or, with covariance "data", for Gaussian data;
//           K = Cholesky factor of C(t) or K = principal-axis factor V (below) are the
//           ablations: with the quadrature coefficients they are consistent for any K, but
//           first order only and not exact.
//   paddim  (docs/NOTES.md sec. 4) principal-axis DDIM: C(t) = V V^T, V = U Lambda^{1/2} per
//           block, x_t = Psi(t,s)(x_s - V_s eps_s) + V_t eps_s: each principal axis runs a scalar
//           DDIM. Exact when the axes are fixed and the circulating part of F C vanishes
//           (scalar SDEs, where it is DDIM). Under CLD the axes rotate and this step is not
//           even consistent: V' = (F + D C^{-1}) V fails, so the error does not go to zero
//           with the step (measured: it stays at 0.15; README); gddim with K = principal is the
//           consistent first-order method with the same factor.
//           Data-aware form (scalar SDEs): axes of the data covariance S0 = U diag(s) U^T; in
//           w = V_t^{-1}(x - alpha_t mu), V_t = U diag(sqrt(alpha_t^2 s_i + sigma_t^2)), the
//           Gaussian part of the PF-ODE is exact and only the x0 residual Delta = x0_hat - x0_gauss
//           is frozen: w_t = w_s + kappa Delta_s,
//           kappa_i = [asinh(sqrt(s_i) e^lambda) / sqrt(s_i)]_{lambda_s}^{lambda_t}
//           (derived in analytic/paddim_data_aware.py). Exact for Gaussian data; DDIM for S0 = 0.
#pragma once

#include <Eigen/Eigenvalues>
#include <map>

#include "pflow/flow/exact_flow.hpp"
#include "pflow/sampler/deis.hpp"

namespace pflow {

// The covariance a gddim/paddim factor follows: Sigma(t) ("kernel": Dirac data, the papers'
// choice) or the marginal covariance of the data's Gaussian moments ("data").
template <class Scalar>
std::function<BlockMatrix<Scalar>(const Scalar&)> factor_covariance(SolveContext<Scalar>& ctx,
                                                                    bool data_aware,
                                                                    const std::string& solver) {
  const LinearSde<Scalar>& sde = ctx.sde();
  if (!data_aware) return [&sde](const Scalar& t) { return sde.covariance(t); };
  const auto moments = ctx.model().data_moments();
  if (!moments)
    throw InputError(solver + ".covariance", "data",
                     "needs the data's mean and covariance, which this model does not provide");
  auto gaussian = std::make_shared<GaussianMixture<Scalar>>(
      GaussianMixture<Scalar>::gaussian(moments->mean, moments->cov));
  return [&sde, gaussian](const Scalar& t) { return gaussian_marginal(sde, *gaussian, t).second; };
}

// Principal-axis factor V = U Lambda^{1/2} of a covariance, block by block, with the axes
// ordered and signed to follow `previous` (so that V_t V_s^{-1} does not flip an axis).
template <class Scalar>
BlockMatrix<Scalar> principal_factor(const BlockMatrix<Scalar>& cov,
                                     const BlockMatrix<Scalar>* previous) {
  using std::abs;
  using std::sqrt;
  BlockMatrix<Scalar> v = cov;
  for (int k = 0; k < cov.stored_blocks(); ++k) {
    Eigen::SelfAdjointEigenSolver<Mat<Scalar>> eig(cov.stored_block(k));
    Mat<Scalar> u = eig.eigenvectors();
    Vec<Scalar> lam = eig.eigenvalues();
    if (previous) {
      const Mat<Scalar>& before = previous->stored_block(k);
      for (Eigen::Index c = 0; c < u.cols(); ++c) {
        // The axis of u most aligned with the previous axis c goes to column c.
        Eigen::Index best = c;
        Scalar best_overlap = -1;
        for (Eigen::Index m = c; m < u.cols(); ++m) {
          const Scalar overlap = abs(Scalar(u.col(m).dot(before.col(c)))) / before.col(c).norm();
          if (overlap > best_overlap) best_overlap = overlap, best = m;
        }
        u.col(c).swap(u.col(best));
        std::swap(lam(c), lam(best));
        if (u.col(c).dot(before.col(c)) < 0) u.col(c) = -u.col(c);
      }
    }
    for (Eigen::Index c = 0; c < u.cols(); ++c) u.col(c) *= sqrt(std::max(lam(c), Scalar(0)));
    v.stored_block(k) = u;
  }
  return v;
}

template <class Scalar>
class Gddim : public Solver<Scalar> {
 public:
  enum class Factor { r, cholesky, principal };
  Gddim(SolverInfo info, int q, Factor factor, bool data_aware, Start start)
      : Solver<Scalar>(std::move(info)),
        q_(q),
        factor_(factor),
        data_aware_(data_aware),
        start_(start) {}

  void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
           Mat<Scalar>& x) const override {
    const LinearSde<Scalar>& sde = ctx.sde();
    const auto cov = factor_covariance(ctx, data_aware_, this->info().name);
    const auto& [gl_nodes, gl_weights] = step_quadrature<Scalar>();
    const bool closed_step = factor_ == Factor::r && q_ == 0;
    // Every time at which K is needed: grid times, and the quadrature nodes of each step.
    std::vector<Scalar> times(grid.begin(), grid.end());
    if (!closed_step)
      for (size_t i = 0; i + 1 < grid.size(); ++i)
        for (const Scalar& xi : gl_nodes)
          times.push_back((grid[i] + grid[i + 1]) / 2 + (grid[i + 1] - grid[i]) / 2 * xi);
    const std::map<Scalar, BlockMatrix<Scalar>> factor = factors(sde, cov, std::move(times));
    auto k_at = [&](const Scalar& t) -> const BlockMatrix<Scalar>& { return factor.at(t); };

    struct Past {
      Scalar t;
      Mat<Scalar> eps;
    };
    std::deque<Past> past;
    Mat<Scalar> z = sde.to_spectral(x);
    for (size_t i = 0; i + 1 < grid.size(); ++i) {
      const Scalar &s = grid[i], &t = grid[i + 1];
      const BlockMatrix<Scalar> psi = sde.transition(t, s);
      const Mat<Scalar> score = sde.to_spectral(ctx.score(sde.from_spectral(z), s));
      past.push_front({s, -k_at(s).transpose().apply(score)});
      while (static_cast<int>(past.size()) > q_ + 1) past.pop_back();
      const int points = static_cast<int>(past.size());
      if (points < q_ + 1 && start_ != Start::lower_order) {
        z = sde.to_spectral(start_step_matrix(ctx, sde.from_spectral(z), s, t));
      } else if (closed_step) {
        z = psi.apply(z) + (k_at(t) - psi * k_at(s)).apply(past[0].eps);
      } else {
        std::vector<Scalar> nodes(points);
        for (int j = 0; j < points; ++j) nodes[j] = past[j].t;
        Mat<Scalar> next = psi.apply(z);
        const Scalar half = (t - s) / 2, mid = (t + s) / 2;
        for (size_t n = 0; n < gl_nodes.size(); ++n) {
          const Scalar r = mid + half * gl_nodes[n];
          // Psi(t,r) D(r) K_r^{-T}, applied to the extrapolated eps at r.
          const BlockMatrix<Scalar> kernel = sde.transition(t, r) *
                                             sde.diffusion(r).scaled(ratio<Scalar>(1, 2)) *
                                             k_at(r).transpose().inverse();
          Mat<Scalar> eps_r = Mat<Scalar>::Zero(z.rows(), z.cols());
          for (int j = 0; j < points; ++j) eps_r += lagrange_basis(nodes, j, r) * past[j].eps;
          next += (gl_weights[n] * half) * kernel.apply(eps_r);
        }
        z = next;
      }
      x = sde.from_spectral(z);
      ctx.step_done(static_cast<int>(i), t, x);
    }
  }

 private:
  Mat<Scalar> start_step_matrix(SolveContext<Scalar>& ctx, const Mat<Scalar>& x, const Scalar& s,
                                const Scalar& t) const {
    if (start_ == Start::exact) return ctx.exact_flow(x, s, t);
    throw InputError(this->info().name + ".start", "singlestep",
                     "has no singlestep method for matrix SDEs; use lower-order or exact");
  }

  // K at each time: R on one solution of the R-ODE (r_factors_at), Cholesky factors, or
  // principal-axis factors (axes followed continuously from the earliest time).
  std::map<Scalar, BlockMatrix<Scalar>> factors(
      const LinearSde<Scalar>& sde, const std::function<BlockMatrix<Scalar>(const Scalar&)>& cov,
      std::vector<Scalar> times) const {
    if (factor_ == Factor::r) return r_factors_at(sde, cov, std::move(times));
    std::sort(times.begin(), times.end());
    std::map<Scalar, BlockMatrix<Scalar>> out;
    const BlockMatrix<Scalar>* previous = nullptr;
    for (const Scalar& t : times) {
      BlockMatrix<Scalar> k =
          factor_ == Factor::cholesky ? cov(t).cholesky() : principal_factor(cov(t), previous);
      previous = &out.emplace(t, std::move(k)).first->second;
    }
    return out;
  }

  int q_;
  Factor factor_;
  bool data_aware_;
  Start start_;
};

template <class Scalar>
class Paddim : public Solver<Scalar> {
 public:
  Paddim(SolverInfo info, bool data_aware)
      : Solver<Scalar>(std::move(info)), data_aware_(data_aware) {}

  void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
           Mat<Scalar>& x) const override {
    if (data_aware_) return run_data_aware(ctx, grid, x);
    const LinearSde<Scalar>& sde = ctx.sde();
    Mat<Scalar> z = sde.to_spectral(x);
    BlockMatrix<Scalar> v_s = principal_factor<Scalar>(sde.covariance(grid[0]), nullptr);
    for (size_t i = 0; i + 1 < grid.size(); ++i) {
      const Scalar &s = grid[i], &t = grid[i + 1];
      const BlockMatrix<Scalar> v_t = principal_factor(sde.covariance(t), &v_s);
      const Mat<Scalar> score = sde.to_spectral(ctx.score(sde.from_spectral(z), s));
      const Mat<Scalar> eps = -v_s.transpose().apply(score);
      z = sde.transition(t, s).apply(z - v_s.apply(eps)) + v_t.apply(eps);
      x = sde.from_spectral(z);
      ctx.step_done(static_cast<int>(i), t, x);
      v_s = v_t;
    }
  }

 private:
  void run_data_aware(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
                      Mat<Scalar>& x) const {
    using std::asinh;
    using std::exp;
    using std::sqrt;
    const ScalarSde<Scalar>& sde = ctx.scalar_sde();
    const auto moments = ctx.model().data_moments();
    if (!moments)
      throw InputError("paddim.form", "data",
                       "needs the data's mean and covariance, which this model does not provide");
    Eigen::SelfAdjointEigenSolver<Mat<Scalar>> eig(moments->cov);
    const Mat<Scalar>& u = eig.eigenvectors();
    Vec<Scalar> s0 = eig.eigenvalues().cwiseMax(Scalar(0));
    const Vec<Scalar> mu = u.transpose() * moments->mean;  // data mean on the axes
    // antiderivative of e^lambda / sqrt(1 + s e^{2 lambda}) per axis
    auto primitive = [](const Scalar& s, const Scalar& lambda) -> Scalar {
      if (s == 0) return exp(lambda);
      return asinh(sqrt(s) * exp(lambda)) / sqrt(s);
    };
    auto v_diag = [&](const ScalarPoint<Scalar>& p) {
      Vec<Scalar> v(s0.size());
      for (Eigen::Index i = 0; i < v.size(); ++i)
        v(i) = sqrt(p.alpha * p.alpha * s0(i) + p.sigma * p.sigma);
      return v;
    };
    for (size_t i = 0; i + 1 < grid.size(); ++i) {
      const ScalarPoint<Scalar> s(sde, grid[i]), t(sde, grid[i + 1]);
      const Mat<Scalar> xs = u.transpose() * x;  // on the axes
      const Mat<Scalar> x0 = u.transpose() * ctx.x0(x, s.t);
      const Vec<Scalar> vs = v_diag(s), vt = v_diag(t);
      Mat<Scalar> w(xs.rows(), xs.cols());
      for (Eigen::Index a = 0; a < xs.rows(); ++a) {
        const Scalar var = s.alpha * s.alpha * s0(a) + s.sigma * s.sigma;
        const Scalar kappa = primitive(s0(a), t.lambda) - primitive(s0(a), s.lambda);
        for (Eigen::Index j = 0; j < xs.cols(); ++j) {
          // x0 of the Gaussian approximation: (alpha s x + sigma^2 mu) / (alpha^2 s + sigma^2)
          const Scalar x0_gauss = (s.alpha * s0(a) * xs(a, j) + s.sigma * s.sigma * mu(a)) / var;
          const Scalar w_s = (xs(a, j) - s.alpha * mu(a)) / vs(a);
          w(a, j) = t.alpha * mu(a) + vt(a) * (w_s + kappa * (x0(a, j) - x0_gauss));
        }
      }
      x = u * w;
      ctx.step_done(static_cast<int>(i), t.t, x);
    }
  }

  bool data_aware_;
};

// The records of gDDIM and paDDIM (solver_record.hpp).
template <class Scalar>
void add_matrix_solvers(SolverTable<Scalar>& table) {
  {
    SolverRecord<Scalar> r;
    r.name = "gddim";
    r.family = "matrix";
    r.reference = "Zhang, Tao & Chen 2023, eq. 11-18";
    r.parameters = {integer_parameter("order", 2, 0, 3),
                    text_parameter("K", "R", {"R", "cholesky", "principal"}),
                    text_parameter("covariance", "kernel", {"kernel", "data"}), start_parameter()};
    r.order_note = "(order + 1)";
    r.traits = [](const SolverParams& p) {
      SolverTraits t;
      t.order = p.integer("order") + 1;
      return t;
    };
    auto spec = [](int order, nlohmann::json extra) {
      extra["name"] = "gddim";
      extra["order"] = order;
      if (order > 0) extra["start"] = "exact";
      return extra;
    };
    const std::vector<std::string> all = {"gaussian", "mixture", "cld"};
    r.order_tests = {{spec(0, nlohmann::json::object()), all},
                     {spec(0, {{"K", "cholesky"}}), {"cld"}},
                     {spec(0, {{"K", "principal"}}), {"cld"}},
                     {spec(1, nlohmann::json::object()), all},
                     {spec(2, nlohmann::json::object()), all},
                     {spec(3, nlohmann::json::object()), scalar_order_problems()}};
    r.make = [](const SolverParams& p, SolverInfo info) {
      using Factor = typename Gddim<Scalar>::Factor;
      const std::string k = p.text("K");
      const Factor factor = k == "R"          ? Factor::r
                            : k == "cholesky" ? Factor::cholesky
                                              : Factor::principal;
      return std::make_unique<Gddim<Scalar>>(std::move(info), p.integer("order"), factor,
                                             p.text("covariance") == "data", start_of(p));
    };
    table.push_back(std::move(r));
  }
  {
    SolverRecord<Scalar> r;
    r.name = "paddim";
    r.family = "matrix";
    r.reference = "principal-axis DDIM; docs/NOTES.md sec. 4";
    r.parameters = {text_parameter("form", "kernel", {"kernel", "data"})};
    r.order_note = "(kernel form: fixed axes only, scalar SDEs and blurring)";
    r.traits = [](const SolverParams& p) {
      SolverTraits t;
      t.scalar_sde_only = p.text("form") == "data";
      return t;
    };
    // The fixed-axes step is not consistent when the principal axes of Sigma(t) rotate (2x2
    // blocks: CLD), so it declares no order there (docs/NOTES.md sec. 4).
    r.order_on_sde = [](const SolverParams& p, int block_size) {
      return p.text("form") == "kernel" && block_size > 1 ? 0 : 1;
    };
    r.order_tests = {
        {"paddim", {"gaussian", "mixture", "cld"}},
        {{{"name", "paddim"}, {"form", "data"}}, scalar_order_problems(), {"gaussian"}}};
    r.make = [](const SolverParams& p, SolverInfo info) {
      return std::make_unique<Paddim<Scalar>>(std::move(info), p.text("form") == "data");
    };
    table.push_back(std::move(r));
  }
}

}  // namespace pflow
