// Sample-only data sets and kind "sample": the sliced Wasserstein-2 distance against cases with
// known answers, the data sets' moments and support against their closed forms, a data set's
// marginal under an SDE, the mixture's log-density by hand, and whole sample runs (distances fall
// to the floor, the file alone reproduces them, data sets need a learned model).
#include <filesystem>

#include "helpers.hpp"
#include "pflow/experiment/h5.hpp"
#include "pflow/experiment/run.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/target/data_source.hpp"
#include "pflow/target/sliced_wasserstein.hpp"

using namespace pflow;
using json = nlohmann::json;
using pflow::testing::temp_path;
using pflow::testing::tiny_config;

TEST_CASE("sliced W2: zero for one sample, the shift formula, a 1-D case by hand", "[samples]") {
  Rng rng(7);
  const Mat<double> x = rng.normal_matrix<double>(3, 500);
  const Mat<double> theta = random_directions(3, 64, 11);
  CHECK((theta.colwise().norm().array() - 1).abs().maxCoeff() < 1e-15);
  CHECK(sliced_w2(x, x, theta) == 0);
  // A shifted copy: each projection is shifted by theta . m, so SW2^2 = mean_l (theta_l . m)^2.
  Vec<double> m(3);
  m << 0.3, -0.2, 0.5;
  const Mat<double> shifted = x.colwise() + m;
  const double expected = std::sqrt((theta.transpose() * m).squaredNorm() / 64);
  CHECK(sliced_w2(x, shifted, theta) == Approx(expected).epsilon(1e-13));
  // Over many directions, E (theta . m)^2 = |m|^2 / d for theta uniform on the sphere.
  const Mat<double> many = random_directions(3, 20000, 12);
  CHECK(sliced_w2(x, shifted, many) == Approx(m.norm() / std::sqrt(3.0)).epsilon(0.02));
  // 1-D: {0, 1, 2} against {4, 0, 2}: sorted pairs (0,0), (1,2), (2,4), W2^2 = 5/3.
  Mat<double> a(1, 3), b(1, 3), one(1, 1);
  a << 0, 1, 2;
  b << 4, 0, 2;
  one << -1;
  CHECK(sliced_w2(a, b, one) == Approx(std::sqrt(5.0 / 3)).epsilon(1e-15));
  CHECK_THROWS_WITH(sliced_w2(a, Mat<double>(x.leftCols(3)), theta),
                    Catch::Contains("one dimension"));
  CHECK_THROWS_WITH(sliced_w2(x, Mat<double>(x.leftCols(3)), theta), Catch::Contains("one size"));
}

TEST_CASE("data sets: moments and support of two-moons, checkerboard and swiss-roll", "[samples]") {
  const int n = 200000;
  const double pi = 3.14159265358979323846;
  auto moments = [&](const std::string& name, double noise, double scale) {
    const Dataset d = Dataset::parse(
        {{"type", "dataset"}, {"name", name}, {"noise", noise}, {"scale", scale}}, "target");
    Rng rng(5);
    const Mat<double> x = d.sample<double>(n, rng);
    const Vec<double> mean = x.rowwise().mean();
    const Vec<double> second = x.cwiseProduct(x).rowwise().mean();
    return std::make_tuple(x, mean, second);
  };
  // Tolerances are 4 standard errors of the sample means at n = 2e5.
  {  // two-moons: E x = E y = 0; E x^2 = 3/4 + noise^2, E y^2 = 9/16 - 1/pi + noise^2 (the
     // noise 0.3 is large enough that a wrong noise shows: 0.09 against SEs of 2e-3).
    const auto [x, mean, second] = moments("two-moons", 0.3, 1.0);
    CHECK(std::abs(mean(0)) < 8e-3);
    CHECK(std::abs(mean(1)) < 8e-3);
    CHECK(second(0) == Approx(0.75 + 0.09).margin(8e-3));
    CHECK(second(1) == Approx(0.5625 - 1 / pi + 0.09).margin(8e-3));
  }
  {  // checkerboard, no noise: uniform on the dark squares, E x = 0, E x^2 = 4/3 (scaled by 2).
    // (x / 2 uniform on [-2, 2]: SE of the mean 5.2e-3, of the second moment 1.1e-2)
    const auto [x, mean, second] = moments("checkerboard", 0.0, 2.0);
    CHECK(std::abs(mean(0)) < 2.1e-2);
    CHECK(second(0) == Approx(4 * 4.0 / 3).margin(4.5e-2));
    CHECK(second(1) == Approx(4 * 4.0 / 3).margin(4.5e-2));
    bool dark = true, inside = true;
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const double u = x(0, j) / 2 + 2, v = x(1, j) / 2 + 2;  // board coordinates in [0, 4)
      inside = inside && u >= 0 && u < 4 && v >= 0 && v < 4;
      dark = dark && (static_cast<int>(u) + static_cast<int>(v)) % 2 == 0;
    }
    CHECK(inside);
    CHECK(dark);
  }
  {  // checkerboard with noise 0.5: E x^2 = 4/3 + 1/4.
    const auto [x, mean, second] = moments("checkerboard", 0.5, 1.0);
    CHECK(second(0) == Approx(4.0 / 3 + 0.25).margin(1.2e-2));
    CHECK(second(1) == Approx(4.0 / 3 + 0.25).margin(1.2e-2));
  }
  {  // swiss-roll: E x = 6 pi / (3 pi) / 5 = 0.4, E y = 2 / (3 pi) / 5; second moments by
     // the midpoint rule over a in [3 pi / 2, 9 pi / 2], plus noise^2.
    const auto [x, mean, second] = moments("swiss-roll", 0.2, 1.0);
    CHECK(mean(0) == Approx(0.4).margin(1.5e-2));
    CHECK(mean(1) == Approx(2 / (15 * pi)).margin(1.5e-2));
    double xx = 0, yy = 0;
    const int points = 100000;
    for (int k = 0; k < points; ++k) {
      const double a = 1.5 * pi + 3 * pi * (k + 0.5) / points;
      xx += std::pow(a * std::cos(a) / 5, 2) / points;
      yy += std::pow(a * std::sin(a) / 5, 2) / points;
    }
    CHECK(second(0) == Approx(xx + 0.04).margin(2e-2));
    CHECK(second(1) == Approx(yy + 0.04).margin(2e-2));
  }
  CHECK_THROWS_WITH(Dataset::parse({{"type", "dataset"}, {"name", "moons"}}, "target"),
                    Catch::Contains("target.name"));
  CHECK_THROWS_WITH(
      Dataset::parse({{"type", "dataset"}, {"name", "two-moons"}, {"noise", -1}}, "target"),
      Catch::Contains("target.noise"));
  CHECK_THROWS_WITH(
      Dataset::parse({{"type", "dataset"}, {"name", "two-moons"}, {"scale", 0}}, "target"),
      Catch::Contains("target.scale"));
}

TEST_CASE("a data set's marginal: mean alpha m, second moment alpha^2 E x^2 + sigma^2",
          "[samples]") {
  const auto data = DataSource<double>::from_config(
      {{"type", "dataset"}, {"name", "checkerboard"}, {"noise", 0.0}}, "target");
  CHECK(data.mixture() == nullptr);
  CHECK(data.dim() == 2);
  const auto sde = make_sde<double>({{"type", "vp-linear"}}, 2, "sde");
  const auto& vp = dynamic_cast<const ScalarSde<double>&>(*sde);
  const double t = 0.4, alpha = vp.alpha(t), sigma = vp.sigma(t);
  Rng rng(9);
  const Mat<double> x = data.sample_marginal(*sde, t, 200000, rng);
  const Vec<double> second = x.cwiseProduct(x).rowwise().mean();
  CHECK(std::abs(x.row(0).mean()) < 1.2e-2);  // 4 standard errors at n = 2e5
  CHECK(second(0) == Approx(alpha * alpha * 4.0 / 3 + sigma * sigma).margin(1.2e-2));
  CHECK(second(1) == Approx(alpha * alpha * 4.0 / 3 + sigma * sigma).margin(1.2e-2));
  // CLD: the state is (x, v); the data set gives the positions, the velocities start at
  // N(0, gamma M) (the kernel's own initial covariance).
  const auto cld = make_sde<double>({{"type", "cld"}}, 2, "sde");
  const Mat<double> u = data.sample_marginal(*cld, 1e-6, 200000, rng);
  CHECK(u.rows() == 4);
  CHECK(u.topRows(2).cwiseAbs().maxCoeff() <= 2.001);
  // Velocities: N(0, gamma M) = N(0, 0.01) at t -> 0 (defaults gamma 0.04, M 0.25).
  CHECK(u.bottomRows(2).cwiseProduct(u.bottomRows(2)).mean() == Approx(0.01).margin(2e-4));
}

TEST_CASE("the mixture's log-density by hand", "[samples]") {
  Vec<double> w(2), mu(1), var(1);
  w << 0.25, 0.75;
  Mat<double> means(1, 2), diag(1, 2);
  means << -1, 2;
  diag << 0.5, 2.0;
  const auto g = GaussianMixture<double>::gmm_diagonal(w, means, diag);
  Mat<double> x(1, 3);
  x << -1.2, 0.3, 4;
  const Vec<double> got = g.log_density(x);
  const double pi = 3.14159265358979323846;
  for (int j = 0; j < 3; ++j) {
    auto normal = [&](double m, double v) {
      return std::exp(-(x(0, j) - m) * (x(0, j) - m) / (2 * v)) / std::sqrt(2 * pi * v);
    };
    CHECK(got(j) == Approx(std::log(0.25 * normal(-1, 0.5) + 0.75 * normal(2, 2))).epsilon(1e-14));
  }
  CHECK_FALSE(GaussianMixture<double>::dirac(Vec<double>::Zero(2)).has_density());
  // A full 2-D covariance: against the explicit formula with the inverse and determinant.
  Mat<double> cov(2, 2), m2(2, 1);
  cov << 0.5, 0.2, 0.2, 0.35;
  m2 << 0.3, -0.4;
  const auto full = GaussianMixture<double>::gaussian(m2.col(0), cov);
  Mat<double> y(2, 2);
  y << 0.1, -1.0, 0.7, 0.2;
  const Vec<double> got2 = full.log_density(y);
  for (int j = 0; j < 2; ++j) {
    const Vec<double> r = y.col(j) - m2.col(0);
    const double quad = r.dot(cov.inverse() * r);
    CHECK(
        got2(j) ==
        Approx(-0.5 * quad - 0.5 * std::log(cov.determinant()) - std::log(2 * pi)).epsilon(1e-14));
  }
}

namespace {

// A sample run on the headline-like 2-D mixture with the analytic score.
json sample_config() {
  json c = tiny_config();
  c["name"] = "tiny_sample";
  c["kind"] = "sample";
  c["target"] = {{"type", "gmm"},
                 {"weights", {0.4, 0.6}},
                 {"means", {{-1.0, 0.5}, {1.0, -0.5}}},
                 {"diag_covs", {{0.2, 0.3}, {0.3, 0.2}}}};
  c["init"] = {{"count", 1500}, {"seed", 2}};
  c["solvers"] = {"ddim", "dpm-solver-2", "ddpm"};
  c["nfe"] = {4, 256};
  c["projections"] = 64;
  c["replicates"] = 4;
  return c;
}

}  // namespace

TEST_CASE("kind sample: distances fall to the floor and the file reproduces them", "[samples]") {
  const ExperimentResult r = run_experiment(parse_experiment(sample_config()), {});
  REQUIRE(r.cells_done == 6);
  CHECK(r.sw2_floor > 0.01);
  CHECK(r.sw2_floor_spread > 0);
  CHECK(r.sw2_floor < 0.2);
  CHECK(std::isfinite(r.data_mean_log_p0));
  for (const SolverRun& run : r.solvers) {
    INFO(run.label);
    CHECK(std::isnan(run.fit.order));
    CHECK(run.cells[0].sw2 > 3 * r.sw2_floor);    // 4 evaluations: far from the data
    CHECK(run.cells[1].sw2 < 1.6 * r.sw2_floor);  // 256: within the sampling noise
    CHECK(std::abs(run.cells[1].mean_log_p0 - r.data_mean_log_p0) < 0.1);
  }
  const std::string out = temp_path("sample_run.h5");
  write_result(r, out);
  const h5::File f = h5::File::open(out);
  CHECK_FALSE(f.exists("/reference"));
  CHECK(f.read_double("/data", "sw2_floor") == r.sw2_floor);
  std::vector<size_t> shape;
  const std::vector<double> theta_rows = f.read("/data/directions", &shape);
  REQUIRE(shape == std::vector<size_t>{64, 2});
  const std::vector<double> data = f.read("/data/x", &shape);
  REQUIRE(shape == std::vector<size_t>{4, 1500, 2});
  CHECK(f.read_double("/data", "replicates") == 4);
  const Mat<double> theta = Eigen::Map<const Mat<double>>(theta_rows.data(), 2, 64);
  const std::vector<double> x = f.read("/solvers/dpm-solver-2/x", &shape);
  REQUIRE(shape == std::vector<size_t>{2, 1500, 2});
  const Mat<double> last = Eigen::Map<const Mat<double>>(x.data() + 3000, 2, 1500);
  // sw2 is the root mean square over the replicates of the distance to each fresh sample.
  double square = 0;
  for (int r = 0; r < 4; ++r) {
    const Mat<double> fresh = Eigen::Map<const Mat<double>>(data.data() + r * 3000, 2, 1500);
    square += std::pow(sliced_w2(last, fresh, theta), 2) / 4;
  }
  CHECK(std::sqrt(square) == Approx(f.read("/solvers/dpm-solver-2/sw2")[1]).epsilon(1e-14));
  CHECK(f.read("/solvers/ddim/mean_log_p0")[1] == r.solvers[0].cells[1].mean_log_p0);
  std::filesystem::remove(out);
}

TEST_CASE("a data set target needs a learned model and a kind with cells", "[samples]") {
  json c = sample_config();
  c["target"] = {{"type", "dataset"}, {"name", "two-moons"}};
  CHECK_THROWS_WITH(parse_experiment(c),
                    Catch::Contains("denoiser.type") && Catch::Contains("sample-only data set"));
  c["denoiser"] = {{"type", "perturbed"}, {"delta", 0.1}};
  CHECK_THROWS_WITH(parse_experiment(c), Catch::Contains("denoiser.type"));
  json k = {{"name", "k"},
            {"kind", "kernel"},
            {"sde", {{"type", "vp-linear"}}},
            {"target", {{"type", "dataset"}, {"name", "two-moons"}}},
            {"times", {0.5}}};
  k["denoiser"] = {{"type", "mlp"}, {"path", "m.h5"}};
  CHECK_THROWS_WITH(parse_experiment(k), Catch::Contains("kind \"kernel\" needs a mixture"));
  CHECK_THROWS_WITH(make_target<double>(c["target"], "target"), Catch::Contains("target.type"));
  c["projections"] = 0;
  c["denoiser"] = {{"type", "analytic"}};
  c["target"] = sample_config()["target"];
  CHECK_THROWS_WITH(parse_experiment(c), Catch::Contains("projections"));
  c["projections"] = 8;
  c["replicates"] = 0;
  CHECK_THROWS_WITH(parse_experiment(c), Catch::Contains("replicates"));
  c.erase("replicates");
  c["kind"] = "convergence";
  CHECK_THROWS_WITH(parse_experiment(c),
                    Catch::Contains("applies to kind \"sample\" or \"guidance\" only"));
}
