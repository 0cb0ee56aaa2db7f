// Benchmark (not a test): one sampler solve on a random mixture, timed, with its problem written
// to HDF5 so that scripts/bench_peer.py can run the same solve in PyTorch and compare (README
// "Speed": against PyTorch). scripts/bench runs both over the README's table.
//
//   build/pflow_bench_sampler --n 10000 --d 16 --k 8 [--threads 1] [--steps 10] [--reps 3]
//                             [--reference 64] [--out FILE.h5]
//
// The problem: vp-linear (0.1, 20), the random mixture of bench_problems.hpp (d dimensions, k
// components, full covariances), n standard normal states at t = 1, dpm-solver++-2m on the logsnr
// grid of `steps` steps to t = 1e-3 with the exact score. The time is the best of `reps` solves
// after `warmup` (default 1) untimed solves; it covers the solve alone (grid, model and states made
// before). The file holds weights [K], means [K, d], covs [K, d, d], grid [steps + 1], x_start and
// x_end [n, d], and the time as the attribute /@seconds. With --reference M (default 64) it also
// holds x_reference [M, d]: the same solve of the first M states in float128 (34 digits; the grid,
// data and states are the double values, exactly), the rounding-free answer both programs' final
// states are measured against (scripts/bench_peer.py reports each side's error). With
// --reference-at J it solves only state J in float128 and writes x_reference_at [1, d]:
// scripts/bench asks for the state where the two programs' final states differ most.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "bench_problems.hpp"
#include "pflow/core/allocator.hpp"
#include "pflow/core/errors.hpp"
#include "pflow/experiment/h5.hpp"
#include "pflow/experiment/kind_base.hpp"  // row_major
#include "pflow/sampler/registry.hpp"
#include "pflow/sampler/solver.hpp"
#include "pflow/sampler/time_grid.hpp"
#include "pflow/sde/factory.hpp"

namespace {

using namespace pflow;
using namespace pflow::bench;

std::vector<double> flatten(const json& nested) {
  std::vector<double> out;
  if (nested.is_number()) return {nested.get<double>()};
  for (const auto& item : nested) {
    const auto part = flatten(item);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

// The benchmark's solve in float128, from the same double grid, data and states.
Mat<double> float128_solve(const json& mixture, const std::vector<double>& grid,
                           const Mat<double>& x) {
  const auto sde = make_sde<f128>(vp_linear, static_cast<int>(x.rows()), "sde");
  const auto data = make_target<f128>(mixture);
  const AnalyticDenoiser<f128> model(*sde, data);
  const std::vector<f128> grid_q(grid.begin(), grid.end());
  const auto solver = make_solver<f128>(json("dpm-solver++-2m"));
  Problem<f128> problem;
  problem.sde = sde.get();
  problem.model = &model;
  problem.threads = 1;
  return solve(*solver, problem, grid_q, Mat<f128>(x.cast<f128>())).x.cast<double>();
}

}  // namespace

int main(int argc, char** argv) {
  tune_allocator();  // as the pflow program does
  CLI::App app{"pflow_bench_sampler: one dpm-solver++-2m solve on a random mixture, timed"};
  int n = 10000, d = 16, k = 8, threads = 1, steps = 10, reps = 3, warmup = 1, reference = 64;
  std::string out;
  app.add_option("--n", n, "particles")->check(CLI::Range(1, 10000000))->capture_default_str();
  app.add_option("--d", d, "dimension")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--k", k, "mixture components")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--threads", threads, "threads")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--steps", steps, "solver steps")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--reps", reps, "timed solves")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--warmup", warmup, "untimed solves first")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_option("--reference", reference, "states solved again in float128 (0: none)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  int reference_at = -1;
  app.add_option("--reference-at", reference_at,
                 "only solve state J (0-based) in float128 and write it to --out as "
                 "x_reference_at [1, d] (no timed solves): the reference at the particle where "
                 "the two programs differ most")
      ->check(CLI::Range(0, 10000000 - 1));
  app.add_option("--out", out, "HDF5 file of the problem and the result");
  CLI11_PARSE(app, argc, argv);
  try {
    const json mixture = random_mixture(d, k);
    const auto sde = make_sde<double>(vp_linear, d, "sde");
    const auto data = make_target<double>(mixture);
    const AnalyticDenoiser<double> model(*sde, data);
    GridSpec spec;
    spec.kind = "logsnr";
    const auto grid = make_time_grid<double>(*sde, spec, 1.0, 1e-3, steps);
    const Mat<double> x = normal_states(d, n, 3);
    if (reference_at >= 0) {
      if (reference_at >= n || out.empty())
        throw InputError("--reference-at", std::to_string(reference_at),
                         "needs a state index below --n and an --out file");
      h5::File f = h5::File::create(out);
      f.dataset("/x_reference_at", {1, static_cast<size_t>(d)},
                row_major(float128_solve(mixture, grid, x.col(reference_at))));
      f.attribute("/", "index", static_cast<double>(reference_at));
      f.save();
      return 0;
    }
    const auto solver = make_solver<double>(json("dpm-solver++-2m"));
    Problem<double> problem;
    problem.sde = sde.get();
    problem.model = &model;
    problem.threads = threads;
    SolveResult<double> result;
    for (int w = 0; w < warmup; ++w) result = solve(*solver, problem, grid, x);
    double best = 1e300;
    for (int r = 0; r < reps; ++r) {
      const auto start = std::chrono::steady_clock::now();
      result = solve(*solver, problem, grid, x);
      best = std::min(
          best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::printf("pflow dpm-solver++-2m: n %d, d %d, K %d, %d threads, %d steps (nfe %ld): %.6f s\n",
                n, d, k, threads, steps, result.nfe, best);
    if (!out.empty()) {
      h5::File f = h5::File::create(out);
      const auto kk = static_cast<size_t>(k), dd = static_cast<size_t>(d),
                 nn = static_cast<size_t>(n);
      f.dataset("/weights", {kk}, flatten(mixture["weights"]));
      f.dataset("/means", {kk, dd}, flatten(mixture["means"]));
      f.dataset("/covs", {kk, dd, dd}, flatten(mixture["covs"]));
      f.dataset("/grid", {grid.size()}, grid);
      f.dataset("/x_start", {nn, dd}, row_major(x));
      f.dataset("/x_end", {nn, dd}, row_major(result.x));
      if (reference > 0) {
        const int m = std::min(reference, n);
        f.dataset("/x_reference", {static_cast<size_t>(m), dd},
                  row_major(float128_solve(mixture, grid, x.leftCols(m))));
      }
      f.attribute("/", "seconds", best);
      f.attribute("/", "threads", static_cast<double>(threads));
      f.save();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pflow_bench_sampler: %s\n", e.what());
    return 2;
  }
  return 0;
}
