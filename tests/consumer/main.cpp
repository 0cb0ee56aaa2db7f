// Solves the PF-ODE of Gaussian data with DPM-Solver++ 2M through the installed pflow and
// compares the result with the exact flow map; exit status 0 when they agree to 1e-4.
#include <cstdio>
#include <pflow/pflow.hpp>

int main() {
  using json = nlohmann::json;
  const auto data =
      pflow::make_target<double>(json{{"type", "gaussian"}, {"mean", {0.5}}, {"cov", {{0.3}}}});
  const auto sde = pflow::make_sde<double>(json{{"type", "vp-linear"}}, 1);
  const pflow::AnalyticDenoiser<double> model(*sde, data);
  pflow::Problem<double> problem{sde.get(), &model};
  const auto grid = pflow::make_time_grid<double>(*sde, {"logsnr"}, 1.0, 1e-3, 200);
  const pflow::Mat<double> x = pflow::Mat<double>::Constant(1, 3, 0.7);
  const auto result =
      pflow::solve(*pflow::make_solver<double>(json("dpm-solver++-2m")), problem, grid, x);
  const double error =
      (result.x - pflow::exact_flow_map(*sde, data, x, 1.0, 1e-3)).cwiseAbs().maxCoeff();
  std::printf("pflow %s: dpm-solver++-2m, %ld NFE, error %.2e against the exact flow map\n",
              PFLOW_VERSION, result.nfe, error);
  return error < 1e-4 ? 0 : 1;
}
