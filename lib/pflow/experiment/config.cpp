#include "pflow/experiment/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "pflow/core/json_fields.hpp"
#include "pflow/experiment/kinds.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/sde/scalar_sdes.hpp"
#include "pflow/target/data_source.hpp"

namespace pflow {

const std::vector<std::string>& experiment_kinds() {
  static const std::vector<std::string> names = kind_names();
  return names;
}

int parse_class_label(const Fields& d, const std::string& key, const nlohmann::json& target) {
  require(target.value("type", "") == "gmm" && target.contains("labels"), d.at(key),
          d.has(key) ? d.raw(key).dump() : "(missing)",
          "needs a gmm target with \"labels\" (one class label per component)");
  const double label = to_double(d.number<double>(key));
  std::string present;
  bool found = false;
  for (const nlohmann::json& l : target.at("labels")) {
    present += (present.empty() ? "" : ", ") + l.dump();
    found = found || (l.is_number() && l.get<double>() == label);
  }
  require(found, d.at(key), label, "labels no component of the target (labels: " + present + ")");
  return static_cast<int>(label);
}

namespace {

// A model file's path and the flags that allow it a mismatch with the run (learned denoisers).
const std::vector<std::string> kModelFlags = {"allow_sde_mismatch", "allow_target_mismatch",
                                              "allow_time_extrapolation"};

void parse_model_file(const Fields& d, nlohmann::json& out) {
  const std::string path = d.text("path");
  require(!path.empty(), "denoiser.path", path, "must name a model file");
  out["path"] = path;
  for (const std::string& flag : kModelFlags) out[flag] = d.boolean(flag, false);
}

std::vector<std::string> with_model_fields(std::vector<std::string> keys) {
  keys.push_back("path");
  keys.insert(keys.end(), kModelFlags.begin(), kModelFlags.end());
  return keys;
}

// The guided denoiser: class `label` of a labelled gmm target, guidance "cfg" [default] or
// "classifier", scale w >= 0 [1] (README, "Guidance"). With a model file ("path"): classifier-free
// guidance of a class-conditional network.
nlohmann::json parse_guided(const nlohmann::json& block, const nlohmann::json& target) {
  const Fields d(block, "denoiser", with_model_fields({"type", "label", "scale", "guidance"}));
  require(target.value("type", "") == "gmm" && target.contains("labels"), "denoiser.type", "guided",
          "needs a gmm target with \"labels\" (one class label per component)");
  const int label = parse_class_label(d, "label", target);
  const double scale = to_double(d.number<double>("scale", 1.0));
  require(std::isfinite(scale) && scale >= 0 && scale <= 1000, "denoiser.scale", scale,
          "must be between 0 and 1000");
  nlohmann::json out = {{"type", "guided"},
                        {"label", label},
                        {"scale", scale},
                        {"guidance", d.text("guidance", "cfg", {"cfg", "classifier"})}};
  if (d.has("path")) {
    require(out["guidance"] == "cfg", "denoiser.guidance", "classifier",
            "a learned model has no classifier: use \"cfg\" with a class-conditional model, "
            "or drop \"path\" for the exact classifier");
    parse_model_file(d, out);
  }
  return out;
}

// The denoiser block, normalised (README, "Learned denoisers"): "analytic", "perturbed" (delta,
// omega), "guided" (label, scale, guidance, optionally a model file) or "mlp" (path, relative to
// the config file, the flags allow_sde_mismatch, allow_target_mismatch, allow_time_extrapolation,
// and for a class-conditional model optionally a label). The model file itself is read and
// checked when the run starts (run.cpp), before any work.
void parse_denoiser(const nlohmann::json& block, ExperimentConfig& c) {
  const std::string type =
      Fields(block, "denoiser",
             with_model_fields({"type", "delta", "omega", "label", "scale", "guidance", "output"}))
          .text("type", "analytic", {"analytic", "mlp", "perturbed", "guided"});
  if (type == "guided") {
    c.denoiser = parse_guided(block, c.target);
  } else if (type == "analytic") {
    // The exact model may declare any output; samplers then convert from it (sec. 17).
    const std::string output =
        Fields(block, "denoiser", {"type", "output"}).text("output", "score", model_output_names());
    c.denoiser = {{"type", "analytic"}};
    if (output != "score") c.denoiser["output"] = output;
  } else if (type == "perturbed") {
    const Fields d(block, "denoiser", {"type", "delta", "omega"});
    const double delta = to_double(d.number<double>("delta"));
    const double omega = to_double(d.number<double>("omega", 1.0));
    require(std::isfinite(delta) && delta >= 0, "denoiser.delta", delta,
            "must be a finite number >= 0");
    require(std::isfinite(omega), "denoiser.omega", omega, "must be finite");
    c.denoiser = {{"type", "perturbed"}, {"delta", delta}, {"omega", omega}};
  } else {
    const Fields d(block, "denoiser", with_model_fields({"type", "label"}));
    c.denoiser = {{"type", "mlp"}};
    parse_model_file(d, c.denoiser);
    if (d.has("label")) c.denoiser["label"] = parse_class_label(d, "label", c.target);
  }
}

// Kinds whose result is the final states against a reference at the flow's end point (no
// trajectory, density or path): they alone take "exact-double" and "store_states": false.
bool end_point_kind(const std::string& kind) {
  return kind == "convergence" || kind == "work-precision";
}

// name, kind, precision, reference, seed, target, SDE and denoiser: every kind has them.
void parse_common(const Fields& f, ExperimentConfig& c) {
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
  // Free text for the reader of the result (stored in its config_json): a string, nothing else.
  if (f.has("description")) {
    const std::string description = f.text("description");
    require(description.size() <= 100000, "description",
            "(" + std::to_string(description.size()) + " characters)",
            "is longer than 100000 characters");
  }
  // Fields a kind owns (some are shared by two kinds): under another kind they are an error,
  // not silently ignored.
  std::map<std::string, std::vector<std::string>> owners;
  for_each_kind([&](const auto& kind) {
    for (const std::string& field : kind.own_fields()) owners[field].push_back(kind.name);
  });
  for (const auto& [field, kinds] : owners)
    if (f.has(field) && std::find(kinds.begin(), kinds.end(), c.kind) == kinds.end()) {
      std::string names;
      for (const std::string& k : kinds) names += (names.empty() ? "\"" : " or \"") + k + "\"";
      throw InputError(field, f.raw(field).dump(), "applies to kind " + names + " only");
    }
  c.precision = f.text("precision", "double", {"double", "float128", "mp50"});
  c.reference = f.text("reference", "auto", {"auto", "exact", "exact-double", "float128", "mp50"});
  require(c.reference != "exact-double" || c.precision == "double", "reference", "exact-double",
          "evaluates the exact map in double: it needs precision \"double\" (\"exact\" is the "
          "same map in 50 digits)");
  require(c.reference != "exact-double" || end_point_kind(c.kind), "reference", "exact-double",
          "applies to kinds \"convergence\" and \"work-precision\" only (whose reference is the "
          "flow's end point); use \"exact\"");
  require(c.reference != "float128" || c.precision == "double", "reference", "float128",
          "is no more precise than precision \"" + c.precision +
              "\": its references are solved in mp50 (\"auto\" or \"mp50\")");
  const double seed = f.has("seed") ? to_double(f.number<double>("seed")) : 0.0;
  require(seed >= 0 && seed == std::floor(seed) && seed < 9e15, "seed", seed,
          "must be a non-negative integer");
  c.seed = static_cast<std::uint64_t>(seed);

  // The target first: it gives the data dimension the SDE is built for.
  require(f.has("target"), "target", "(missing)", "is required");
  require(f.has("sde"), "sde", "(missing)", "is required");
  c.target = f.raw("target");
  c.sde = f.raw("sde");
  c.data_dim = DataSource<double>::dim_of_config(c.target, "target");
  const auto sde = make_sde<double>(c.sde, c.data_dim, "sde");
  c.state_dim = sde->state_dim();
  c.scalar_sde = dynamic_cast<const ScalarSde<double>*>(sde.get()) != nullptr;
  require(c.reference != "exact-double" || c.scalar_sde, "reference", "exact-double",
          "is the per-mode closed form of a scalar SDE; sde.type = " +
              c.sde.value("type", std::string("?")) +
              " has matrix coefficients (use \"exact\", its R-ODE map in 50 digits)");
  parse_denoiser(f.has("denoiser") ? f.raw("denoiser") : nlohmann::json{{"type", "analytic"}}, c);
  // A sample-only data set has no score and no density: a learned model samples it, and the
  // kinds without cells (kernel tables of mixture marginals) cannot use it.
  if (is_dataset_target(c.target)) {
    const std::string type = c.denoiser["type"].get<std::string>();
    require(type == "mlp", "denoiser.type", type,
            "has no data score to use: target \"" + c.target["name"].get<std::string>() +
                "\" is a sample-only data set; use a learned model (\"mlp\")");
    with_kind(c.kind, [&](const auto& kind) {
      require(kind.has_cells, "target.type", "dataset",
              "has no density: kind \"" + c.kind + "\" needs a mixture (dirac, gaussian, gmm)");
    });
  }
}

// The unit roundoff of a run's number type (the states' precision).
double precision_epsilon(const std::string& precision) {
  if (precision == "mp50") return 1e-49;
  if (precision == "float128") return 1.93e-34;  // 2^-112
  return 2.22e-16;                               // 2^-52
}

// A scalar SDE must represent the time range in the run's precision: alpha and sigma finite and
// positive at both ends, and at t_end a noise-to-signal ratio sigma/alpha = e^{-lambda} of at
// least the precision's epsilon. Below it the noise the flow still removes is under one rounding
// of unit-scale states, so no solver (and no reference) can resolve the end of the flow: odeint's
// step control gives up there (VP-linear in double fails beyond t_end ~ 1e-35). Matrix SDEs
// (CLD, blurring) have no scalar lambda; their failures are reported by stage at run time.
void require_representable_times(const LinearSde<double>& sde, const ExperimentConfig& c) {
  const auto* scalar = dynamic_cast<const ScalarSde<double>*>(&sde);
  if (scalar == nullptr) return;
  for (const auto& [field, t] : {std::pair<const char*, double>{"time.t_start", c.t_start},
                                 std::pair<const char*, double>{"time.t_end", c.t_end}}) {
    const double a = scalar->alpha(t), s = scalar->sigma(t);
    require(std::isfinite(a) && a > 0 && std::isfinite(s) && s > 0, field, t,
            "the SDE " + sde.name() + " cannot represent this time in double: alpha(t) = " +
                to_text(a) + ", sigma(t) = " + to_text(s) + " (both must be finite and positive)");
  }
  const double eps = precision_epsilon(c.precision);
  const double ratio = scalar->sigma(c.t_end) / scalar->alpha(c.t_end);
  if (!(ratio >= eps)) {
    // The bound rounded up to three significant digits (so that it passes as printed).
    const double exact_min = scalar->t_of_lambda(-std::log(eps));
    const double unit = std::pow(10.0, std::floor(std::log10(exact_min)) - 2);
    char t_min[32];
    std::snprintf(t_min, sizeof t_min, "%.3g", std::ceil(exact_min / unit) * unit);
    throw InputError("time.t_end", to_text(c.t_end),
                     "sigma(t_end) / alpha(t_end) = " + to_text(ratio) +
                         " underflows the run's precision (" + c.precision + ", epsilon " +
                         to_text(eps) +
                         "): the noise left at t_end is below one rounding of the states, so "
                         "the end of the flow cannot be resolved; use time.t_end >= " +
                         std::string(t_min) + " (where sigma / alpha = epsilon)" +
                         (c.precision == "mp50" ? "" : ", or precision \"mp50\""));
  }
}

void parse_time(const Fields& f, const LinearSde<double>& sde, ExperimentConfig& c) {
  require(f.has("time"), "time", "(missing)", "is required");
  const Fields t(f.raw("time"), "time", {"t_start", "t_end", "grid", "rho", "times"});
  c.grid.kind = t.text("grid", "logsnr", grid_names());
  c.t_start = to_double(t.number<double>("t_start", to_double(sde.t_max())));
  c.t_end = to_double(t.number<double>("t_end", 1e-3));
  c.grid.rho = to_double(t.number<double>("rho", 7.0));
  if (c.grid.kind == "list") {
    const Vec<double> times = t.vector<double>("times");
    c.grid.times.assign(times.data(), times.data() + times.size());
    c.t_start = c.grid.times.front();
    c.t_end = c.grid.times.back();
  }
  // The grid builder checks t_end > 0, t_start > t_end, t_start <= T and the grid's needs.
  make_time_grid<double>(sde, c.grid, c.t_start, c.t_end, 2);
  require_representable_times(sde, c);
}

void parse_init(const Fields& f, const LinearSde<double>& sde, ExperimentConfig& c) {
  require(f.has("init"), "init", "(missing)", "is required");
  const Fields in(f.raw("init"), "init", {"points", "count", "seed"});
  if (in.has("points")) {
    if (in.has("count"))
      throw InputError("init.count", in.raw("count").dump(),
                       "give either init.points or init.count, not both");
    const Mat<double> points = in.matrix<double>("points");
    require(points.cols() == c.state_dim, "init.points[0]", in.raw("points")[0].dump(),
            "needs " + std::to_string(c.state_dim) + " coordinates (the state dimension of " +
                sde.name() + ")");
    for (Eigen::Index r = 0; r < points.rows(); ++r) {
      std::vector<double> point(static_cast<size_t>(points.cols()));
      for (Eigen::Index k = 0; k < points.cols(); ++k) point[k] = points(r, k);
      c.init_points.push_back(std::move(point));
    }
    return;
  }
  c.init_count = in.integer("count");
  require(c.init_count >= 1 && c.init_count <= 100000000, "init.count", c.init_count,
          "must be between 1 and 100000000");
  // Whether the run fits this machine's memory is decided by its estimate before it runs
  // (require_memory_fits, run.cpp), not by a fixed cap; this bound only keeps counts in range.
  const double s = to_double(in.number<double>("seed", static_cast<double>(c.seed)));
  // Bounded like "seed": casting a larger double to uint64_t is UB (found by tests/fuzz).
  require(s >= 0 && s == std::floor(s) && s < 9e15, "init.seed", s,
          "must be a non-negative integer");
  c.init_seed = static_cast<std::uint64_t>(s);
}

// One solver spec against the run: kind, labels, SDE and grid.
void check_solver(const SolverInfo& info, const nlohmann::json& spec, const std::string& path,
                  const LinearSde<double>& sde, bool allows_adaptive,
                  const std::vector<SolverInfo>& earlier, const ExperimentConfig& c) {
  require(!info.adaptive || allows_adaptive, path, spec.dump(),
          "is adaptive: convergence runs need fixed steps (set \"adaptive\": false, or use "
          "kind \"work-precision\")");
  require(!info.label.empty() && info.label != "." && info.label != "..", path + ".label",
          info.label, "must name an HDF5 group: not empty, \".\" or \"..\"");
  require(info.label.find('/') == std::string::npos, path + ".label", info.label,
          "must not contain '/' (it names an HDF5 group)");
  for (const SolverInfo& other : earlier)
    require(other.label != info.label, path, info.label, "appears twice (give one a \"label\")");
  if (info.scalar_sde_only && !dynamic_cast<const ScalarSde<double>*>(&sde)) {
    // An odeint solver stepping in lambda: scalar SDEs only, but it can integrate in t.
    const bool in_lambda = spec.is_object() && spec.value("variable", std::string("t")) == "lambda";
    throw InputError(path, info.label,
                     "needs a scalar SDE (alpha, sigma, lambda), not " + sde.name() +
                         (in_lambda ? "; integrate in t (\"variable\": \"t\")"
                                    : "; use gddim, paddim or an odeint solver"));
  }
  // Fixed-weight multistep methods assume equal steps in their variable.
  require(info.uniform_grid.empty() || c.grid.kind == info.uniform_grid, "time.grid", c.grid.kind,
          info.label + " (" + path + ") needs steps uniform in its variable: grid \"" +
              info.uniform_grid + "\"");
}

std::vector<SolverInfo> parse_solvers(const Fields& f, const LinearSde<double>& sde,
                                      bool allows_adaptive, ExperimentConfig& c) {
  require(f.has("solvers"), "solvers", "(missing)", "is required");
  const nlohmann::json& solvers = f.raw("solvers");
  require(solvers.is_array() && !solvers.empty(), "solvers", solvers.dump(),
          "must be a non-empty array of solver names or objects");
  std::vector<SolverInfo> infos;
  for (size_t i = 0; i < solvers.size(); ++i) {
    const std::string path = "solvers[" + std::to_string(i) + "]";
    const SolverInfo info = make_solver<double>(solvers[i], path)->info();
    check_solver(info, solvers[i], path, sde, allows_adaptive, infos, c);
    infos.push_back(info);
    c.solvers.push_back(solvers[i]);
  }
  return infos;
}

void parse_nfe(const Fields& f, const std::vector<SolverInfo>& infos, ExperimentConfig& c) {
  const bool any_fixed =
      std::any_of(infos.begin(), infos.end(), [](const SolverInfo& i) { return !i.adaptive; });
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
    for (const SolverInfo& info : infos)
      require(info.adaptive || c.nfe.front() >= info.evals_per_step, "nfe[0]", c.nfe.front(),
              "is below the minimum of " + info.label + " (" + std::to_string(info.evals_per_step) +
                  " evaluations per step)");
  }
  c.timing_repeats = f.has("timing_repeats") ? f.integer("timing_repeats") : 1;
  require(c.timing_repeats >= 1 && c.timing_repeats <= 100, "timing_repeats", c.timing_repeats,
          "must be between 1 and 100 (each cell's solve is run this many times and its wall "
          "time is the best of them)");
  c.store_states = f.boolean("store_states", true);
  require(c.store_states || end_point_kind(c.kind), "store_states", "false",
          "applies to kinds \"convergence\" and \"work-precision\" only (the states are "
          "other kinds' results)");
  c.fit_levels = f.has("fit_levels") ? f.integer("fit_levels") : 4;
  require(c.fit_levels >= 2 && c.fit_levels <= 20, "fit_levels", c.fit_levels,
          "must be between 2 and 20");
  require(!f.has("fit_levels") || c.nfe.empty() || c.fit_levels <= static_cast<int>(c.nfe.size()),
          "fit_levels", c.fit_levels,
          "exceeds the " + std::to_string(c.nfe.size()) + " NFE levels in \"nfe\"");
}

// The normalised config: every default written out.
nlohmann::json normalised(const Fields& f, const ExperimentConfig& c, bool has_cells) {
  nlohmann::json n = {
      {"name", c.name},           {"kind", c.kind},         {"sde", c.sde},
      {"target", c.target},       {"denoiser", c.denoiser}, {"precision", c.precision},
      {"reference", c.reference}, {"seed", c.seed}};
  if (f.has("description")) n["description"] = f.text("description");
  if (!has_cells) return n;
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
  return n;
}

}  // namespace

bool exact_reference_in_run_precision(const ExperimentConfig& c) {
  if (c.reference == "exact-double") return true;
  return c.reference == "auto" && c.precision == "double" && c.scalar_sde &&
         end_point_kind(c.kind) && c.data_dim >= exact_in_double_min_dim;
}

ExperimentConfig parse_experiment(const nlohmann::json& j) {
  require_bounded_depth(j, "config");
  ExperimentConfig c;
  // The common fields, then every kind's own (a field of another kind is refused by name in
  // parse_common).
  std::vector<std::string> keys = {
      "name",        "kind", "sde",         "target",     "denoiser",
      "time",        "init", "solvers",     "nfe",        "precision",
      "reference",   "seed", "description", "fit_levels", "timing_repeats",
      "store_states"};
  for_each_kind([&](const auto& kind) {
    for (const std::string& field : kind.own_fields())
      if (std::find(keys.begin(), keys.end(), field) == keys.end()) keys.push_back(field);
  });
  const Fields f(j, "config", keys);
  parse_common(f, c);
  with_kind(c.kind, [&](const auto& kind) {
    std::vector<SolverInfo> infos;
    if constexpr (std::decay_t<decltype(kind)>::has_cells) {
      const auto sde = make_sde<double>(c.sde, c.data_dim, "sde");
      parse_time(f, *sde, c);
      parse_init(f, *sde, c);
      infos = parse_solvers(f, *sde, kind.allows_adaptive, c);
      parse_nfe(f, infos, c);
    }
    kind.validate(f, c, infos);
    c.normalized = normalised(f, c, kind.has_cells);
    if (kind.has_cells) {
      c.normalized["fit_levels"] = c.fit_levels;
      c.normalized["timing_repeats"] = c.timing_repeats;
      // Written only when off, so that the stored configs of earlier results stay as they were.
      if (!c.store_states) c.normalized["store_states"] = false;
    }
    kind.normalise(c, c.normalized);
  });
  return c;
}

ExperimentConfig parse_experiment_text(const std::string& text, const std::string& source) {
  const nlohmann::json j = parse_json_text(text, "config file", source);
  require(!j.is_discarded(), "config file", source, "is not valid JSON");
  return parse_experiment(j);
}

ExperimentConfig load_experiment(const std::string& path) {
  const std::optional<std::string> text = read_text_file(path);
  require(text.has_value(), "config file", path, "cannot be read");
  ExperimentConfig c = parse_experiment_text(*text, path);
  c.directory = std::filesystem::path(path).parent_path().string();
  return c;
}

std::string config_relative_path(const ExperimentConfig& c, const std::string& path) {
  const std::filesystem::path p(path);
  if (p.is_absolute() || c.directory.empty()) return path;
  return (std::filesystem::path(c.directory) / p).string();
}

}  // namespace pflow
