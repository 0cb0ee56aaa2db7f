// Time grids for the samplers: t_0 = t_start > t_1 > ... > t_N = t_end (sampling runs
// backwards in time, from noise to data).
//
//   time-uniform    t_i uniform
//   time-quadratic  sqrt(t_i) uniform (DPM-Solver's "time_quadratic")
//   logsnr          lambda(t_i) uniform, lambda = log(alpha / sigma) (DPM-Solver's "logSNR")
//   edm             sigma_i = (s_max^{1/rho} + i/N (s_min^{1/rho} - s_max^{1/rho}))^rho with
//                   sigma = sigma_t / alpha_t (Karras et al. 2022, eq. 5), rho = 7 by default
//   list            explicit times
// logsnr and edm need lambda(t) and its inverse: scalar SDEs only.
#pragma once

#include <string>
#include <vector>

#include "pflow/core/json_fields.hpp"
#include "pflow/sde/scalar_sdes.hpp"

namespace pflow {

struct GridSpec {
  std::string kind = "logsnr";
  double rho = 7;             // edm only
  std::vector<double> times;  // list only (descending)
};

inline const std::vector<std::string>& grid_names() {
  static const std::vector<std::string> names = {"time-uniform", "time-quadratic", "logsnr", "edm",
                                                 "list"};
  return names;
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
