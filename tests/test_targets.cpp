// Targets with analytic scores: scores and predictions against independent formulas.
#include <cstdint>
#include <cstring>
#include <limits>

#include "helpers.hpp"
#include "pflow/core/simd.hpp"
#include "pflow/flow/exact_flow.hpp"
#include "pflow/sde/cld.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/target/data_source.hpp"

using namespace pflow;
using json = nlohmann::json;
using pflow::testing::max_diff;
using pflow::testing::tol;

namespace {

template <class S>
GaussianMixture<S> correlated_gaussian() {
  Vec<S> mu(2);
  mu << ratio<S>(1, 2), -1;
  Mat<S> cov(2, 2);
  cov << 1, ratio<S>(8, 10), ratio<S>(8, 10), ratio<S>(9, 10);
  return GaussianMixture<S>::gaussian(mu, cov);
}

template <class S>
Mat<S> some_points() {
  Mat<S> x(2, 3);
  x << ratio<S>(1, 3), -1, 2, ratio<S>(-1, 2), ratio<S>(1, 4), 1;
  return x;
}

}  // namespace

TEMPLATE_TEST_CASE("Gaussian data: score, eps, x0 and v against closed forms (VP)", "[targets]",
                   double, mp50) {
  using S = TestType;
  const VpLinear<S> vp(ratio<S>(1, 10), S(20), 2);
  const auto data = correlated_gaussian<S>();
  const S t = ratio<S>(3, 10);
  const Marginal<S> p(vp, data, t);
  const S a = vp.alpha(t), s = vp.sigma(t);
  const Mat<S> s0 = data.cov(0).to_dense();
  const Mat<S> c = a * a * s0 + s * s * Mat<S>::Identity(2, 2);
  const Mat<S> x = some_points<S>();
  const Mat<S> centred = x.colwise() - (a * data.means()).col(0);
  // score = -C^{-1}(x - a mu)
  const Mat<S> score = -c.inverse() * centred;
  CHECK(max_diff(p.score(x), score) < tol<S>(1e-14, 1e-45));
  // eps = -sigma score
  CHECK(max_diff(p.eps(x), Mat<S>(-s * score)) < tol<S>(1e-14, 1e-45));
  // Gaussian posterior mean E[x0 | x_t] = mu + a S0 C^{-1} (x - a mu)
  const Mat<S> x0 = (a * s0 * c.inverse() * centred).colwise() + data.means().col(0);
  CHECK(max_diff(p.x0(x), x0) < tol<S>(1e-14, 1e-45));
  // VP: a^2 + s^2 = 1, so x0 = a x - s v and eps = s x + a v (docs/NOTES.md sec. 3).
  const Mat<S> v = p.v(x);
  CHECK(max_diff(Mat<S>(a * x - s * v), p.x0(x)) < tol<S>(1e-14, 1e-45));
  CHECK(max_diff(Mat<S>(s * x + a * v), p.eps(x)) < tol<S>(1e-14, 1e-45));
  // log density of N(a mu, C)
  using std::log;
  const Vec<S> logp = p.log_density(x);
  for (int j = 0; j < 3; ++j) {
    const Vec<S> y = centred.col(j);
    const S expected = -(y.dot(c.inverse() * y)) / 2 - log(c.determinant()) / 2 - log(2 * pi<S>());
    CHECK(to_double(S(abs(logp(j) - expected))) < tol<S>(1e-14, 1e-45));
  }
}

TEMPLATE_TEST_CASE("Mixture score is the responsibility-weighted component score", "[targets]",
                   double, mp50) {
  using S = TestType;
  const nlohmann::json config = {
      {"type", "gmm"},
      {"weights", {0.3, 0.7}},
      {"means", {{-1.0, 0.0}, {1.5, 0.5}}},
      {"covs", {{{0.04, 0.01}, {0.01, 0.09}}, {{0.25, 0.0}, {0.0, 0.16}}}}};
  const auto gmm = make_target<S>(config);
  const VpLinear<S> vp(ratio<S>(1, 10), S(20), 2);
  const S t = ratio<S>(1, 5);
  const Marginal<S> p(vp, gmm, t);
  const Mat<S> x = some_points<S>();
  // Independent evaluation: each component as its own Gaussian marginal, combined by Bayes.
  using std::exp;
  Mat<S> expected = Mat<S>::Zero(2, 3);
  Vec<S> total = Vec<S>::Zero(3);
  for (int k = 0; k < 2; ++k) {
    const auto comp = GaussianMixture<S>::gaussian(gmm.means().col(k), gmm.cov(k).to_dense());
    const Marginal<S> pk(vp, comp, t);
    const Vec<S> w = (pk.log_density(x).array().exp() * gmm.weights()(k)).matrix();
    expected += pk.score(x) * w.asDiagonal();
    total += w;
  }
  expected = expected * total.cwiseInverse().asDiagonal();
  CHECK(max_diff(p.score(x), expected) < tol<S>(1e-13, 1e-44));
  // Far from every component, log-sum-exp keeps the score finite and exact.
  Mat<S> far(2, 1);
  far << 40, -35;
  CHECK(max_diff(p.score(far), p.score(far)) == 0);
  CHECK(to_double(p.score(far).cwiseAbs().maxCoeff()) < 1e4);
}

TEMPLATE_TEST_CASE("CLD: the velocity prior enters the marginal and x0 recovers the data mean",
                   "[targets]", double, mp50) {
  using S = TestType;
  const Cld<S> cld(S(4), ratio<S>(1, 4), ratio<S>(4, 100), 2);
  const auto data = correlated_gaussian<S>();
  const S t = ratio<S>(1, 5);
  const Marginal<S> p(cld, data, t);
  // Dense check: C = Psi [[S0, 0], [0, 0]] Psi^T + Sigma(t) and score = -C^{-1}(u - m).
  const Mat<S> psi = cld.transition(t, S(0)).to_dense();
  Mat<S> lifted = Mat<S>::Zero(4, 4);
  lifted.topLeftCorner(2, 2) = data.cov(0).to_dense();
  const Mat<S> c = psi * lifted * psi.transpose() + cld.covariance(t).to_dense();
  Vec<S> m0 = Vec<S>::Zero(4);
  m0.head(2) = data.means().col(0);
  const Vec<S> m = psi * m0;
  Mat<S> u(4, 2);
  u << ratio<S>(1, 3), -1, ratio<S>(1, 2), 2, ratio<S>(-1, 5), ratio<S>(1, 7), 1, 0;
  const Mat<S> score = -c.inverse() * (u.colwise() - m);
  CHECK(max_diff(p.score(u), score) < tol<S>(1e-13, 1e-44));
  // eps = -K^T score with K the Cholesky factor of Sigma(t).
  const Mat<S> k = Eigen::LLT<Mat<S>>(cld.covariance(t).to_dense()).matrixL();
  CHECK(max_diff(p.eps(u), Mat<S>(-k.transpose() * score)) < tol<S>(1e-13, 1e-44));
  // At the marginal mean, E[x0 | u_t] is the data mean.
  CHECK(max_diff(p.x0(m), data.means()) < tol<S>(1e-13, 1e-44));
  // v-prediction is defined for scalar SDEs only: a clear error, not a wrong number.
  CHECK_THROWS_WITH(p.v(u), Catch::Contains("scalar SDEs only"));
}

TEMPLATE_TEST_CASE("Dirac data: the flow map is DDIM's and t = 0 is rejected", "[targets]", double,
                   mp50) {
  using S = TestType;
  const VpLinear<S> vp(ratio<S>(1, 10), S(20), 2);
  Vec<S> point(2);
  point << 1, -2;
  const auto dirac = GaussianMixture<S>::dirac(point);
  const Mat<S> x = some_points<S>();
  const S s = ratio<S>(9, 10), t = ratio<S>(1, 10);
  // x_t = alpha_t x0 + (sigma_t / sigma_s)(x_s - alpha_s x0)
  const Mat<S> expected =
      (vp.sigma(t) / vp.sigma(s) * (x.colwise() - vp.alpha(s) * point)).colwise() +
      vp.alpha(t) * point;
  CHECK(max_diff(exact_flow_map<S>(vp, dirac, x, s, t), expected) < tol<S>(1e-15, 1e-47));
  CHECK_THROWS_WITH(Marginal<S>(vp, dirac, S(0)), Catch::Contains("t = 0"));
}

TEMPLATE_TEST_CASE("Blurring: exact flow (R-ODE) matches the 50-digit reference", "[targets]",
                   double, mp50) {
  using S = TestType;
  const nlohmann::json sde_config = {{"type", "blurring"}, {"shape", {1, 2, 3}}};
  const auto sde = make_sde<S>(sde_config, 6);
  Mat<S> cov = Mat<S>::Identity(6, 6) / S(2);
  for (int i = 0; i + 1 < 6; ++i) cov(i, i + 1) = cov(i + 1, i) = ratio<S>(1, 10);
  const auto data = GaussianMixture<S>::gaussian(Vec<S>::LinSpaced(6, S(-1), S(1)), cov);
  Mat<S> x(6, 1);
  x << ratio<S>(1, 2), -1, ratio<S>(1, 3), 0, 2, ratio<S>(-3, 4);
  const Mat<S> exact = exact_flow_map<S>(*sde, data, x, S(1), ratio<S>(1, 10));
  const Mat<S> ode = reference_flow<S>(*sde, data, x, S(1), ratio<S>(1, 10));
  CHECK(max_diff(exact, ode) < tol<S>(1e-12, 1e-26));
}

TEST_CASE("generated Gaussian: a dense covariance with the power-law spectrum, fixed by the seed",
          "[targets]") {
  const json spec_json = {
      {"dim", 80}, {"largest", 50.0}, {"exponent", 1.5}, {"mean_std", 0.5}, {"seed", 3}};
  const GeneratedGaussianSpec spec = generated_gaussian_spec(spec_json, "target.generated");
  const auto [mean, cov] = generate_gaussian(spec);
  const auto [mean2, cov2] = generate_gaussian(spec);
  CHECK(mean == mean2);  // deterministic
  CHECK(cov == cov2);
  CHECK(cov == cov.transpose());  // exactly symmetric
  // Dense and unstructured: the mixture keeps it as one dense block (no diagonal, no sharing).
  const auto data = make_target<double>({{"type", "gaussian"}, {"generated", spec_json}});
  CHECK(data.cov(0).groups() == 1);
  CHECK(data.cov(0).block_size() == 80);
  CHECK(cov.cwiseAbs().minCoeff() > 0);
  // Its spectrum is l_k = 50 k^-1.5 (Eigen's solver, independent of the LAPACK one), and the
  // LAPACK eigendecomposition the mixture caches (d >= 64) gives the same values and rebuilds S.
  const Vec<double> wanted = spec.eigenvalues().reverse();  // ascending
  const Eigen::SelfAdjointEigenSolver<Mat<double>> eig(cov);
  CHECK((eig.eigenvalues() - wanted).cwiseAbs().maxCoeff() < 1e-12 * 50);
  CHECK(wanted(0) == Approx(50 * std::pow(80.0, -1.5)).epsilon(1e-15));
  const auto* spectrum = data.spectrum(0);
  REQUIRE(spectrum != nullptr);
  CHECK((spectrum->values - wanted).cwiseAbs().maxCoeff() < 1e-12 * 50);
  const Mat<double> rebuilt =
      spectrum->vectors * spectrum->values.asDiagonal() * spectrum->vectors.transpose();
  CHECK((rebuilt - cov).cwiseAbs().maxCoeff() < 1e-12 * 50);
  CHECK((spectrum->vectors.transpose() * spectrum->vectors - Mat<double>::Identity(80, 80))
            .cwiseAbs()
            .maxCoeff() < 1e-13);
  // Another seed, another eigenbasis; the mean has the requested scale (80 draws of N(0, 0.25)).
  const json other = {{"dim", 80}, {"largest", 50.0}, {"exponent", 1.5}, {"seed", 4}};
  CHECK(generate_gaussian(generated_gaussian_spec(other, "g")).second != cov);
  CHECK(std::sqrt(mean.squaredNorm() / 80) == Approx(0.5).epsilon(0.25));
  // The spec alone gives the dimension, without generating.
  CHECK(DataSource<double>::dim_of_config({{"type", "gaussian"}, {"generated", spec_json}},
                                          "target") == 80);
}

TEST_CASE("generated Gaussian: bad specs name the field", "[targets]") {
  const auto message = [](const json& generated) {
    try {
      make_target<double>({{"type", "gaussian"}, {"generated", generated}});
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(message({{"dim", 0}}), Catch::Contains("target.generated.dim = 0"));
  CHECK_THAT(message({{"dim", 8}, {"largest", -1}}),
             Catch::Contains("target.generated.largest = -1"));
  CHECK_THAT(message({{"dim", 3072}, {"exponent", 5}}),
             Catch::Contains("below 1e-12 of the largest"));
  CHECK_THAT(message({{"dim", 8}, {"spectrum", "flat"}}),
             Catch::Contains("target.generated.spectrum = flat"));
  CHECK_THAT(message({{"dim", 8}, {"seed", 1.5}}), Catch::Contains("target.generated.seed = 1.5"));
  CHECK_THAT(message({{"dims", 8}}), Catch::Contains("dim"));
  CHECK_THAT(message(json::array({8})), Catch::Contains("must be an object"));
  try {
    make_target<double>({{"type", "gaussian"}, {"mean", {0.0}}, {"generated", {{"dim", 1}}}});
    FAIL("mean beside generated was accepted");
  } catch (const InputError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("replaces 'mean' and 'cov'"));
  }
}

namespace {

// A K-component mixture in d dimensions with covariances A A^T / d + S_min I (condition number up
// to ~ (4 + S_min) / S_min) and means 2 N(0, I), fixed by the seed.
nlohmann::json random_dense_mixture(int d, int k, double s_min, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<double> weights;
  std::vector<Vec<double>> means;
  std::vector<Mat<double>> covs;
  for (int c = 0; c < k; ++c) {
    const Mat<double> a = rng.normal_matrix<double>(d, d);
    covs.push_back(a * a.transpose() / d + s_min * Mat<double>::Identity(d, d));
    means.push_back(2 * rng.normal_matrix<double>(d, 1));
    weights.push_back((1.0 + 0.1 * c) / (k + 0.05 * k * (k - 1)));  // sums to 1
  }
  return gmm_config(weights, means, covs);
}

}  // namespace

// From d = 5 the dense mixture score has two kernels: the precision form for batches of at
// least d particles (one product per component, in column blocks) and the whitened form below
// (d = 3: the fixed-size kernels). Both are checked against the 50-digit marginal of the same
// data, column blocks included (n = 1000 is several blocks; 200 at d = 64 is two), with the
// double eigendecomposition's accuracy (float128 for d = 5 to 64).
TEST_CASE("Dense mixture score: both kernels agree with 50 digits to the conditioning",
          "[targets]") {
  for (const int d : {3, 16, 64}) {
    for (const int k : {1, 5}) {
      CAPTURE(d, k);
      const nlohmann::json config = random_dense_mixture(d, k, 1e-3, 40 + d + k);
      const auto data = make_target<double>(config);
      const auto data_mp = make_target<mp50>(config);
      const VpLinear<double> vp(0.1, 20, d);
      const VpLinear<mp50> vp_mp(ratio<mp50>(1, 10), mp50(20), d);
      Rng rng(7);
      const Mat<double> x = 1.5 * rng.normal_matrix<double>(d, d < 64 ? 1000 : 200);
      for (const double t : {1e-3, 0.3, 1.0}) {
        CAPTURE(t);
        const Marginal<double> p(vp, data, t);
        const Marginal<mp50> p_mp(vp_mp, data_mp, mp50(t));
        const Mat<mp50> x_mp = x.cast<mp50>();
        const Mat<double> exact = p_mp.score(x_mp).cast<double>();
        const Vec<double> exact_log = p_mp.log_density(x_mp).cast<double>();
        const double scale = exact.cwiseAbs().maxCoeff();
        const Mat<double> batch = p.score(x);  // the precision form
        Mat<double> one_by_one(d, x.cols());   // one particle per call: the whitened form
        for (Eigen::Index j = 0; j < x.cols(); ++j) one_by_one.col(j) = p.score(x.col(j));
        const double batch_error = max_diff(batch, exact) / scale;
        const double single_error = max_diff(one_by_one, exact) / scale;
        const double log_error =
            max_diff(p.log_density(x), exact_log) / exact_log.cwiseAbs().maxCoeff();
        UNSCOPED_INFO("batch " << batch_error << " single " << single_error << " log "
                               << log_error);
        // C_t's condition number reaches ~4e3 at t = 1e-3: ~1e3 ulps (measured: up to 2.2e-13;
        // 1e-15 where C_t is well conditioned).
        CHECK(batch_error < 1e-12);
        CHECK(single_error < 1e-12);
        CHECK(log_error < 1e-13);
      }
    }
  }
}

// The AVX-512 softmax (core/simd.hpp) replaces Eigen's SSE2 code only where it gives
// the same bits: the summation order first, against Eigen's own sum over column blocks that start
// aligned and unaligned, with magnitudes spread so that any other order would round differently.
TEST_CASE("Eigen's summation order is the one the softmax kernel follows", "[targets]") {
  Rng rng(5);
  Mat<double> values = rng.normal_matrix<double>(41, 3);
  values.array() *= (rng.normal_matrix<double>(41, 3).array() * 12).exp();
  int differs_from_left_to_right = 0;
  for (Eigen::Index n = 1; n <= 40; ++n) {
    for (Eigen::Index offset = 0; offset < 2; ++offset) {
      CAPTURE(n, offset);
      const auto column = values.col(1).segment(offset, n);  // 16-byte aligned iff offset even
      const double* p = column.data();
      const std::ptrdiff_t aligned_start = reinterpret_cast<std::uintptr_t>(p) % 16 == 0 ? 0 : 1;
      const double eigen = column.sum();
      CHECK(kernels::eigen_ordered_sum(p, n, aligned_start) == eigen);
      double left_to_right = p[0];
      for (Eigen::Index i = 1; i < n; ++i) left_to_right += p[i];
      differs_from_left_to_right += left_to_right != eigen;
    }
  }
  CHECK(differs_from_left_to_right > 20);  // the values do tell the orders apart
}

// Then the whole softmax, kernel against Eigen's code on the same machine, through the mixture
// score and log-density: d = 1 to 4 (fixed-size kernels) and 16 (the precision form in column
// blocks), K from 2 to 17, odd and even particle counts (Eigen's scalar exp for the last element
// of an odd count), states far out (weights clamped and flushed below the smallest normal).
TEST_CASE("the AVX-512 softmax is bit-identical to Eigen's", "[targets]") {
  if (!pflow::testing::simd_to_compare()) return;
  const pflow::testing::SimdRestore restore;
  int compared = 0;
  for (const int d : {1, 2, 3, 4, 16}) {
    for (const int k : {2, 3, 8, 9, 17}) {
      const nlohmann::json config = random_dense_mixture(d, k, 1e-2, 300 + 10 * d + k);
      const auto data = make_target<double>(config);
      const VpLinear<double> vp(0.1, 20, d);
      Rng rng(d + k);
      for (const Eigen::Index n : {1, 7, 64, 777}) {
        for (const double spread : {1.5, 40.0}) {
          const Mat<double> x = spread * rng.normal_matrix<double>(d, n);
          for (const double t : {1e-3, 0.3, 1.0}) {
            CAPTURE(d, k, n, spread, t);
            const Marginal<double> p(vp, data, t);
            kernels::enable_simd(true);
            const Mat<double> score = p.score(x);
            const Vec<double> log_density = p.log_density(x);
            kernels::enable_simd(false);
            const Mat<double> eigen_score = p.score(x);
            const Vec<double> eigen_log_density = p.log_density(x);
            REQUIRE(score.allFinite());
            CHECK(std::memcmp(score.data(), eigen_score.data(), sizeof(double) * score.size()) ==
                  0);
            CHECK(std::memcmp(log_density.data(), eigen_log_density.data(), sizeof(double) * n) ==
                  0);
            ++compared;
          }
        }
      }
    }
  }
  CHECK(compared == 5 * 5 * 4 * 2 * 3);
}

// And the kernel alone on terms no score makes: exact ties, differences past exp's clamp
// (-709.784) and in the subnormal range, -inf; against the same operations in Eigen.
TEST_CASE("the AVX-512 softmax on extreme terms matches Eigen's operations", "[targets]") {
  if (!pflow::testing::simd_to_compare()) return;
  const double inf = std::numeric_limits<double>::infinity();
  for (const Eigen::Index rows : {2, 5, 8, 11}) {
    for (const Eigen::Index cols : {1, 3, 9}) {
      CAPTURE(rows, cols);
      Rng rng(rows * 100 + cols);
      Mat<double> terms = 300 * rng.normal_matrix<double>(rows, cols);
      terms(0, 0) = terms(rows - 1, 0);  // a tie for the maximum
      if (cols > 1) terms(1, 1) = -inf;
      for (Eigen::Index j = 0; j < cols; ++j)  // a weight near exp's clamp, one subnormal
        terms(rows / 2, j) = terms.col(j).maxCoeff() - (j % 2 ? 709.9 : 740.0);
      Mat<double> weights(rows, cols);
      Vec<double> top(cols), total(cols);
      kernels::simd_softmax(terms.data(), weights.data(), rows, cols, top.data(), total.data());
      // Eigen, as Marginal's portable softmax computes it
      using Row = Eigen::Matrix<double, 1, Eigen::Dynamic>;
      const Row eigen_top = terms.colwise().maxCoeff();
      Mat<double> eigen = terms - eigen_top.replicate(rows, 1);
      eigen.array() = eigen.array().exp();
      eigen = (eigen.array() < std::numeric_limits<double>::min()).select(0.0, eigen);
      const Row eigen_total = eigen.colwise().sum();
      eigen.array().rowwise() /= eigen_total.array();
      CHECK(std::memcmp(weights.data(), eigen.data(), sizeof(double) * rows * cols) == 0);
      CHECK(top.transpose() == eigen_top);
      CHECK(std::memcmp(total.data(), eigen_total.data(), sizeof(double) * cols) == 0);
      CHECK(weights.allFinite());
    }
  }
}
