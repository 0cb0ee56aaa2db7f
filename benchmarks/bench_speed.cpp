// Benchmarks (not tests) of pflow's speed, with Google Benchmark; scripts/bench runs them and
// prints the README's tables (README "Speed").
//
//   reference/<type>/threads:<n>   the headline's reference: the Bulirsch-Stoer solve of the
//                                  PF-ODE of the 2-D three-component mixture under vp-linear,
//                                  16 particles of N(0, I) from t = 1 to 1e-3, in float128
//                                  (tolerance 1e-28) or mp50 (1e-32), on n threads
//   mixture_score/d/K/threads      the exact score of a K-component mixture with full
//                                  covariances in d dimensions at N = 10,000 particles (double),
//                                  the particles in `threads` equal parts on as many threads;
//                                  GFLOP/s counted as the products the kernel makes: per
//                                  component the precision P_k = A_k^T A_k (d^3 per part, a
//                                  symmetric product) and P_k (x - m_k) (2 d^2 N): K (2 d^2 N +
//                                  d^3 parts); the time also covers the quadratic forms, the
//                                  softmax and the responsibility-weighted sum
//   eigen_gemm/d/threads           Eigen's own product of a d x d and a d x N matrix (2 d^2 N
//                                  flops), the columns in `threads` parts on as many threads: the
//                                  yardstick of the score kernel
//
// Every benchmark reports real time; Google Benchmark repeats each until its timing settles
// (--benchmark_repetitions and --benchmark_min_time tune it).
#include <benchmark/benchmark.h>

#include <vector>

#include "bench_problems.hpp"
#include "pflow/core/allocator.hpp"
#include "pflow/core/threads.hpp"
#include "pflow/flow/pf_ode.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/target/marginal.hpp"
#include "pflow/target/random.hpp"

namespace {

using namespace pflow;
using namespace pflow::bench;

template <class R>
void reference(benchmark::State& state) {
  const auto sde = make_sde<R>(vp_linear, 2, "sde");
  const auto data = make_target<R>(headline_mixture);
  const Mat<R> x = normal_states(2, 16, 1).cast<R>();
  ReferenceStats stats;
  stats.threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
    const Mat<R> out =
        reference_flow<R>(*sde, data, x, R(1), ratio<R>(1, 1000), reference_tolerance<R>(), &stats);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["particles"] = 16;
  state.counters["rhs_per_particle"] =
      static_cast<double>(stats.evaluations) / (16.0 * static_cast<double>(state.iterations()));
}

constexpr Eigen::Index score_particles = 10000;

// The columns [begin, end) of part p of `parts` equal parts of N.
std::pair<Eigen::Index, Eigen::Index> part(size_t p, int parts) {
  const auto k = static_cast<Eigen::Index>(p);
  return {k * score_particles / parts, (k + 1) * score_particles / parts};
}

void mixture_score(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0)), k = static_cast<int>(state.range(1));
  const int threads = static_cast<int>(state.range(2));
  const auto sde = make_sde<double>(vp_linear, d, "sde");
  const auto data = make_target<double>(random_mixture(d, k));
  const Marginal<double> marginal(*sde, data, 0.5);
  const Mat<double> x = normal_states(d, score_particles, 3);
  // The kernel's input and output are whole matrices (as a solver's states are): the parts are
  // made before timing, so the loop times Marginal::score alone.
  std::vector<Mat<double>> parts(static_cast<size_t>(threads)), out(parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    const auto [begin, end] = part(p, threads);
    parts[p] = x.middleCols(begin, end - begin);
  }
  for (auto _ : state) {
    parallel_for_indices(static_cast<size_t>(threads), threads, [&](size_t p) {
      out[p] = marginal.score(parts[p]);
      return true;
    });
    benchmark::DoNotOptimize(out[0].data());
  }
  const double n = static_cast<double>(score_particles);
  const double flops = k * (2.0 * d * d * n + 1.0 * d * d * d * threads);
  state.counters["GFLOP"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void eigen_gemm(benchmark::State& state) {
  const auto d = static_cast<Eigen::Index>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const Mat<double> a = normal_states(d, d, 4), x = normal_states(d, score_particles, 5);
  Mat<double> out(d, score_particles);
  for (auto _ : state) {
    parallel_for_indices(static_cast<size_t>(threads), threads, [&](size_t p) {
      const auto [begin, end] = part(p, threads);
      out.middleCols(begin, end - begin).noalias() = a * x.middleCols(begin, end - begin);
      return true;
    });
    benchmark::DoNotOptimize(out.data());
  }
  const double flops = 2.0 * static_cast<double>(d * d * score_particles);
  state.counters["GFLOP"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK_TEMPLATE(reference, f128)
    ->Name("reference/float128")
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(reference, mp50)
    ->Name("reference/mp50")
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK(mixture_score)
    ->ArgNames({"d", "K", "threads"})
    ->ArgsProduct({{16, 64, 256}, {1, 8}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(eigen_gemm)
    ->ArgNames({"d", "threads"})
    ->ArgsProduct({{16, 64, 256}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

int main(int argc, char** argv) {
  pflow::tune_allocator();  // as the pflow program does
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
