#include "pflow/sampler/registry_impl.hpp"

namespace pflow {

const std::vector<SolverCatalogueEntry>& solver_catalogue() {
  static const std::vector<SolverCatalogueEntry> catalogue = {
      {"ddim", "eta = 0", "1", "Song et al. 2021a, eq. 12 (eta > 0: eq. 16, stochastic)",
       "exponential"},
      {"ddpm", "", "1 (weak)", "Ho et al. 2020, Alg. 2 (= ddim with eta = 1)", "stochastic"},
      {"dpm-solver-1", "", "1", "Lu et al. 2022a, eq. 3.7 (= DDIM)", "exponential"},
      {"dpm-solver-2", "", "2", "Lu et al. 2022a, Alg. 1 (r1 = 1/2)", "exponential"},
      {"dpm-solver-3", "", "3", "Lu et al. 2022a, Alg. 2 (r1 = 1/3, r2 = 2/3)", "exponential"},
      {"dpm-solver++-1", "", "1", "Lu et al. 2022b, eq. 9 (= DDIM)", "exponential"},
      {"dpm-solver++-2s", "", "2", "Lu et al. 2022b, Alg. 1 (r1 = 1/2)", "exponential"},
      {"dpm-solver++-2m", "start = lower-order", "2", "Lu et al. 2022b, Alg. 2", "multistep"},
      {"dpm-solver++-3m", "start = lower-order", "2 (published as 3; README)",
       "Lu et al. 2022b, 3M update of the reference implementation", "multistep"},
      {"dpm-solver++-3m-corrected", "start = lower-order", "3",
       "3M with the D2 term Taylor expansion gives (README)", "multistep"},
      {"deis-tab-1", "start = lower-order", "1", "Zhang & Chen 2023, eq. 15 (= DDIM)", "multistep"},
      {"deis-tab-2", "start = lower-order", "2", "Zhang & Chen 2023, eq. 15", "multistep"},
      {"deis-tab-3", "start = lower-order", "3", "Zhang & Chen 2023, eq. 15", "multistep"},
      {"deis-rhoab-1", "start = lower-order", "1", "Zhang & Chen 2023, eq. 16 (= DDIM)",
       "multistep"},
      {"deis-rhoab-2", "start = lower-order", "2", "Zhang & Chen 2023, eq. 16", "multistep"},
      {"deis-rhoab-3", "start = lower-order", "3", "Zhang & Chen 2023, eq. 16", "multistep"},
      {"ipndm", "order = 4", "2 (4 on steps uniform in rho)", "Zhang & Chen 2023, App. B",
       "multistep"},
      {"unipc", "variant = bh2 (bh1), order = 2 (1-3), corrector = true, start = lower-order",
       "order + 1 (order without corrector)", "Zhao et al. 2023, Alg. 2-3", "multistep"},
      {"euler-edm", "", "1", "Karras et al. 2022, Alg. 1 (Euler only; = DDIM)", "exponential"},
      {"heun-edm", "", "2", "Karras et al. 2022, Alg. 1", "exponential"},
      {"gddim", "order = 2 (0-3), K = R (cholesky, principal), covariance = kernel (data), start",
       "order + 1", "Zhang, Tao & Chen 2023, eq. 11-18", "matrix"},
      {"paddim", "form = kernel (data)", "1 (fixed axes: scalar SDEs, blurring)",
       "principal-axis DDIM; docs/NOTES.md sec. 4", "matrix"},
      {"euler", "adaptive = false, variable = t (lambda)", "1", "Boost.Odeint euler", "odeint"},
      {"rk4", "variable = t (lambda)", "4", "Boost.Odeint runge_kutta4", "odeint"},
      {"cash-karp54", "adaptive = false, tolerance = 1e-8, variable = t", "5",
       "Cash & Karp 1990; Boost.Odeint", "odeint"},
      {"dopri5", "adaptive = false, tolerance = 1e-8, variable = t", "5",
       "Dormand & Prince 1980; Boost.Odeint", "odeint"},
      {"rkf78", "adaptive = false, tolerance = 1e-8, variable = t", "8",
       "Fehlberg 1968; Boost.Odeint", "odeint"},
      {"abm", "variable = t (lambda); uniform steps", "4",
       "Adams-Bashforth-Moulton, 4 steps; Boost.Odeint", "odeint"},
      {"bulirsch-stoer", "tolerance = 1e-8, variable = t", "adaptive",
       "Bulirsch & Stoer 1966; Boost.Odeint", "odeint"},
      {"euler-maruyama", "", "1 (strong, additive noise)",
       "Maruyama 1955 on the reverse SDE (Song et al. 2021, eq. 6)", "stochastic"},
  };
  return catalogue;
}

std::vector<std::string> solver_names() {
  std::vector<std::string> names;
  for (const auto& e : solver_catalogue()) names.push_back(e.name);
  return names;
}

template std::unique_ptr<Solver<double>> make_solver<double>(const nlohmann::json&,
                                                             const std::string&);

}  // namespace pflow
