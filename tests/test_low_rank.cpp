// Low rank plus diagonal structure in dense covariances (low_rank.hpp): detection, and the
// marginal's score and the exact flow that use it, against the dense computation in 50 digits
// (which never looks for the structure: an independent computation).
#include "helpers.hpp"
#include "pflow/experiment/run.hpp"
#include "pflow/flow/exact_flow.hpp"
#include "pflow/target/low_rank.hpp"
#include "pflow/target/marginal.hpp"

using namespace pflow;
using json = nlohmann::json;

namespace {

// S = D + W W^T with W d x r standard normal times `scale`, D on [d_lo, d_hi] (c I if equal).
struct FactorModel {
  Mat<double> cov, low_rank;
  Vec<double> diagonal;
};
FactorModel factor_model(int d, int r, double scale, double d_lo, double d_hi, std::uint64_t seed) {
  Rng rng(seed);
  const Mat<double> w = scale * rng.normal_matrix<double>(d, r);
  FactorModel m;
  m.low_rank = w * w.transpose();
  m.diagonal.resize(d);
  for (int i = 0; i < d; ++i) m.diagonal(i) = d_lo + (d_hi - d_lo) * rng.uniform();
  m.cov = m.low_rank;
  m.cov.diagonal() += m.diagonal;
  return m;
}

double max_abs(const Mat<double>& m) {
  return m.cwiseAbs().maxCoeff();
}

}  // namespace

TEST_CASE("low rank plus diagonal: detection recovers D, U and l, and refuses what is not",
          "[targets]") {
  SECTION("a general diagonal") {
    const FactorModel m = factor_model(96, 5, 1.5, 0.2, 2.0, 7);
    const auto found = detect_low_rank_plus_diagonal(m.cov);
    REQUIRE(found);
    CHECK(found->rank() == 5);
    CHECK_FALSE(found->scaled_identity);
    const double scale = max_abs(m.cov);
    INFO("scale " << scale << ", residual " << found->residual);
    CHECK(max_diff(found->diagonal, m.diagonal) < 1e-12 * scale);
    const Mat<double> rebuilt =
        found->vectors * found->values.asDiagonal() * found->vectors.transpose();
    CHECK(max_diff(rebuilt, m.low_rank) < 1e-12 * scale);
    CHECK(max_diff(found->vectors.transpose() * found->vectors, Mat<double>::Identity(5, 5)) <
          1e-14);
    for (int i = 1; i < 5; ++i) CHECK(found->values(i) <= found->values(i - 1));
  }
  SECTION("c I plus low rank") {
    const FactorModel m = factor_model(120, 12, 1.0, 0.3, 0.3, 8);
    const auto found = detect_low_rank_plus_diagonal(m.cov);
    REQUIRE(found);
    CHECK(found->rank() == 12);  // = d / 8, the largest rank looked for
    CHECK(found->scaled_identity);
    CHECK(found->diagonal(0) == Approx(0.3).epsilon(1e-12));
  }
  SECTION("not low rank plus diagonal: left dense") {
    CHECK_FALSE(detect_low_rank_plus_diagonal(factor_model(96, 13, 1.0, 0.5, 1.0, 9).cov));
    CHECK_FALSE(detect_low_rank_plus_diagonal(factor_model(47, 2, 1.0, 0.5, 1.0, 9).cov));
    FactorModel m = factor_model(96, 3, 1.0, 0.5, 1.0, 10);
    Rng rng(11);
    const Mat<double> noise = rng.normal_matrix<double>(96, 96);
    CHECK(detect_low_rank_plus_diagonal(m.cov));
    // A symmetric perturbation of 1e-8: full rank off the diagonal, refused.
    CHECK_FALSE(detect_low_rank_plus_diagonal(m.cov + 1e-8 * (noise + noise.transpose())));
    // A negative diagonal entry in D (the low-rank part carries it): refused.
    m.cov(5, 5) -= m.diagonal(5) + 0.1;
    CHECK_FALSE(detect_low_rank_plus_diagonal(m.cov));
    // Exactly low rank plus diagonal in exact arithmetic, but D = 1e-14 lies below the rounding
    // of S's entries (~1e-15 of ~10, summed over the matrix): the structure could not certify
    // S positive definite, refused. The same W over D = 1e-2 is accepted.
    CHECK_FALSE(detect_low_rank_plus_diagonal(factor_model(96, 4, 1.5, 1e-14, 1e-14, 13).cov));
    const auto accepted =
        detect_low_rank_plus_diagonal(factor_model(96, 4, 1.5, 1e-2, 1e-2, 13).cov);
    REQUIRE(accepted);
    INFO("||E||_F / min D = " << accepted->relative_change);
    CHECK(accepted->relative_change < 1e-9);
    // The power law of the generated Gaussian: dense, no gap in the spectrum.
    const auto generated = generate_gaussian(generated_gaussian_spec(
        {{"dim", 96}, {"largest", 10.0}, {"exponent", 1.0}, {"seed", 1}}, "generated"));
    CHECK_FALSE(detect_low_rank_plus_diagonal(generated.second));
  }
  SECTION("a target keeps the dense matrix and carries the structure") {
    const FactorModel m = factor_model(64, 4, 1.0, 0.5, 1.5, 12);
    const auto data = GaussianMixture<double>::gaussian(Vec<double>::Zero(64), m.cov);
    REQUIRE(data.low_rank(0) != nullptr);
    CHECK(data.cov(0).to_dense() == m.cov);
    CHECK(data.low_rank(0)->rank() == 4);
    // Not in 50 digits: the structure is found in double only.
    const auto data50 = GaussianMixture<mp50>::gaussian(Vec<mp50>::Zero(64), m.cov.cast<mp50>());
    CHECK(data50.low_rank(0) == nullptr);
  }
}

TEST_CASE(
    "low rank plus diagonal: the marginal's score, density, eps and x0 agree with the dense "
    "marginal in 50 digits",
    "[targets]") {
  const auto sde = make_sde<double>({{"type", "vp-linear"}}, 64);
  const auto sde50 = make_sde<mp50>({{"type", "vp-linear"}}, 64);
  // Two components: a general D, and c I plus low rank.
  const FactorModel a = factor_model(64, 4, 1.2, 0.05, 0.8, 21);
  const FactorModel b = factor_model(64, 6, 0.7, 0.1, 0.1, 22);
  Rng rng(23);
  const Mat<double> means = rng.normal_matrix<double>(64, 2);
  Vec<double> weights(2);
  weights << 0.4, 0.6;
  const auto data = GaussianMixture<double>::gmm(weights, means, {a.cov, b.cov});
  REQUIRE(data.low_rank(0));
  REQUIRE(data.low_rank(1));
  CHECK_FALSE(data.low_rank(0)->scaled_identity);
  CHECK(data.low_rank(1)->scaled_identity);
  const auto data50 = GaussianMixture<mp50>::gmm(weights.cast<mp50>(), means.cast<mp50>(),
                                                 {a.cov.cast<mp50>(), b.cov.cast<mp50>()});
  const Mat<double> x = 1.5 * rng.normal_matrix<double>(64, 5);
  const auto rel = [](const Mat<double>& got, const Mat<mp50>& want) {
    const Mat<double> w = want.cast<double>();
    return max_diff(got, w) / max_abs(w);
  };
  for (double t : {1e-3, 0.3, 1.0}) {
    INFO("t = " << t);
    const Marginal<double> p(*sde, data, t);
    const Marginal<mp50> p50(*sde50, data50, mp50(t));
    const Mat<mp50> x50 = x.cast<mp50>();
    CHECK(rel(p.score(x), p50.score(x50)) < 1e-12);
    CHECK(rel(p.log_density(x), p50.log_density(x50)) < 1e-13);
    CHECK(rel(p.eps(x), p50.eps(x50)) < 1e-12);
    CHECK(rel(p.x0(x), p50.x0(x50)) < 1e-12);
    // The divergence path forms A; the same numbers.
    const auto identity = BlockMatrix<double>::identity(64, 1);
    const auto identity50 = BlockMatrix<mp50>::identity(64, 1);
    CHECK(rel(p.score_divergence(x, identity), p50.score_divergence(x50, identity50)) < 1e-11);
    // One particle, one component, no density: the score alone (the dense path's shortcut).
    const auto single = GaussianMixture<double>::gaussian(means.col(0), a.cov);
    const auto single50 =
        GaussianMixture<mp50>::gaussian(means.col(0).cast<mp50>(), a.cov.cast<mp50>());
    const Mat<double> many = rng.normal_matrix<double>(64, 80);
    CHECK(rel(Marginal<double>(*sde, single, t).score(many),
              Marginal<mp50>(*sde50, single50, mp50(t)).score(many.cast<mp50>())) < 1e-12);
  }
  // Samples of p_t from the structured factor: mean and covariance of 40000 draws.
  const double t = 0.5;
  const auto single = GaussianMixture<double>::gaussian(means.col(0), a.cov);
  const Marginal<double> p(*sde, single, t);
  Rng draws(24);
  const Mat<double> z = p.sample(40000, draws);
  const Vec<double> mean = z.rowwise().mean();
  const Mat<double> centred = z.colwise() - mean;
  const Mat<double> cov = centred * centred.transpose() / 39999.0;
  const auto& vp = dynamic_cast<const ScalarSde<double>&>(*sde);
  const double alpha = vp.alpha(t), sigma = vp.sigma(t);
  Mat<double> want = alpha * alpha * a.cov;
  want.diagonal().array() += sigma * sigma;
  INFO("max |cov - C| = " << max_diff(cov, want) << " of " << max_abs(want));
  CHECK(max_diff(cov, want) < 0.04 * max_abs(want));
  CHECK(max_diff(mean, alpha * means.col(0)) < 0.03 * std::sqrt(max_abs(want)));
}

// Components of different structure in one mixture: low rank plus diagonal, diagonal (block
// path: evaluate_blocks) and a dense power law (spectral path), against the 50-digit mixture.
TEST_CASE("low rank plus diagonal: mixed with diagonal and dense components", "[targets]") {
  const int d = 64;
  const auto sde = make_sde<double>({{"type", "vp-linear"}}, d);
  const auto sde50 = make_sde<mp50>({{"type", "vp-linear"}}, d);
  const FactorModel a = factor_model(d, 3, 1.0, 0.1, 0.6, 41);
  Rng rng(42);
  Mat<double> diagonal = Mat<double>::Zero(d, d);
  for (int i = 0; i < d; ++i) diagonal(i, i) = 0.2 + rng.uniform();
  const Mat<double> dense =
      generate_gaussian(generated_gaussian_spec(
                            {{"dim", d}, {"largest", 5.0}, {"exponent", 1.0}, {"seed", 43}}, "g"))
          .second;
  const Mat<double> means = rng.normal_matrix<double>(d, 3);
  Vec<double> weights(3);
  weights << 0.2, 0.5, 0.3;
  const Mat<double> x = rng.normal_matrix<double>(d, 7);
  for (const bool with_dense : {false, true}) {
    INFO("with the dense component: " << with_dense);
    const Mat<double>& third = with_dense ? dense : a.cov;
    const auto data = GaussianMixture<double>::gmm(weights, means, {a.cov, diagonal, third});
    REQUIRE(data.low_rank(0));
    CHECK(data.low_rank(1) == nullptr);
    CHECK(data.cov(1).block_size() == 1);
    const auto data50 =
        GaussianMixture<mp50>::gmm(weights.cast<mp50>(), means.cast<mp50>(),
                                   {a.cov.cast<mp50>(), diagonal.cast<mp50>(), third.cast<mp50>()});
    for (double t : {0.01, 0.5}) {
      INFO("t = " << t);
      const Marginal<double> p(*sde, data, t);
      const Marginal<mp50> p50(*sde50, data50, mp50(t));
      const Mat<double> want = p50.score(x.cast<mp50>()).cast<double>();
      CHECK(max_diff(p.score(x), want) < 1e-12 * max_abs(want));
      const Mat<double> want_density = p50.log_density(x.cast<mp50>()).cast<double>();
      CHECK(max_diff(p.log_density(x), want_density) < 1e-13 * max_abs(want_density));
    }
  }
}

TEST_CASE(
    "low rank plus diagonal: the exact flow of c I plus low rank in O(d r) agrees with the "
    "50-digit map",
    "[targets]") {
  const auto sde = make_sde<double>({{"type", "vp-linear"}}, 96);
  const auto sde50 = make_sde<mp50>({{"type", "vp-linear"}}, 96);
  const FactorModel m = factor_model(96, 8, 2.0, 0.01, 0.01, 31);
  Rng rng(32);
  const Vec<double> mu = rng.normal_matrix<double>(96, 1).col(0);
  const auto data = GaussianMixture<double>::gaussian(mu, m.cov);
  REQUIRE(data.low_rank(0));
  REQUIRE(data.low_rank(0)->scaled_identity);
  const auto data50 = GaussianMixture<mp50>::gaussian(mu.cast<mp50>(), m.cov.cast<mp50>());
  const Mat<double> x = 2.0 * rng.normal_matrix<double>(96, 4);
  const Mat<double> got = exact_flow_map<double>(*sde, data, x, 1.0, 1e-3);
  const Mat<mp50> want =
      exact_flow_map<mp50>(*sde50, data50, x.cast<mp50>(), mp50(1), mp50("1e-3"));
  const double diff = max_diff(got, want.cast<double>());
  INFO("max diff " << diff);
  CHECK(diff < 1e-12 * max_abs(want.cast<double>()));
  CHECK(diff > 0);
}

TEST_CASE("generated Gaussian: low rank plus diagonal, and its bad specs", "[targets]") {
  const json spec_json = {{"spectrum", "low-rank-plus-diagonal"},
                          {"dim", 96},
                          {"rank", 6},
                          {"largest", 20.0},
                          {"exponent", 1.0},
                          {"diagonal_min", 0.1},
                          {"diagonal_max", 0.4},
                          {"seed", 5}};
  const auto spec = generated_gaussian_spec(spec_json, "target.generated");
  const auto [mean, cov] = generate_gaussian(spec);
  CHECK(cov == cov.transpose());
  const auto data = make_target<double>({{"type", "gaussian"}, {"generated", spec_json}});
  REQUIRE(data.low_rank(0));
  CHECK(data.low_rank(0)->rank() == 6);
  CHECK_FALSE(data.low_rank(0)->scaled_identity);
  // l_k = 20 / k, the low-rank part's eigenvalues.
  for (int k = 0; k < 6; ++k)
    CHECK(data.low_rank(0)->values(k) == Approx(20.0 / (k + 1)).epsilon(1e-12));
  CHECK(data.low_rank(0)->diagonal.minCoeff() >= 0.1 - 1e-12);
  CHECK(data.low_rank(0)->diagonal.maxCoeff() <= 0.4 + 1e-12);
  json same = spec_json;
  same["diagonal_max"] = 0.1;
  CHECK(make_target<double>({{"type", "gaussian"}, {"generated", same}})
            .low_rank(0)
            ->scaled_identity);
  const auto message = [](json generated) {
    try {
      make_target<double>({{"type", "gaussian"}, {"generated", generated}});
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(message({{"dim", 8}, {"rank", 2}}),
             Catch::Contains("target.generated.rank = 2: belongs to the spectrum"));
  json bad = spec_json;
  bad["rank"] = 0;
  CHECK_THAT(message(bad), Catch::Contains("target.generated.rank = 0"));
  bad = spec_json;
  bad["diagonal_max"] = 0.05;
  CHECK_THAT(message(bad), Catch::Contains("target.generated.diagonal_max = 0.05"));
  bad = spec_json;
  bad["diagonal_min"] = 1e-15;
  bad["diagonal_max"] = 1e-15;
  CHECK_THAT(message(bad), Catch::Contains("below 1e-12 of the largest eigenvalue"));
}

// A run on a generated factor model (d = 96, rank 6): the cells use the O(d r) score, the
// reference "exact-double" the O(d r) map (c I) or the dense spectrum (general D); "exact" is
// the 50-digit map from the dense matrix, which 50-digit data never examines for structure.
TEST_CASE("low rank plus diagonal: a run's exact-double reference agrees with the 50-digit map",
          "[experiments]") {
  for (double diagonal_max : {0.02, 0.2}) {
    INFO("diagonal_max " << diagonal_max);
    json c = {{"name", "factor96"},
              {"sde", {{"type", "vp-linear"}}},
              {"target",
               {{"type", "gaussian"},
                {"generated",
                 {{"spectrum", "low-rank-plus-diagonal"},
                  {"dim", 96},
                  {"rank", 6},
                  {"largest", 50.0},
                  {"exponent", 1.0},
                  {"diagonal_min", 0.02},
                  {"diagonal_max", diagonal_max},
                  {"mean_std", 0.5},
                  {"seed", 3}}}}},
              {"time", {{"t_start", 1.0}, {"t_end", 1e-3}, {"grid", "logsnr"}}},
              {"init", {{"count", 6}, {"seed", 4}}},
              {"solvers", {"ddim", "dpm-solver++-2m"}},
              {"nfe", {16, 32, 64}},
              {"reference", "exact-double"}};
    const ExperimentResult fast = run_experiment(parse_experiment(c), {});
    c["reference"] = "exact";
    const ExperimentResult slow = run_experiment(parse_experiment(c), {});
    CHECK(slow.reference_method == "exact flow map (50 digits)");
    CHECK(fast.reference_method ==
          (diagonal_max == 0.02
               ? "exact flow map (double, per-mode closed form of c I plus rank 6, O(d r))"
               : "exact flow map (double, per-mode closed form from one eigendecomposition)"));
    REQUIRE(fast.reference.size() == 6 * 96);
    const auto [diff, scale] = pflow::testing::diff_and_scale(fast.reference, slow.reference);
    INFO("max |exact-double - exact| = " << diff << " of max |x| = " << scale);
    CHECK(diff < 1e-12 * scale);
    CHECK(diff > 0);
    // The same initial states and cells under both references; dpm-solver++-2m's error falls
    // ~4x per doubling of NFE (order 2) from NFE 16.
    CHECK(fast.init == slow.init);
    const auto& cells = fast.solvers[1].cells;
    INFO("errors " << cells[0].err_max << " " << cells[1].err_max << " " << cells[2].err_max);
    CHECK(cells[1].err_max < cells[0].err_max / 3);
    CHECK(cells[2].err_max < cells[1].err_max / 3);
  }
}
