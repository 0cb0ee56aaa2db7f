// Kind "work-precision": fixed-step solvers over the NFE ladder and adaptive ones over
// `tolerances`; each cell's wall time is the fastest of three identical solves (timer noise at
// the millisecond scale otherwise dominates).
#pragma once

#include "pflow/experiment/kind_base.hpp"

namespace pflow {

struct WorkPrecisionKind : KindDefaults {
  static constexpr TableLayout table_layout = TableLayout::per_cell;
  static constexpr const char* name = "work-precision";
  static constexpr bool allows_adaptive = true;
  static std::vector<std::string> own_fields() { return {"tolerances"}; }

  void validate(const Fields& f, ExperimentConfig& c, const std::vector<SolverInfo>& infos) const {
    parse_tolerances(f, c, infos);
  }

  void normalise(const ExperimentConfig& c, nlohmann::json& n) const {
    if (!c.tolerances.empty()) n["tolerances"] = c.tolerances;
  }

  template <class Scalar>
  void run_cell(const CellRun<Scalar>& run, CellResult& cell) const {
    SolveResult<Scalar> r = solve(run.solver, run.setup.problem, run.grid, run.setup.x0);
    for (int rep = 1; rep < 3; ++rep)
      r.wall_s =
          std::min(r.wall_s, solve(run.solver, run.setup.problem, run.grid, run.setup.x0).wall_s);
    record_errors(r, run, cell);
  }
};

}  // namespace pflow
