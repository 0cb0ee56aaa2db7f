// Kind "trajectory": a convergence run that also keeps, per cell, the solver's state at every
// grid time and the reference flow at the same times (exact map, or the 50-digit Bulirsch-Stoer
// solve carried from one grid time to the next; a learned or perturbed model's own flow):
// /solvers/<label>/trajectory_nfe_<N>/.
#pragma once

#include "pflow/experiment/kind_base.hpp"

namespace pflow {

struct TrajectoryKind : KindDefaults {
  static constexpr const char* name = "trajectory";

  template <class Scalar>
  void run_cell(const CellRun<Scalar>& run, CellResult& cell) const {
    std::vector<Mat<Scalar>> states{run.setup.x0};
    Problem<Scalar> problem = run.setup.problem;
    problem.on_step = [&states](int, const Scalar&, const Mat<Scalar>& x) { states.push_back(x); };
    record_errors(solve(run.solver, problem, run.grid, run.setup.x0), run, cell);
    record_path(run, states, cell.trajectory);
  }

  void write_solver(h5::File& f, const std::string& group, const SolverRun& s,
                    const ExperimentResult& r) const {
    const size_t n = static_cast<size_t>(r.particles), d = static_cast<size_t>(r.config.state_dim);
    for (const CellResult& cell : s.cells) {
      if (cell.failed) continue;
      const std::string g = group + "/trajectory_nfe_" + std::to_string(cell.nfe_target);
      const size_t points = cell.trajectory.t.size();
      f.group(g);
      f.dataset(g + "/t", {points}, cell.trajectory.t);
      f.dataset(g + "/x", {points, n, d}, cell.trajectory.x);
      f.dataset(g + "/reference", {points, n, d}, cell.trajectory.reference);
    }
  }

 private:
  // The reference at every grid time, beside the solver's states, row-major [steps + 1, n, D].
  template <class Scalar>
  static void record_path(const CellRun<Scalar>& run, const std::vector<Mat<Scalar>>& states,
                          Trajectory& out) {
    const RunSetup<Scalar>& s = run.setup;
    Mat<mp50> x = s.x0.template cast<mp50>();
    const Mat<mp50> x_start = x;
    for (size_t i = 0; i < run.grid.size(); ++i) {
      const mp50 t = mp50(run.grid[i]);
      if (i > 0 && s.model50)  // a learned or perturbed model: its own flow
        x = reference_flow<mp50>(s.sde50, *s.model50, x, mp50(run.grid[i - 1]), t);
      else if (i > 0)
        x = s.exact_reference
                ? exact_flow_map(s.sde50, *s.data50, x_start, mp50(run.grid.front()), t)
                : reference_flow<mp50>(s.sde50, *s.data50, x, mp50(run.grid[i - 1]), t);
      out.t.push_back(to_double(run.grid[i]));
      const auto ref = row_major(x);
      out.reference.insert(out.reference.end(), ref.begin(), ref.end());
      const auto xs = row_major(states.at(i));
      out.x.insert(out.x.end(), xs.begin(), xs.end());
    }
  }
};

}  // namespace pflow
