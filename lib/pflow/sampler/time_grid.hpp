// Time grids for the samplers: t_0 = t_start > t_1 > ... > t_N = t_end (sampling runs
// backwards in time, from noise to data).
//
//   time-uniform    t_i uniform
//   time-quadratic  sqrt(t_i) uniform (DPM-Solver's "time_quadratic")
//   logsnr          lambda(t_i) uniform, lambda = log(alpha / sigma) (DPM-Solver's "logSNR")
//   edm             sigma_i = (s_max^{1/rho} + i/N (s_min^{1/rho} - s_max^{1/rho}))^rho with
//                   sigma = sigma_t / alpha_t (Karras et al. 2022, eq. 5), rho = 7 by default
//   list            explicit times
//   discrete-uniform, discrete-quadratic
//                   integer steps of a vp-discrete chain, t = i / N: from i_start = t_start N
//                   down to i_end = t_end N, i_k = i_end + round((i_start - i_end) v_k) with v_k
//                   = 1 - k / S (uniform) or (1 - k / S)^2 (quadratic, denser near the data);
//                   DDIM's two subsequences tau of 1..N (Song et al. 2021a, appendix D.2)
// logsnr and edm need lambda(t) and its inverse: scalar SDEs only.
#pragma once

#include <string>
#include <vector>

#include "pflow/core/json_fields.hpp"
#include "pflow/sde/scalar_sdes.hpp"
#include "pflow/sde/vp_discrete.hpp"

namespace pflow {

struct GridSpec {
  std::string kind = "logsnr";
  double rho = 7;             // edm only
  std::vector<double> times;  // list only (descending)
};

inline const std::vector<std::string>& grid_names() {
  static const std::vector<std::string> names = {
      "time-uniform",     "time-quadratic",    "logsnr", "edm", "list",
      "discrete-uniform", "discrete-quadratic"};
  return names;
}

// The S + 1 integer-step times of a vp-discrete chain (the header's discrete-uniform and
// discrete-quadratic): t_start and t_end must be steps of the chain, and the S + 1 integers
// distinct.
template <class Scalar>
std::vector<Scalar> integer_step_grid(const LinearSde<Scalar>& sde, const std::string& kind,
                                      const Scalar& t_start, const Scalar& t_end, int steps) {
  const auto* chain = dynamic_cast<const VpDiscrete<Scalar>*>(&sde);
  require(chain != nullptr, "time.grid", kind,
          "needs the integer steps of a vp-discrete SDE, not " + sde.name());
  const int n = chain->steps();
  auto step_of = [&](const Scalar& t, const char* field) {
    const double at = to_double(Scalar(t * Scalar(n)));
    const double i = std::round(at);
    require(std::abs(at - i) <= 1e-9 * std::max(1.0, at) && i >= 1 && i <= n, field, t,
            "must be a step of the chain, t = i / N with i in 1.." + std::to_string(n) +
                " (N = " + std::to_string(n) + ")");
    return static_cast<int>(i);
  };
  const int first = step_of(t_start, "time.t_start"), last = step_of(t_end, "time.t_end");
  require(first > last, "time.t_start", t_start, "must exceed time.t_end = " + to_text(t_end));
  require(steps <= first - last, "steps", steps,
          "exceeds the " + std::to_string(first - last) +
              " chain steps from i = " + std::to_string(first) + " to " + std::to_string(last));
  std::vector<Scalar> grid;
  int previous = first + 1;
  for (int k = 0; k <= steps; ++k) {
    const double v = 1 - static_cast<double>(k) / steps;
    const double w = kind == "discrete-uniform" ? v : v * v;
    const int i = last + static_cast<int>(std::lround((first - last) * w));
    require(i < previous, "time.grid", kind,
            "gives repeated steps with " + std::to_string(steps) +
                " steps over i = " + std::to_string(last) + ".." + std::to_string(first) +
                ": use fewer steps or discrete-uniform");
    previous = i;
    grid.push_back(chain->step_time(i));
  }
  return grid;
}

// The N + 1 times of a grid with N = steps (for a list: its own times).
template <class Scalar>
std::vector<Scalar> make_time_grid(const LinearSde<Scalar>& sde, const GridSpec& spec,
                                   const Scalar& t_start, const Scalar& t_end, int steps) {
  using std::exp;
  using std::log;
  using std::pow;
  using std::sqrt;
  std::vector<Scalar> grid;
  if (spec.kind == "list") {
    require(spec.times.size() >= 2, "time.times", spec.times.size(), "needs at least two times");
    for (size_t i = 0; i < spec.times.size(); ++i) {
      grid.push_back(from_double<Scalar>(spec.times[i]));
      require(i == 0 || spec.times[i] < spec.times[i - 1], "time.times[" + to_text(i) + "]",
              spec.times[i], "times must decrease strictly (sampling runs from noise to data)");
    }
    require(spec.times.back() > 0, "time.times", spec.times.back(), "must be positive");
    require(grid.front() <= sde.t_max(), "time.times[0]", spec.times.front(),
            "exceeds the SDE's T = " + to_text(sde.t_max()));
    return grid;
  }
  require(steps >= 1, "steps", steps, "must be at least 1");
  require(t_end > 0, "time.t_end", t_end, "must be positive (sigma(0) = 0 at t = 0)");
  require(t_start > t_end, "time.t_start", t_start, "must exceed time.t_end = " + to_text(t_end));
  require(t_start <= sde.t_max(), "time.t_start", t_start,
          "exceeds the SDE's T = " + to_text(sde.t_max()));
  if (spec.kind == "discrete-uniform" || spec.kind == "discrete-quadratic")
    return integer_step_grid(sde, spec.kind, t_start, t_end, steps);
  grid.resize(steps + 1);
  const auto* scalar = dynamic_cast<const ScalarSde<Scalar>*>(&sde);
  for (int i = 0; i <= steps; ++i) {
    const Scalar u = Scalar(i) / steps;
    if (spec.kind == "time-uniform") {
      grid[i] = t_start + u * (t_end - t_start);
    } else if (spec.kind == "time-quadratic") {
      const Scalar r = sqrt(t_start) + u * (sqrt(t_end) - sqrt(t_start));
      grid[i] = r * r;
    } else if (spec.kind == "logsnr" || spec.kind == "edm") {
      require(
          scalar != nullptr, "time.grid", spec.kind,
          "needs lambda(t) and its inverse, which only scalar SDEs have (not " + sde.name() + ")");
      const Scalar l0 = scalar->lambda(t_start), l1 = scalar->lambda(t_end);
      if (spec.kind == "logsnr") {
        grid[i] = scalar->t_of_lambda(l0 + u * (l1 - l0));
      } else {
        require(spec.rho > 0, "time.rho", spec.rho, "must be positive");
        const Scalar rho = from_double<Scalar>(spec.rho);
        const Scalar a = exp(-l0 / rho), b = exp(-l1 / rho);  // sigma^{1/rho} at both ends
        grid[i] = scalar->t_of_lambda(-rho * log(a + u * (b - a)));
      }
    } else {
      const std::string hint = closest_name(spec.kind, grid_names());
      throw InputError("time.grid", spec.kind,
                       "unknown grid" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
  }
  grid.front() = t_start;  // exact end points, whatever the round trip through lambda did
  grid.back() = t_end;
  return grid;
}

}  // namespace pflow
