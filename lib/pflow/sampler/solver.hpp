// The solver concept and the one driver (docs/NOTES.md sec. 9).
//
// A solver integrates the probability-flow ODE (or samples the reverse SDE) over a time grid
// t_0 = t_start > ... > t_N = t_end, on a batch of particles (columns of a D x n matrix). A
// deterministic solver also runs on an increasing grid, data -> noise (encoding, docs/NOTES.md
// sec. 13): its update formulas hold for either sign of the step. It sees
// the problem only through a SolveContext, which evaluates the model, counts every evaluation
// (NFE: one call on the whole batch is one evaluation, as for a network) and checks each new state
// for non-finite values. Every solver declares its order and its reference.
//
//   auto solver = make_solver<double>("dpm-solver++-3m");
//   Problem<double> problem{&sde, &denoiser};
//   SolveResult<double> r = solve(*solver, problem, grid, x_start);  // r.x, r.nfe, r.wall_s
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "pflow/core/simd.hpp"
#include "pflow/core/threads.hpp"
#include "pflow/sampler/brownian.hpp"
#include "pflow/sampler/denoiser.hpp"
#include "pflow/target/random.hpp"

namespace pflow {

struct SolverInfo {
  std::string name;        // command-line name
  std::string label;       // name with its parameters, unique within a run
  int order = 1;           // declared order of convergence (strong order for stochastic solvers)
  std::string reference;   // paper and equation
  int evals_per_step = 1;  // NFE per step; 0 for adaptive solvers
  bool stochastic = false;
  bool adaptive = false;
  bool scalar_sde_only = false;  // needs alpha, sigma, lambda (not CLD, blurring, linear)
  int weak_order = 0;            // stochastic solvers: declared weak order
  std::string family;            // of its record: exponential, multistep, matrix, odeint, ...
  std::string uniform_grid;      // the time grid its weights need ("" = any; solver_record.hpp)
};

// What a solver integrates. exact_flow is an optional oracle x_s -> x_t (the exact map for
// Gaussian data, a 50-digit solve otherwise), used only by the "exact" multistep start.
template <class Scalar>
struct Problem {
  const LinearSde<Scalar>* sde = nullptr;
  const Denoiser<Scalar>* model = nullptr;
  std::function<Mat<Scalar>(const Mat<Scalar>&, const Scalar&, const Scalar&)> exact_flow;
  std::uint64_t seed = 0;  // noise of stochastic solvers
  // Called with (step, t, x) after every step of a fixed-step solver (trajectories).
  std::function<void(int, const Scalar&, const Mat<Scalar>&)> on_step;
  int brownian_levels = 12;  // the fixed Brownian path has 2^levels intervals
  // Threads for the particles of one solve (solve_in_chunks): results are the same for any count.
  int threads = 1;
  // All particles as one batch, never split into chunks: for a model that is called from one
  // thread and gains from large batches (a Python model: the Python module sets it).
  bool one_batch = false;
  // The solve runs this many times (the same arithmetic, so the same result) and reports the
  // best wall time: one-off costs (first-touch memory, a second thread's arena) fall out. Not
  // with on_step, which would see every step again.
  int timing_repeats = 1;
};

// Where this thread's solve is evaluating its model: the solver, the step (the number of steps
// it has completed) and t, set before each evaluation, so that a model that fails can be reported
// with them (a Python model's exception in the Python module).
struct ModelCallSite {
  const std::string* solver = nullptr;
  int step = 0;
  double t = 0;
};
inline ModelCallSite& model_call_site() {
  thread_local ModelCallSite site;
  return site;
}

template <class Scalar>
class SolveContext {
 public:
  SolveContext(const Problem<Scalar>& problem, std::string solver_name)
      : problem_(problem), solver_(std::move(solver_name)), rng_(problem.seed) {
    require(problem.sde != nullptr && problem.model != nullptr, "problem", solver_,
            "needs an SDE and a model");
    scalar_ = dynamic_cast<const ScalarSde<Scalar>*>(problem.sde);
  }
  const LinearSde<Scalar>& sde() const { return *problem_.sde; }
  const Denoiser<Scalar>& model() const { return *problem_.model; }
  bool has_scalar_sde() const { return scalar_ != nullptr; }
  const ScalarSde<Scalar>& scalar_sde() const {
    if (!scalar_)
      throw InputError("solver", solver_,
                       "needs a scalar SDE (alpha, sigma, lambda), not " + sde().name() +
                           "; use gddim or paddim for matrix SDEs");
    return *scalar_;
  }

  // One model evaluation on the whole batch: grad log p_t(x), D x n, converted from the model's
  // own output (docs/NOTES.md sec. 17).
  Mat<Scalar> score(const Mat<Scalar>& x, const Scalar& t) {
    ++nfe_;
    model_call_site() = {&solver_, steps_, to_double(t)};
    const Denoiser<Scalar>& m = model();
    if (m.output() == ModelOutput::score) return m.score(x, t);
    return convert_output(m.output(), ModelOutput::score, m.predict(x, t), x, scalar_, t);
  }
  // Scalar SDEs: eps and x0 straight from the model's output; from a score model eps = -sigma_t
  // score and x0 = (x + sigma_t^2 score) / alpha_t (docs/NOTES.md sec. 3).
  Mat<Scalar> eps(const Mat<Scalar>& x, const Scalar& t) {
    if (model().output() == ModelOutput::score) return -scalar_sde().sigma(t) * score(x, t);
    return prediction(ModelOutput::eps, x, t);
  }
  Mat<Scalar> x0(const Mat<Scalar>& x, const Scalar& t) {
    if (model().output() == ModelOutput::score) {
      const Scalar s = scalar_sde().sigma(t);
      return (x + s * s * score(x, t)) / scalar_sde().alpha(t);
    }
    return prediction(ModelOutput::x0, x, t);
  }
  // The probability-flow ODE's velocity dx/dt = F x - G G^T/2 score (flow matching's u for
  // scalar SDEs, taken straight from a velocity model).
  Mat<Scalar> velocity(const Mat<Scalar>& x, const Scalar& t) {
    if (model().output() != ModelOutput::score && scalar_ != nullptr)
      return prediction(ModelOutput::velocity, x, t);
    const Mat<Scalar> s = score(x, t);
    return sde().apply(sde().drift(t), x) - sde().apply(sde().diffusion(t), s) / 2;
  }
  // The oracle of the "exact" start.
  Mat<Scalar> exact_flow(const Mat<Scalar>& x, const Scalar& s, const Scalar& t) const {
    if (!problem_.exact_flow)
      throw InputError("start", "exact", "needs a reference flow, which this problem lacks");
    return problem_.exact_flow(x, s, t);
  }
  // The Brownian increment W(s) - W(t), s > t, for a step of a stochastic solver (rows x
  // cols). On a grid whose times lie on the fixed path's dyadic grid (time-uniform with 2^k
  // steps) it comes from that path, so that solves with different step counts share one
  // Brownian motion; otherwise it is sqrt(s - t) times fresh normals from the seeded stream.
  Mat<Scalar> brownian_increment(const Scalar& s, const Scalar& t, Eigen::Index rows,
                                 Eigen::Index cols) {
    using std::sqrt;
    if (!path_ && !grid_.empty())
      path_.emplace(problem_.seed, rows, cols, grid_.back(), grid_.front(),
                    problem_.brownian_levels);
    if (path_) {
      const auto a = path_->index(t), b = path_->index(s);
      if (a && b) return path_->increment(*a, *b);
    }
    return sqrt(s - t) * rng_.normal_matrix<Scalar>(rows, cols);
  }
  void set_grid(const std::vector<Scalar>& grid) { grid_ = grid; }
  // Eigen's allFinite() is a scalar loop: at N = 100, d = 64 it was a tenth of a step's
  // non-BLAS time. In double the AVX-512 kernel answers the same.
  static bool all_finite(const Mat<Scalar>& x) {
    if constexpr (std::is_same_v<Scalar, double>)
      if (kernels::have_simd()) return kernels::all_finite(x.data(), x.size());
    return x.allFinite();
  }
  // Called after every step: a non-finite state stops the solve where it appeared.
  void step_done(int step, const Scalar& t, const Mat<Scalar>& x) {
    ++steps_;
    if (!all_finite(x))
      throw NumericalError("solver " + solver_ + ": non-finite state at step " + to_text(step) +
                           " (t = " + to_text(t) + ")");
    if (problem_.on_step) problem_.on_step(step, t, x);
  }
  // Steps an adaptive solver took without reporting each.
  void add_steps(int n) { steps_ += n; }
  long nfe() const { return nfe_; }
  int steps() const { return steps_; }

 private:
  // One model evaluation in the parameterisation `kind` (scalar SDEs).
  Mat<Scalar> prediction(ModelOutput kind, const Mat<Scalar>& x, const Scalar& t) {
    ++nfe_;
    model_call_site() = {&solver_, steps_, to_double(t)};
    const Denoiser<Scalar>& m = model();
    return convert_output(m.output(), kind, m.predict(x, t), x, &scalar_sde(), t);
  }

  const Problem<Scalar>& problem_;
  std::string solver_;
  const ScalarSde<Scalar>* scalar_ = nullptr;
  Rng rng_;
  std::vector<Scalar> grid_;
  std::optional<BrownianPath<Scalar>> path_;
  long nfe_ = 0;
  int steps_ = 0;
};

template <class Scalar>
class Solver {
 public:
  explicit Solver(SolverInfo info) : info_(std::move(info)) {}
  virtual ~Solver() = default;
  const SolverInfo& info() const { return info_; }
  // Moves x (D x n) from grid.front() to grid.back() (a decreasing grid; or an increasing one
  // for a deterministic solver).
  virtual void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
                   Mat<Scalar>& x) const = 0;

 private:
  SolverInfo info_;
};

template <class Scalar>
struct SolveResult {
  Mat<Scalar> x;      // final states, D x n
  long nfe = 0;       // model evaluations
  int steps = 0;      // steps taken (accepted steps for adaptive solvers)
  double wall_s = 0;  // wall time
};

// Whether `info`'s solver can run on an increasing grid (data -> noise): every deterministic
// one; a stochastic solver samples the reverse SDE, which has no forward-time counterpart here.
inline bool runs_forwards(const SolverInfo& info) {
  return !info.stochastic;
}

// Particles per chunk of a solve split over threads (about: n particles make
// ceil(n / particle_chunk) chunks of equal size).
constexpr Eigen::Index particle_chunk = 1024;

// How many chunks the n particles of a solve are split into: one when the solve cannot be split
// (a stochastic solver draws its noise for the whole batch, an adaptive one controls its steps
// on the whole batch, a trajectory reports the whole state after every step) or should not be
// (problem.one_batch), else
// ceil(n / particle_chunk). It depends on n alone, never on the thread count, so that each
// particle's arithmetic, and with it the result, is the same for any number of threads.
template <class Scalar>
Eigen::Index solve_chunks(const SolverInfo& info, const Problem<Scalar>& problem, Eigen::Index n) {
  if (info.stochastic || info.adaptive || problem.on_step || problem.one_batch) return 1;
  return std::max<Eigen::Index>(1, (n + particle_chunk - 1) / particle_chunk);
}

// The driver: runs `solver` on `problem` over `grid` from x_start (D x n). The grid decreases
// (sampling, noise -> data) or, for a solver that runs_forwards, increases (encoding). The
// particles are solved in solve_chunks() chunks of consecutive columns, on problem.threads
// threads; nfe and steps are those of one chunk (each chunk takes the same steps), wall_s the
// elapsed time of the whole solve (the best of problem.timing_repeats runs).
template <class Scalar>
SolveResult<Scalar> solve(const Solver<Scalar>& solver, const Problem<Scalar>& problem,
                          const std::vector<Scalar>& grid, const Mat<Scalar>& x_start) {
  require(grid.size() >= 2, "grid", grid.size(), "needs at least two times");
  const bool forwards = grid[1] > grid[0];
  require(!forwards || runs_forwards(solver.info()), "solver", solver.info().label,
          "cannot run forwards in time (data -> noise): it samples the reverse SDE; encode with "
          "a deterministic solver");
  for (size_t i = 1; i < grid.size(); ++i)
    require(forwards ? grid[i] > grid[i - 1] : grid[i] < grid[i - 1], "grid[" + to_text(i) + "]",
            grid[i], forwards ? "times must increase strictly" : "times must decrease strictly");
  require(x_start.rows() == problem.sde->state_dim(), "init", x_start.rows(),
          "rows must equal the SDE's state dimension " + to_text(problem.sde->state_dim()));
  SolveResult<Scalar> result;
  result.x.resize(x_start.rows(), x_start.cols());
  const Eigen::Index n = x_start.cols(), chunks = solve_chunks(solver.info(), problem, n);
  const int repeats = problem.on_step ? 1 : std::max(1, problem.timing_repeats);
  result.wall_s = std::numeric_limits<double>::infinity();
  for (int repeat = 0; repeat < repeats; ++repeat) {
    const auto start = std::chrono::steady_clock::now();
    parallel_for_indices(static_cast<size_t>(chunks), problem.threads, [&](size_t c) {
      const auto k = static_cast<Eigen::Index>(c);
      const Eigen::Index begin = k * n / chunks, end = (k + 1) * n / chunks;
      SolveContext<Scalar> ctx(problem, solver.info().label);
      ctx.set_grid(grid);
      Mat<Scalar> x = x_start.middleCols(begin, end - begin);
      solver.run(ctx, grid, x);
      result.x.middleCols(begin, end - begin) = x;
      if (k == 0) {  // every chunk takes the same steps
        result.nfe = ctx.nfe();
        result.steps = ctx.steps();
      }
      return true;
    });
    result.wall_s =
        std::min(result.wall_s,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return result;
}

}  // namespace pflow
