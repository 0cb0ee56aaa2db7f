// Flow matching's sampler (docs/NOTES.md sec. 17): Euler in velocity form,
//   x_t = x_s + (t - s) u(x_s, s),
// with u the probability-flow velocity dx/dt, which a velocity model (flow matching, rectified
// flow) outputs directly and the solve context converts from any other output. On
// rectified flow (alpha = 1 - t, sigma = t) u = eps - x0 and this step is DDIM's step; on
// any scalar schedule DDIM is this step in z = x / (alpha + sigma), tau = sigma / (alpha + sigma).
#pragma once

#include "pflow/sampler/solver.hpp"
#include "pflow/sampler/solver_record.hpp"

namespace pflow {

template <class Scalar>
class EulerVelocity : public Solver<Scalar> {
 public:
  explicit EulerVelocity(SolverInfo info) : Solver<Scalar>(std::move(info)) {}
  void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
           Mat<Scalar>& x) const override {
    for (size_t i = 0; i + 1 < grid.size(); ++i) {
      const Scalar &s = grid[i], &t = grid[i + 1];
      x += (t - s) * ctx.velocity(x, s);
      ctx.step_done(static_cast<int>(i), t, x);
    }
  }
};

// The record of Euler in velocity form (solver_record.hpp).
template <class Scalar>
void add_flow_matching_solvers(SolverTable<Scalar>& table) {
  SolverRecord<Scalar> r;
  r.name = "euler-velocity";
  r.family = "flow-matching";
  r.reference = "Euler on dx/dt = u (Lipman et al. 2022; Liu et al. 2022)";
  r.traits = [](const SolverParams&) { return SolverTraits{}; };
  r.order_tests = {{"euler-velocity", {"gaussian", "mixture", "rectified-flow"}}};
  r.make = [](const SolverParams&, SolverInfo info) {
    return std::make_unique<EulerVelocity<Scalar>>(std::move(info));
  };
  table.push_back(std::move(r));
}

}  // namespace pflow
