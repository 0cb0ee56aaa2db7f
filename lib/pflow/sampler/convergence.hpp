// Convergence-order measurement (docs/NOTES.md sec. 7): run a solver on a problem over a ladder of
// step counts, compare the final states with a reference per particle (max-abs and RMS), and fit
// the order as the least-squares slope of log error against log step count over the asymptotic
// range, with the pairwise orders alongside.
//
// Asymptotic range: the levels whose error is above the round-off floor (100 eps times the
// state's size), of which the last `fit_levels` (default 4) are fitted: the first levels of a
// ladder are pre-asymptotic, the ones at the floor are noise.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pflow/flow/exact_flow.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sampler/time_grid.hpp"

namespace pflow {

// One linear-SDE sampling problem with a trusted reference solution.
template <class Scalar>
struct OrderProblem {
  std::string name;
  std::shared_ptr<LinearSde<Scalar>> sde;
  std::shared_ptr<GaussianMixture<Scalar>> data;
  std::shared_ptr<AnalyticDenoiser<Scalar>> model;
  Scalar t_start, t_end;
  GridSpec grid;
  Mat<Scalar> x_start;  // D x n at t_start
  std::string reference_method;

  // The reference states (D x n at t_end), computed on first use and shared by copies: the
  // 50-digit solve of the mixture takes seconds, and many uses need only the SDE and the model.
  const Mat<Scalar>& reference() const {
    std::call_once(reference_->once, [this] { reference_->value = reference_->make(); });
    return reference_->value;
  }
  void set_reference(std::function<Mat<Scalar>()> make) {
    reference_ = std::make_shared<LazyReference>();
    reference_->make = std::move(make);
  }
  void set_reference(Mat<Scalar> value) {
    set_reference([value = std::move(value)] { return value; });
  }

  // The problem as the solvers see it: the SDE, the analytic model and the exact flow (the closed
  // form for one component, the reference flow for a mixture). Defined below, instantiated once
  // for double, mp50 and f128 (order_problems.cpp).
  Problem<Scalar> problem() const;

 private:
  struct LazyReference {
    std::once_flag once;
    std::function<Mat<Scalar>()> make;
    Mat<Scalar> value;
  };
  std::shared_ptr<LazyReference> reference_ = std::make_shared<LazyReference>();
};

template <class Scalar>
Problem<Scalar> OrderProblem<Scalar>::problem() const {
  Problem<Scalar> p;
  p.sde = sde.get();
  p.model = model.get();
  auto sde_ = sde;
  auto data_ = data;
  if (data->components() == 1) {
    p.exact_flow = [sde_, data_](const Mat<Scalar>& x, const Scalar& s, const Scalar& t) {
      return exact_flow_map(*sde_, *data_, x, s, t);
    };
  } else {
    p.exact_flow = [sde_, data_](const Mat<Scalar>& x, const Scalar& s, const Scalar& t) {
      return reference_flow(*sde_, *data_, x, s, t);
    };
  }
  return p;
}

struct Level {
  int steps = 0;
  long nfe = 0;
  double err_max = 0, err_rms = 0, wall_s = 0;
  bool failed = false;
  std::string failure;
};

struct OrderFit {
  double order = std::nan("");   // least-squares order over the fitted levels
  std::vector<double> pairwise;  // between consecutive levels
  int first = -1, last = -1;     // fitted levels
};

inline OrderFit fit_order(const std::vector<Level>& levels, double floor, int fit_levels = 4) {
  OrderFit fit;
  for (size_t i = 0; i + 1 < levels.size(); ++i)
    fit.pairwise.push_back(std::log(levels[i].err_max / levels[i + 1].err_max) /
                           std::log(double(levels[i + 1].steps) / levels[i].steps));
  std::vector<int> usable;
  for (size_t i = 0; i < levels.size(); ++i)
    if (!levels[i].failed && levels[i].err_max > floor && std::isfinite(levels[i].err_max))
      usable.push_back(static_cast<int>(i));
  // The trailing run of consecutive usable levels, at most fit_levels of them.
  std::vector<int> run;
  for (int i = static_cast<int>(usable.size()) - 1; i >= 0; --i) {
    if (!run.empty() && usable[i] != run.back() - 1) break;
    run.push_back(usable[i]);
    if (static_cast<int>(run.size()) == fit_levels) break;
  }
  if (run.size() < 2) return fit;
  fit.first = run.back();
  fit.last = run.front();
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const double n = static_cast<double>(run.size());
  for (int i : run) {
    const double lx = std::log(double(levels[i].steps)), ly = std::log(levels[i].err_max);
    sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly;
  }
  fit.order = -(n * sxy - sx * sy) / (n * sxx - sx * sx);
  return fit;
}

// Which way a convergence run goes: sampling (decode: x_start at t_start -> t_end, against the
// reference) or encoding (the reference states at t_end -> t_start on the reversed grid, against
// x_start, which the reference flow maps onto them; docs/NOTES.md sec. 13).
enum class Direction { decode, encode };

// Runs `spec` on `p` for each step count; failures (bad input for this problem, non-finite
// states) are recorded per level, not thrown.
template <class Scalar>
std::vector<Level> convergence_levels(const nlohmann::json& spec, const OrderProblem<Scalar>& p,
                                      const std::vector<int>& steps,
                                      Direction direction = Direction::decode) {
  using std::sqrt;
  const auto solver = make_solver<Scalar>(spec);
  const Problem<Scalar> problem = p.problem();
  const bool encode = direction == Direction::encode;
  const Mat<Scalar>& start = encode ? p.reference() : p.x_start;
  const Mat<Scalar>& target = encode ? p.x_start : p.reference();
  std::vector<Level> levels;
  for (int n : steps) {
    Level level;
    level.steps = n;
    try {
      auto grid = make_time_grid<Scalar>(*p.sde, p.grid, p.t_start, p.t_end, n);
      if (encode) std::reverse(grid.begin(), grid.end());
      const SolveResult<Scalar> r = solve(*solver, problem, grid, start);
      const Mat<Scalar> diff = r.x - target;
      level.nfe = r.nfe;
      level.wall_s = r.wall_s;
      level.err_max = to_double(Scalar(diff.cwiseAbs().maxCoeff()));
      level.err_rms = to_double(Scalar(sqrt(Scalar(diff.squaredNorm() / Scalar(diff.size())))));
    } catch (const std::exception& e) {
      level.failed = true;
      level.failure = e.what();
    }
    levels.push_back(level);
  }
  return levels;
}

// The round-off floor of a problem: 100 eps times the size of the states compared (the reference
// states, or x_start when encoding).
template <class Scalar>
double roundoff_floor(const OrderProblem<Scalar>& p, Direction direction = Direction::decode) {
  const Mat<Scalar>& target = direction == Direction::encode ? p.x_start : p.reference();
  const double scale = std::max(1.0, to_double(Scalar(target.cwiseAbs().maxCoeff())));
  return 1e2 * to_double(eps<Scalar>()) * scale;
}

// The standard order problems (built once per precision):
//   "gaussian": vp-linear (0.1, 20), N((0.5, -1), [[1, .8], [.8, .9]]), t 1 -> 1e-3, logsnr grid,
//               reference = the exact flow map;
//   "mixture":  vp-linear, a 3-component anisotropic 2-D mixture, same times, reference = the
//               50-digit Bulirsch-Stoer solve at tolerance 1e-32;
//   "cld":      cld (beta 4, M 0.25), 1-D Gaussian data, t 1 -> 1e-3, time-quadratic grid,
//               reference = the exact flow map (R-ODE).
template <class Scalar>
const OrderProblem<Scalar>& order_problem(const std::string& name);

std::vector<std::string> order_problem_names();

extern template const OrderProblem<double>& order_problem<double>(const std::string&);
extern template const OrderProblem<mp50>& order_problem<mp50>(const std::string&);
extern template const OrderProblem<f128>& order_problem<f128>(const std::string&);

// Compiled once, in order_problems.cpp: every user (the orders command, the tests) links these
// instead of instantiating the solve driver and the reference flow again in each precision.
#define PFLOW_CONVERGENCE_INSTANTIATION(PREFIX, S)                                        \
  PREFIX template Problem<S> OrderProblem<S>::problem() const;                            \
  PREFIX template std::vector<Level> convergence_levels<S>(                               \
      const nlohmann::json&, const OrderProblem<S>&, const std::vector<int>&, Direction); \
  PREFIX template double roundoff_floor<S>(const OrderProblem<S>&, Direction);
PFLOW_CONVERGENCE_INSTANTIATION(extern, double)
PFLOW_CONVERGENCE_INSTANTIATION(extern, mp50)
PFLOW_CONVERGENCE_INSTANTIATION(extern, f128)

}  // namespace pflow
