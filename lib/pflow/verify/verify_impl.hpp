// The checks of `pflow verify`, templated on the scalar type (instantiated in verify.cpp for
// double and verify_mp50.cpp for mp50, so the two compile in parallel).
#pragma once

#include <map>
#include <nlohmann/json.hpp>

#include "pflow/flow/exact_flow.hpp"
#include "pflow/sde/blurring.hpp"
#include "pflow/sde/cld.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/sde/kernel_numeric.hpp"
#include "pflow/verify/verify.hpp"

namespace pflow::verify_detail {

using nlohmann::json;

// One SDE with the data used to check it.
struct Case {
  std::string name;
  json sde;
  int dim;
  json gaussian;      // one-component data for the flow-map checks
  json gmm;           // mixture for the score check
  double t_lo, t_hi;  // time range of the kernel checks
  double flow_from, flow_to;
};

// A symmetric positive-definite d x d matrix with correlations, as JSON rows.
inline json correlated_cov(int d, double scale) {
  json rows = json::array();
  for (int i = 0; i < d; ++i) {
    json row = json::array();
    for (int j = 0; j < d; ++j)
      row.push_back(scale * ((i == j ? 0.6 : 0.0) + 0.4 * std::pow(0.5, std::abs(i - j))));
    rows.push_back(row);
  }
  return rows;
}

inline json mean_vector(int d, double offset) {
  json v = json::array();
  for (int i = 0; i < d; ++i) v.push_back(offset + 0.25 * ((i * 7) % 5) - 0.5);
  return v;
}

inline json mixture(int d) {
  json means = json::array(), diag = json::array();
  for (int k = 0; k < 3; ++k) {
    means.push_back(mean_vector(d, 1.2 * k - 1.0));
    json dg = json::array();
    for (int i = 0; i < d; ++i) dg.push_back(0.05 + 0.1 * k + 0.02 * (i % 3));
    diag.push_back(dg);
  }
  return {{"type", "gmm"}, {"weights", {0.2, 0.5, 0.3}}, {"means", means}, {"diag_covs", diag}};
}

inline std::vector<Case> all_cases() {
  const json public_gaussian = {
      {"type", "gaussian"}, {"mean", {0.5, -1.0}}, {"cov", {{1.0, 0.8}, {0.8, 0.9}}}};
  const json full_mixture = {
      {"type", "gmm"},
      {"weights", {0.3, 0.45, 0.25}},
      {"means", {{-1.0, 0.5}, {1.0, 1.0}, {0.2, -1.2}}},
      {"covs",
       {{{0.09, 0.03}, {0.03, 0.04}}, {{0.25, -0.1}, {-0.1, 0.16}}, {{0.04, 0.0}, {0.0, 0.36}}}}};
  const json linear = {{"type", "linear"},
                       {"Fbar", {{-1.0, 0.5, 0.0}, {-0.5, -1.0, 0.2}, {0.0, -0.2, -0.5}}},
                       {"Gbar", {{1.0, 0.0}, {0.3, 1.0}, {0.0, 0.5}}},
                       {"beta_min", 0.5},
                       {"beta_max", 2.0}};
  const json gauss3 = {
      {"type", "gaussian"}, {"mean", mean_vector(3, 0.3)}, {"cov", correlated_cov(3, 0.8)}};
  // An 8-pixel image (2 x 4: H != W): dense 8 x 8 data covariance in the DCT basis.
  const json gauss8 = {
      {"type", "gaussian"}, {"mean", mean_vector(8, 0.1)}, {"cov", correlated_cov(8, 0.5)}};
  return {
      {"vp-linear",
       {{"type", "vp-linear"}},
       2,
       public_gaussian,
       full_mixture,
       1e-3,
       1.0,
       1.0,
       0.05},
      {"vp-cosine",
       {{"type", "vp-cosine"}},
       2,
       public_gaussian,
       full_mixture,
       1e-3,
       0.99,
       0.99,
       0.05},
      {"sub-vp", {{"type", "sub-vp"}}, 2, public_gaussian, full_mixture, 1e-3, 1.0, 1.0, 0.05},
      {"rectified-flow",
       {{"type", "rectified-flow"}},
       2,
       public_gaussian,
       full_mixture,
       1e-3,
       0.99,
       0.99,
       0.05},
      {"ve", {{"type", "ve"}}, 2, public_gaussian, full_mixture, 0.0, 1.0, 1.0, 0.05},
      {"edm", {{"type", "edm"}}, 2, public_gaussian, full_mixture, 0.002, 80.0, 80.0, 0.05},
      {"cld", {{"type", "cld"}}, 2, public_gaussian, full_mixture, 0.0, 1.0, 1.0, 0.05},
      {"blurring",
       {{"type", "blurring"}, {"shape", {1, 2, 4}}},
       8,
       gauss8,
       mixture(8),
       1e-3,
       1.0,
       1.0,
       0.05},
      {"linear", linear, 3, gauss3, mixture(3), 0.0, 1.0, 1.0, 0.05},
  };
}

// Tolerances per check in double and in mp50; f128 scales double's by the epsilon
// (per_precision) unless `quad` gives its own (a truncation-limited check).
struct Tolerance {
  double dbl, mp, quad = 0;
  template <class Scalar>
  double get() const {
    if constexpr (std::is_same_v<Scalar, f128>)
      if (quad > 0) return quad;
    return per_precision<Scalar>(dbl, mp);
  }
};

// max |a - b| / max(1, max |b|)
template <class Scalar>
double rel_error(const Mat<Scalar>& a, const Mat<Scalar>& b) {
  const Scalar scale = std::max<Scalar>(Scalar(1), b.cwiseAbs().maxCoeff());
  return to_double(Scalar((a - b).cwiseAbs().maxCoeff() / scale));
}
template <class Scalar>
double rel_error(const BlockMatrix<Scalar>& a, const BlockMatrix<Scalar>& b) {
  const Scalar scale = std::max<Scalar>(Scalar(1), b.max_abs());
  return to_double(Scalar(max_abs_diff(a, b) / scale));
}

template <class Scalar>
std::vector<Scalar> time_grid(double lo, double hi, int n) {
  std::vector<Scalar> out;
  for (int i = 1; i <= n; ++i)
    out.push_back(from_double<Scalar>(lo) +
                  (from_double<Scalar>(hi) - from_double<Scalar>(lo)) * Scalar(i) / Scalar(n));
  return out;
}

// 50-digit reference solutions of the PF-ODE, computed once per case and shared by the double
// and mp50 checks.
Mat<mp50> reference_solution(const Case& c, const Mat<mp50>& x_start);

// Starting points of the flow checks: samples of p_t at flow_from (fixed seed), as decimals.
template <class Scalar>
Mat<Scalar> flow_start(const Case& c) {
  auto sde = make_sde<double>(c.sde, c.dim);
  const auto data = make_target<double>(c.gaussian);
  const Marginal<double> marginal(*sde, data, c.flow_from);
  Rng rng(20261123);
  const Mat<double> x = marginal.sample(3, rng);
  return x.unaryExpr([](double v) { return from_double<Scalar>(v); });
}

template <class Scalar>
std::vector<CheckRow> run_case(const Case& c) {
  std::vector<CheckRow> rows;
  const std::string prec = scalar_name<Scalar>();
  auto add = [&](const std::string& check, double error, Tolerance tol) {
    rows.push_back({check, c.name, prec, error, tol.get<Scalar>()});
  };
  const auto sde = make_sde<Scalar>(c.sde, c.dim);
  const auto times = time_grid<Scalar>(c.t_lo, c.t_hi, 6);
  const auto form = sde->van_loan_form();
  const bool closed = sde->closed_covariance(times[0]).has_value();

  // Covariance Sigma(t): three or four independent computations.
  double e_ode = 0, e_vl = 0, e_quad = 0, e_vl_ode = 0;
  const std::vector<BlockMatrix<Scalar>> ode_path = ode_covariance_path(*sde, times);
  for (size_t i = 0; i < times.size(); ++i) {
    const Scalar& t = times[i];
    const BlockMatrix<Scalar>& ode = ode_path[i];
    const BlockMatrix<Scalar> quad = quadrature_covariance(*sde, t);
    if (closed) {
      const BlockMatrix<Scalar> exact = *sde->closed_covariance(t);
      e_ode = std::max(e_ode, rel_error(ode, exact));
      e_quad = std::max(e_quad, rel_error(quad, exact));
      if (form)
        e_vl = std::max(e_vl,
                        rel_error(van_loan_covariance(*form, sde->initial_covariance(), t), exact));
    } else {
      const BlockMatrix<Scalar> vl = van_loan_covariance(*form, sde->initial_covariance(), t);
      e_vl_ode = std::max(e_vl_ode, rel_error(ode, vl));
      e_quad = std::max(e_quad, rel_error(quad, vl));
    }
  }
  const Tolerance sigma_tol{1e-12, 1e-30};
  if (closed) {
    add("Sigma: closed form vs Lyapunov ODE", e_ode, sigma_tol);
    if (form) add("Sigma: closed form vs Van Loan", e_vl, sigma_tol);
    add("Sigma: closed form vs quadrature", e_quad, sigma_tol);
  } else {
    add("Sigma: Van Loan vs Lyapunov ODE", e_vl_ode, sigma_tol);
    add("Sigma: Van Loan vs quadrature", e_quad, sigma_tol);
  }

  // Transition Psi(t, s): closed form (or Van Loan) vs ODE, and the semigroup property.
  double e_psi = 0, e_semi = 0;
  const Scalar r = times[0] / 2;
  const std::vector<BlockMatrix<Scalar>> psi_path =
      ode_transition_path(*sde, std::vector<Scalar>(times.begin() + 1, times.end()), r);
  for (size_t i = 1; i < times.size(); ++i) {
    const Scalar t = times[i], s = times[i - 1];
    e_psi = std::max(e_psi, rel_error(psi_path[i - 1], sde->transition(t, r)));
    e_semi = std::max(
        e_semi, rel_error(sde->transition(t, s) * sde->transition(s, r), sde->transition(t, r)));
  }
  add(std::string("Psi: ") + (closed ? "closed form" : "Van Loan") + " vs ODE", e_psi,
      {1e-12, 1e-30});
  add("Psi: semigroup Psi(t,s) Psi(s,r) = Psi(t,r)", e_semi, {1e-13, 1e-40});

  // lambda(t(lambda)) = lambda and t(lambda(t)) = t for scalar SDEs.
  if (const auto* scalar = dynamic_cast<const ScalarSde<Scalar>*>(sde.get())) {
    double e_lam = 0;
    for (const Scalar& t : times) {
      if (t == Scalar(0)) continue;
      const Scalar lam = scalar->lambda(t);
      const Scalar back = scalar->lambda(scalar->t_of_lambda(lam));
      using std::abs;
      e_lam = std::max(e_lam, to_double(Scalar(abs(back - lam) / std::max<Scalar>(1, abs(lam)))));
      e_lam = std::max(e_lam, to_double(Scalar(abs(scalar->t_of_lambda(lam) - t) /
                                               std::max<Scalar>(1, abs(t)))));
    }
    add("lambda(t(lambda)) = lambda, t(lambda(t)) = t", e_lam, {1e-12, 1e-40});
  }

  // Frozen-time equilibrium: Q = 0 without circulating current; Q = beta J per pair for CLD.
  if (c.name != "ve" && c.name != "edm") {
    double e_q = 0;
    for (const Scalar& t : times) {
      const Equilibrium<Scalar> eq = frozen_equilibrium(*sde, t);
      if (const auto* cld = dynamic_cast<const Cld<Scalar>*>(sde.get())) {
        Mat<Scalar> expected(2, 2);
        expected << 0, -cld->beta(), cld->beta(), 0;
        e_q = std::max(
            e_q, rel_error(eq.circulation, BlockMatrix<Scalar>::shared(sde->groups(), expected)));
        Mat<Scalar> cov_eq = Mat<Scalar>::Identity(2, 2);
        cov_eq(1, 1) = cld->mass();
        e_q = std::max(
            e_q, rel_error(eq.covariance, BlockMatrix<Scalar>::shared(sde->groups(), cov_eq)));
      } else if (c.name == "linear") {
        e_q = std::max(e_q, rel_error(eq.circulation, eq.circulation.transpose().scaled(-1)));
      } else {
        e_q = std::max(e_q, to_double(eq.circulation.max_abs()));
      }
    }
    const std::string what = c.name == "cld"      ? "Q = beta [[0,-1],[1,0]], Sigma_eq = diag(1, M)"
                             : c.name == "linear" ? "Q antisymmetric"
                                                  : "Q = 0 (no circulating current)";
    add("equilibrium: " + what, e_q, {1e-12, 1e-40});
  }

  // Exact flow maps for Gaussian data.
  const auto gaussian = make_target<Scalar>(c.gaussian);
  {
    const Scalar lo = from_double<Scalar>(c.flow_to), hi = from_double<Scalar>(c.flow_from);
    const BlockMatrix<Scalar> r = r_ode_factor(*sde, gaussian, lo, hi);
    add("R-ODE: R R^T = C",
        rel_error(r * r.transpose(), gaussian_marginal(*sde, gaussian, hi).second), {1e-11, 1e-28});
  }
  const Mat<Scalar> x_start = flow_start<Scalar>(c);
  const Mat<Scalar> x_exact = exact_flow_map<Scalar>(
      *sde, gaussian, x_start, from_double<Scalar>(c.flow_from), from_double<Scalar>(c.flow_to));
  const Mat<mp50> ref = reference_solution(c, flow_start<mp50>(c));
  const Mat<Scalar> ref_here = ref.unaryExpr([](const mp50& v) { return static_cast<Scalar>(v); });
  add("flow map: exact vs 50-digit ODE solve", rel_error(x_exact, ref_here), {1e-12, 1e-25});

  if (c.name == "cld") {
    // Rotation-angle quadrature needs 2x2 blocks: diagonal data covariance.
    const auto diag = make_target<Scalar>(
        json{{"type", "gaussian"}, {"mean", {0.5, -1.0}}, {"cov", {{0.5, 0.0}, {0.0, 0.3}}}});
    const Scalar s = from_double<Scalar>(c.flow_from), t = from_double<Scalar>(c.flow_to);
    add("flow map: R-ODE vs rotation-angle quadrature",
        rel_error(flow_propagator_r_ode(*sde, diag, s, t),
                  flow_propagator_rotation(*sde, diag, s, t)),
        {1e-11, 1e-25});
  }

  // The public check values of docs/NOTES.md.
  if (c.name == "cld") {
    Mat<Scalar> published(2, 2);
    published << decimal<Scalar>("0.2218100610414"), decimal<Scalar>("0.1298598403741"),
        decimal<Scalar>("0.1298598403741"), decimal<Scalar>("0.2157583505481");
    add("public: CLD Sigma(0.1) = docs/NOTES.md values (13 digits)",
        rel_error(Mat<Scalar>(sde->covariance(ratio<Scalar>(1, 10)).block(0)), published),
        {1e-13, 1e-13});
  }
  if (c.name == "vp-linear") {
    const auto* vp = dynamic_cast<const ScalarSde<Scalar>*>(sde.get());
    Mat<Scalar> x1(2, 1);
    x1 << ratio<Scalar>(3, 10), ratio<Scalar>(-11, 10);
    x1 += vp->alpha(Scalar(1)) * gaussian.means();
    const Mat<Scalar> x =
        exact_flow_map<Scalar>(*sde, gaussian, x1, Scalar(1), ratio<Scalar>(1, 20));
    // docs/NOTES.md prints (0.26751345705187957, -1.7722151628994074), 3e-13 away from the exact
    // map; the 25 digits below come from analytic/blurring_and_flow.py (mpmath, 50 digits), which
    // agrees with an independent RK4 solve of the PF-ODE to 4e-18.
    Mat<Scalar> published(2, 1), exact(2, 1);
    published << decimal<Scalar>("0.26751345705187957"), decimal<Scalar>("-1.7722151628994074");
    exact << decimal<Scalar>("0.2675134570517571412126377"),
        decimal<Scalar>("-1.772215162899080256811326");
    add("public: VP flow map x(0.05) vs docs/NOTES.md (3e-13 off)", rel_error(x, published),
        {1e-12, 1e-12});
    add("public: VP flow map x(0.05) vs 25-digit mpmath", rel_error(x, exact), {1e-15, 1e-24});
  }

  // Score vs central differences of the log-density (mixture), at mid-range time.
  {
    const auto gmm = make_target<Scalar>(c.gmm);
    const Scalar t = from_double<Scalar>(c.t_lo + 0.3 * (c.t_hi - c.t_lo));
    const Marginal<Scalar> marginal(*sde, gmm, t);
    Rng rng(7);
    const Mat<Scalar> x = marginal.sample(3, rng);
    const Scalar h = ScalarTraits<Scalar>::difference_step();
    Mat<Scalar> fd(x.rows(), x.cols());
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      Mat<Scalar> up = x, down = x;
      up.row(i).array() += h;
      down.row(i).array() -= h;
      fd.row(i) = (marginal.log_density(up) - marginal.log_density(down)).transpose() / (2 * h);
    }
    // Central differences: truncation h^2 and round-off eps / h, ~eps^(2/3) at h = eps^(1/3).
    add("score vs finite differences of log p_t", rel_error(marginal.score(x), fd),
        {1e-7, 1e-24, 1e-20});
  }
  return rows;
}

template <class Scalar>
std::vector<CheckRow> run_all(const VerifyOptions& options) {
  const std::vector<Case> all = all_cases();
  std::vector<const Case*> cases;
  for (const Case& c : all)
    if (options.sdes.empty() ||
        std::find(options.sdes.begin(), options.sdes.end(), c.name) != options.sdes.end())
      cases.push_back(&c);
  std::vector<CheckRow> rows;
  ProgressStage stage(options.progress, "verify " + scalar_name<Scalar>(), cases.size());
  for (const Case* c : cases) {
    auto case_rows = run_case<Scalar>(*c);
    size_t failed = 0;
    for (const auto& r : case_rows) failed += !r.pass();
    rows.insert(rows.end(), case_rows.begin(), case_rows.end());
    stage.done(c->name + ": " + std::to_string(case_rows.size() - failed) + " of " +
               std::to_string(case_rows.size()) + " checks pass");
  }
  return rows;
}

}  // namespace pflow::verify_detail
