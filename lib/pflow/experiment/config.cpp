#include "pflow/experiment/config.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "pflow/core/json_fields.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sde/factory.hpp"

namespace pflow {

ExperimentConfig parse_experiment(const nlohmann::json& j) {
  ExperimentConfig c;
  const Fields f(
      j, "config",
      {"name", "kind", "sde", "target", "denoiser", "time", "init", "solvers", "nfe", "precision",
       "reference", "seed", "times", "description", "tolerances", "fit_levels", "brownian_levels"});
  c.name = f.text("name");
  // A plain character test, not std::regex: libstdc++'s matcher recurses once per character and
  // overflows the stack on names of ~100k characters.
  const auto name_char = [](char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
  };
  require(!c.name.empty() && std::all_of(c.name.begin(), c.name.end(), name_char), "name", c.name,
          "must be letters, digits, '_', '-' or '.' (it names the result file)");
  c.kind = f.text("kind", "convergence", experiment_kinds());
  c.precision = f.text("precision", "double", {"double", "mp50"});
  c.reference = f.text("reference", "auto", {"auto", "exact", "mp50"});
  const double seed = f.has("seed") ? to_double(f.number<double>("seed")) : 0.0;
  require(seed >= 0 && seed == std::floor(seed) && seed < 9e15, "seed", seed,
          "must be a non-negative integer");
  c.seed = static_cast<std::uint64_t>(seed);

  // The target first: it gives the data dimension the SDE is built for.
  require(f.has("target"), "target", "(missing)", "is required");
  require(f.has("sde"), "sde", "(missing)", "is required");
  c.target = f.raw("target");
  c.sde = f.raw("sde");
  const auto data = make_target<double>(c.target, "target");
  c.data_dim = data.dim();
  const auto sde = make_sde<double>(c.sde, c.data_dim, "sde");
  c.state_dim = sde->state_dim();
  c.denoiser = f.has("denoiser") ? f.raw("denoiser") : nlohmann::json{{"type", "analytic"}};
  {
    const Fields d(c.denoiser, "denoiser", {"type"});
    d.text("type", "analytic", {"analytic"});
  }

  if (c.kind == "kernel") {
    require(f.has("times"), "times", "(missing)", "is required for kind 'kernel'");
    const Vec<double> times = f.vector<double>("times");
    for (Eigen::Index i = 0; i < times.size(); ++i) {
      require(times(i) >= 0 && times(i) <= to_double(sde->t_max()),
              "times[" + std::to_string(i) + "]", times(i),
              "must lie in [0, T = " + to_text(to_double(sde->t_max())) + "]");
      c.times.push_back(times(i));
    }
  } else {
    require(f.has("time"), "time", "(missing)", "is required");
    const Fields t(f.raw("time"), "time", {"t_start", "t_end", "grid", "rho", "times"});
    c.grid.kind = t.text("grid", "logsnr", grid_names());
    c.t_start = to_double(t.number<double>("t_start", to_double(sde->t_max())));
    c.t_end = to_double(t.number<double>("t_end", 1e-3));
    c.grid.rho = to_double(t.number<double>("rho", 7.0));
    if (c.grid.kind == "list") {
      const Vec<double> times = t.vector<double>("times");
      c.grid.times.assign(times.data(), times.data() + times.size());
      c.t_start = c.grid.times.front();
      c.t_end = c.grid.times.back();
    }
    // The grid builder checks t_end > 0, t_start > t_end, t_start <= T and the grid's needs.
    make_time_grid<double>(*sde, c.grid, c.t_start, c.t_end, 2);

    require(f.has("init"), "init", "(missing)", "is required");
    const Fields in(f.raw("init"), "init", {"points", "count", "seed"});
    if (in.has("points")) {
      if (in.has("count"))
        throw InputError("init.count", in.raw("count").dump(),
                         "give either init.points or init.count, not both");
      const Mat<double> points = in.matrix<double>("points");
      require(points.cols() == c.state_dim, "init.points[0]", in.raw("points")[0].dump(),
              "needs " + std::to_string(c.state_dim) + " coordinates (the state dimension of " +
                  sde->name() + ")");
      for (Eigen::Index r = 0; r < points.rows(); ++r) {
        std::vector<double> point(static_cast<size_t>(points.cols()));
        for (Eigen::Index k = 0; k < points.cols(); ++k) point[k] = points(r, k);
        c.init_points.push_back(std::move(point));
      }
    } else {
      c.init_count = in.integer("count");
      require(c.init_count >= 1 && c.init_count <= 100000, "init.count", c.init_count,
              "must be between 1 and 100000");
      const double s = to_double(in.number<double>("seed", static_cast<double>(c.seed)));
      // Bounded like "seed": casting a larger double to uint64_t is UB (found by tests/fuzz).
      require(s >= 0 && s == std::floor(s) && s < 9e15, "init.seed", s,
              "must be a non-negative integer");
      c.init_seed = static_cast<std::uint64_t>(s);
    }

    require(f.has("solvers"), "solvers", "(missing)", "is required");
    const nlohmann::json& solvers = f.raw("solvers");
    require(solvers.is_array() && !solvers.empty(), "solvers", solvers.dump(),
            "must be a non-empty array of solver names or objects");
    std::vector<std::string> labels;
    std::vector<SolverInfo> infos;
    bool any_fixed = false, any_adaptive = false;
    for (size_t i = 0; i < solvers.size(); ++i) {
      const std::string path = "solvers[" + std::to_string(i) + "]";
      const auto solver = make_solver<double>(solvers[i], path);
      // An odeint solver stepping in lambda (scalar SDEs only; abm needs a logsnr grid then).
      const bool in_lambda =
          solvers[i].is_object() && solvers[i].value("variable", std::string("t")) == "lambda";
      const SolverInfo& info = solver->info();
      require(!info.adaptive || c.kind == "work-precision", path, solvers[i].dump(),
              "is adaptive: convergence runs need fixed steps (set \"adaptive\": false, or use "
              "kind \"work-precision\")");
      (info.adaptive ? any_adaptive : any_fixed) = true;
      require(info.label.find('/') == std::string::npos, path + ".label", info.label,
              "must not contain '/' (it names an HDF5 group)");
      require(std::find(labels.begin(), labels.end(), info.label) == labels.end(), path, info.label,
              "appears twice (give one a \"label\")");
      labels.push_back(info.label);
      if (info.scalar_sde_only && !dynamic_cast<const ScalarSde<double>*>(sde.get())) {
        throw InputError(path, info.label,
                         "needs a scalar SDE (alpha, sigma, lambda), not " + sde->name() +
                             (in_lambda ? "; integrate in t (\"variable\": \"t\")"
                                        : "; use gddim, paddim or an odeint solver"));
      }
      require(c.kind != "stochastic" || info.stochastic, path, info.label,
              "is deterministic: kind \"stochastic\" measures stochastic samplers (ddpm, ddim "
              "with eta > 0, euler-maruyama)");
      // The reference is the reverse SDE (eta = 1); ddim with 0 < eta < 1 discretizes another
      // SDE with the same marginals, so its pathwise error would not converge.
      if (c.kind == "stochastic" && solvers[i].is_object() && solvers[i].contains("eta"))
        require(
            solvers[i]["eta"] == 1.0, path + ".eta", solvers[i]["eta"].dump(),
            "must be 1 for kind \"stochastic\" (the reference solves the reverse SDE, eta = 1)");
      // Fixed-weight multistep methods assume equal steps in their variable.
      require(info.uniform_grid.empty() || c.grid.kind == info.uniform_grid, "time.grid",
              c.grid.kind,
              info.label + " (" + path + ") needs steps uniform in its variable: grid \"" +
                  info.uniform_grid + "\"");
      infos.push_back(info);
      c.solvers.push_back(solvers[i]);
    }
    if (any_fixed) {
      require(f.has("nfe"), "nfe", "(missing)", "is required");
      const nlohmann::json& nfe = f.raw("nfe");
      require(nfe.is_array() && !nfe.empty(), "nfe", nfe.dump(),
              "must be a non-empty array of evaluation counts");
      for (size_t i = 0; i < nfe.size(); ++i) {
        const std::string path = "nfe[" + std::to_string(i) + "]";
        const int n = Fields::integer_of(nfe[i], path);
        require(n >= 1 && n <= 1000000, path, n, "must be between 1 and 1000000");
        require(i == 0 || n > c.nfe.back(), path, n, "NFE values must increase");
        c.nfe.push_back(n);
      }
      for (const SolverInfo& info : infos) {
        if (info.adaptive) continue;
        require(c.nfe.front() >= info.evals_per_step, "nfe[0]", c.nfe.front(),
                "is below the minimum of " + info.label + " (" +
                    std::to_string(info.evals_per_step) + " evaluations per step)");
      }
    }
    c.fit_levels = f.has("fit_levels") ? f.integer("fit_levels") : 4;
    require(c.fit_levels >= 2 && c.fit_levels <= 20, "fit_levels", c.fit_levels,
            "must be between 2 and 20");
    require(!f.has("fit_levels") || c.nfe.empty() || c.fit_levels <= static_cast<int>(c.nfe.size()),
            "fit_levels", c.fit_levels,
            "exceeds the " + std::to_string(c.nfe.size()) + " NFE levels in \"nfe\"");
    if (c.kind == "stochastic") {
      // Strong errors need every solve on one Brownian path: the steps of each grid must lie on
      // the path's dyadic grid, and the reference (Euler-Maruyama on every interval of the
      // path) must be much finer than the finest level.
      require(c.grid.kind == "time-uniform", "time.grid", c.grid.kind,
              "must be \"time-uniform\" for kind \"stochastic\" (steps on the Brownian path's "
              "dyadic grid)");
      int finest = 0;
      for (size_t i = 0; i < c.nfe.size(); ++i) {
        const int n = c.nfe[i];
        require((n & (n - 1)) == 0, "nfe[" + std::to_string(i) + "]", n,
                "must be a power of two for kind \"stochastic\" (steps on the dyadic grid)");
        while ((1 << finest) < n) ++finest;
      }
      c.brownian_levels = f.has("brownian_levels") ? f.integer("brownian_levels") : finest + 4;
      require(c.brownian_levels >= finest + 3 && c.brownian_levels <= 20, "brownian_levels",
              c.brownian_levels,
              "must be between log2(max nfe) + 3 = " + std::to_string(finest + 3) +
                  " (a reference 8 times finer than the finest level) and 20");
      const double particles =
          c.init_count > 0 ? c.init_count : static_cast<double>(c.init_points.size());
      const double bytes = std::ldexp(1.0, c.brownian_levels) * c.state_dim * particles * 8;
      require(bytes <= 2e9, "brownian_levels", c.brownian_levels,
              "makes a Brownian path of " + to_text(bytes / 1e9) +
                  " GB for these particles (at most 2 GB): lower it or init.count");
    } else if (f.has("brownian_levels")) {
      throw InputError("brownian_levels", f.raw("brownian_levels").dump(),
                       "applies to kind \"stochastic\" only");
    }
    if (any_adaptive) {
      require(f.has("tolerances"), "tolerances", "(missing)", "is required for adaptive solvers");
      const Vec<double> tols = f.vector<double>("tolerances");
      for (Eigen::Index i = 0; i < tols.size(); ++i) {
        const std::string path = "tolerances[" + std::to_string(i) + "]";
        require(tols(i) > 0 && tols(i) < 1, path, tols(i), "must be in (0, 1)");
        require(i == 0 || tols(i) < tols(i - 1), path, tols(i), "tolerances must decrease");
        c.tolerances.push_back(tols(i));
      }
    }
  }

  // The normalised config: every default written out.
  nlohmann::json n = {
      {"name", c.name},           {"kind", c.kind},         {"sde", c.sde},
      {"target", c.target},       {"denoiser", c.denoiser}, {"precision", c.precision},
      {"reference", c.reference}, {"seed", c.seed}};
  if (f.has("description")) n["description"] = f.raw("description");
  if (c.kind == "kernel") {
    n["times"] = c.times;
  } else {
    n["time"] = {{"t_start", c.t_start}, {"t_end", c.t_end}, {"grid", c.grid.kind}};
    if (c.grid.kind == "edm") n["time"]["rho"] = c.grid.rho;
    if (c.grid.kind == "list") n["time"]["times"] = c.grid.times;
    if (c.init_count > 0) {
      n["init"] = {{"count", c.init_count}, {"seed", c.init_seed}};
    } else {
      n["init"] = {{"points", c.init_points}};
    }
    n["solvers"] = c.solvers;
    n["nfe"] = c.nfe;
    if (!c.tolerances.empty()) n["tolerances"] = c.tolerances;
    n["fit_levels"] = c.fit_levels;
    if (c.kind == "stochastic") n["brownian_levels"] = c.brownian_levels;
  }
  c.normalized = n;
  return c;
}

ExperimentConfig load_experiment(const std::string& path) {
  std::ifstream in(path);
  require(static_cast<bool>(in), "config file", path, "cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  require(!j.is_discarded(), "config file", path, "is not valid JSON");
  return parse_experiment(j);
}

}  // namespace pflow
