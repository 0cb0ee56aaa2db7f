// The references of mixture runs (README "References"): the Bulirsch-Stoer solve of the PF-ODE
// in float128 (what double runs use) against the same solve in mp50, thread-count invariance of
// both, and how a run's config chooses between them. Threads inside a cell: a many-particle solve
// split into chunks gives the same digits for any thread count.
#include <cstring>

#include "helpers.hpp"
#include "pflow/core/simd.hpp"
#include "pflow/experiment/config.hpp"
#include "pflow/experiment/run.hpp"
#include "pflow/flow/pf_ode.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sampler/time_grid.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/target/random.hpp"

using namespace pflow;
using namespace pflow::testing;
using json = nlohmann::json;

namespace {

const json vp_linear = {{"type", "vp-linear"}, {"beta_min", 0.1}, {"beta_max", 20.0}};

// n states of the prior N(0, I) at t = 1 (a fixed seed), as the headline's.
Mat<double> prior_states(Eigen::Index n) {
  Rng rng(11);
  return rng.normal_matrix<double>(2, n);
}

template <class R>
Mat<R> headline_reference(const Mat<double>& x, int threads) {
  const auto sde = make_sde<R>(vp_linear, 2, "sde");
  const auto data = make_target<R>(headline_mixture());
  ReferenceStats stats;
  stats.threads = threads;
  return reference_flow<R>(*sde, data, Mat<R>(x.cast<R>()), R(1), ratio<R>(1, 1000),
                           reference_tolerance<R>(), &stats);
}

json tiny_run(const std::string& reference, const std::string& precision = "double") {
  return {{"name", "reference_choice"},
          {"kind", "convergence"},
          {"sde", vp_linear},
          {"target", headline_mixture()},
          {"time", {{"t_start", 1.0}, {"t_end", 1e-3}, {"grid", "logsnr"}}},
          {"init", {{"count", 2}, {"seed", 1}}},
          {"solvers", {"ddim"}},
          {"nfe", {8, 16}},
          {"precision", precision},
          {"reference", reference}};
}

}  // namespace

// The float128 reference of the headline problem is the mp50 one to 1e-25 (measured: ~1e-28), so
// that double runs, whose smallest errors are ~1e-16, see no difference.
TEST_CASE("float128 references agree with the 50-digit references to 1e-25",
          "[reference][float128][mp50-long]") {
  const Mat<double> x = prior_states(3);
  const Mat<f128> quad = headline_reference<f128>(x, 2);
  const Mat<mp50> fifty = headline_reference<mp50>(x, 2);
  const double diff = to_double(mp50((quad.cast<mp50>() - fifty).cwiseAbs().maxCoeff()));
  INFO("max |float128 - mp50| = " << diff);
  CHECK(diff < 1e-25);
  CHECK(diff > 0);  // two different computations
}

TEST_CASE("references are bit-identical for any thread count", "[reference][float128]") {
  const Mat<double> x = prior_states(5);
  const Mat<f128> one = headline_reference<f128>(x, 1);
  for (int threads : {2, 3, 8}) {
    INFO(threads << " threads");
    CHECK((headline_reference<f128>(x, threads).array() == one.array()).all());
  }
}

TEST_CASE("a run's config chooses its reference", "[reference][float128]") {
  const ExperimentResult quad = run_experiment(parse_experiment(tiny_run("auto")), {});
  CHECK(quad.reference_method == "Bulirsch-Stoer PF-ODE solve (float128, 34 digits)");
  CHECK(quad.reference_tolerance == 1e-28);
  const ExperimentResult forced = run_experiment(parse_experiment(tiny_run("float128")), {});
  CHECK(forced.reference_method == quad.reference_method);
  CHECK(forced.reference == quad.reference);
  // A float128 run is measured against mp50.
  const ExperimentResult own = run_experiment(parse_experiment(tiny_run("auto", "float128")), {});
  CHECK(own.reference_method == "Bulirsch-Stoer PF-ODE solve (50 digits)");
  CHECK(own.reference_tolerance == 1e-32);
  // Rounded to double, the two references are the same numbers.
  for (size_t i = 0; i < quad.reference.size(); ++i)
    CHECK(quad.reference[i] == Approx(own.reference[i]).epsilon(1e-15).margin(1e-300));
  // float128 cells: errors against the mp50 reference far below double's round-off.
  REQUIRE(own.solvers.size() == 1);
  CHECK(own.solvers[0].cells[1].err_max > 1e-6);  // ddim's own error at NFE 16
  CHECK_THROWS_WITH(parse_experiment(tiny_run("float128", "mp50")),
                    Catch::Contains("reference = float128") &&
                        Catch::Contains("no more precise than precision \"mp50\""));
}

TEST_CASE("a many-particle solve is bit-identical for any thread count", "[threads]") {
  const auto sde = make_sde<double>(vp_linear, 2, "sde");
  const auto data = make_target<double>(headline_mixture());
  const AnalyticDenoiser<double> model(*sde, data);
  const Mat<double> x = prior_states(2500);  // three chunks of ~833 particles
  const auto grid = make_time_grid<double>(*sde, grid_named("logsnr"), 1.0, 1e-3, 12);
  for (const char* name : {"ddim", "dpm-solver++-3m", "heun-edm"}) {
    const auto solver = make_solver<double>(json(name));
    Problem<double> problem;
    problem.sde = sde.get();
    problem.model = &model;
    REQUIRE(solve_chunks(solver->info(), problem, x.cols()) == 3);
    const SolveResult<double> one = solve(*solver, problem, grid, x);
    for (int threads : {2, 3, 5}) {
      INFO(name << " on " << threads << " threads");
      problem.threads = threads;
      const SolveResult<double> many = solve(*solver, problem, grid, x);
      CHECK((many.x.array() == one.x.array()).all());
      CHECK(many.nfe == one.nfe);
      CHECK(many.steps == one.steps);
    }
    // Each chunk is the solve of its own columns.
    const SolveResult<double> last = solve(*solver, problem, grid, Mat<double>(x.rightCols(834)));
    CHECK((last.x.array() == one.x.rightCols(834).array()).all());
    CHECK(one.nfe == last.nfe);
  }
  // Stochastic solvers draw the noise of the whole batch: one chunk.
  Problem<double> problem;
  problem.sde = sde.get();
  problem.model = &model;
  CHECK(solve_chunks(make_solver<double>(json("euler-maruyama"))->info(), problem, 2500) == 1);
}

// The AVX-512 kernels (core/simd.hpp: the mixture softmax, the model-output conversion, the
// finiteness check) change no bit of a solve: every solver in the registry, on the headline's
// mixture (d = 2, K = 3) and on a 16-dimensional K = 4 mixture (the precision form), with the
// kernels and with Eigen's code. (Stochastic solvers draw the same noise both ways.)
TEST_CASE("every solver's states are bit-identical with the AVX-512 kernels and without",
          "[threads]") {
  if (!pflow::testing::simd_to_compare()) return;
  const pflow::testing::SimdRestore restore;
  Rng rng(11);
  std::vector<double> weights{0.1, 0.2, 0.3, 0.4};
  std::vector<Vec<double>> means;
  std::vector<Mat<double>> covs;
  for (int k = 0; k < 4; ++k) {
    const Mat<double> a = rng.normal_matrix<double>(16, 16);
    covs.push_back(a * a.transpose() / 16 + 0.05 * Mat<double>::Identity(16, 16));
    means.push_back(2 * rng.normal_matrix<double>(16, 1));
  }
  struct Case {
    int dim;
    json target;
    Eigen::Index n;
  };
  for (const Case& c :
       {Case{2, headline_mixture(), 301}, Case{16, gmm_config(weights, means, covs), 40}}) {
    const auto sde = make_sde<double>(vp_linear, c.dim, "sde");
    const auto data = make_target<double>(c.target);
    const AnalyticDenoiser<double> model(*sde, data);
    const Mat<double> x = rng.normal_matrix<double>(c.dim, c.n);
    const auto grid = make_time_grid<double>(*sde, grid_named("logsnr"), 1.0, 1e-3, 8);
    Problem<double> problem;
    problem.sde = sde.get();
    problem.model = &model;
    int compared = 0, skipped = 0;
    for (const auto& record : solver_table<double>()) {
      const auto solver = make_solver<double>(json(record.name));
      CAPTURE(c.dim, record.name);
      kernels::enable_simd(true);
      SolveResult<double> fast;
      try {
        fast = solve(*solver, problem, grid, x);
      } catch (const InputError&) {  // a solver this grid does not suit (abm: uneven steps)
        ++skipped;
        continue;
      }
      kernels::enable_simd(false);
      const SolveResult<double> portable = solve(*solver, problem, grid, x);
      REQUIRE(fast.x.allFinite());
      CHECK(std::memcmp(fast.x.data(), portable.x.data(), sizeof(double) * x.size()) == 0);
      CHECK(fast.nfe == portable.nfe);
      ++compared;
    }
    CHECK(compared >= 29);
    CHECK(skipped <= 2);
  }
}

TEST_CASE("a run's cells are the same for any thread count", "[threads]") {
  json config = tiny_run("auto");
  config["target"] = {
      {"type", "gaussian"}, {"mean", {0.5, -0.3}}, {"cov", {{0.6, 0.2}, {0.2, 0.4}}}};
  config["init"]["count"] = 2100;
  config["solvers"] = {"ddim", "dpm-solver++-2m", "rk4"};
  const ExperimentConfig parsed = parse_experiment(config);
  RunOptions options;
  const ExperimentResult one = run_experiment(parsed, options);
  CHECK(one.reference_method == "exact flow map (50 digits)");
  options.threads = 2;
  const ExperimentResult two = run_experiment(parsed, options);
  options.threads = 3;
  const ExperimentResult three = run_experiment(parsed, options);
  REQUIRE(one.solvers.size() == 3);
  for (size_t s = 0; s < one.solvers.size(); ++s)
    for (size_t c = 0; c < one.solvers[s].cells.size(); ++c) {
      INFO(one.solvers[s].label << " cell " << c);
      CHECK(two.solvers[s].cells[c].x == one.solvers[s].cells[c].x);
      CHECK(three.solvers[s].cells[c].x == one.solvers[s].cells[c].x);
      CHECK(three.solvers[s].cells[c].err_max == one.solvers[s].cells[c].err_max);
      CHECK(one.solvers[s].cells[c].err_max > 1e-6);
    }
}
