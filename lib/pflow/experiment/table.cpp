#include "pflow/experiment/table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "pflow/core/errors.hpp"
#include "pflow/core/json_fields.hpp"
#include "pflow/experiment/h5.hpp"
#include "pflow/experiment/kinds.hpp"

namespace pflow {

namespace {

// What a table shows, read from a result file or from a result in memory (the same numbers
// either way: the file stores the result's doubles).
struct SolverColumns {
  std::string label;
  double index = 0;  // position in the config (HDF5 lists groups alphabetically)
  bool adaptive = false;
  double declared = 0, fitted = 0, declared_weak = 0, fitted_weak = 0, fitted_weak_exact = 0;
  std::vector<double> nfe, tolerance, err_max, err_rms, err_weak, wall_s;
  std::vector<double> err_weak_exact;  // stochastic, mixture data: against exact moments
  // A learned or perturbed model: errors against the data's flow, and the knee (0: none).
  std::vector<double> err_total_max, err_total_rms;
  double knee_nfe = 0;
  std::vector<double> sw2, mean_log_p0;  // kind "sample"
  // Kind "inversion": the round-trip errors and their fitted order.
  std::vector<double> roundtrip_max, roundtrip_rms;
  double fitted_roundtrip = std::nan("");
  // Kind "interpolation": where the decoded path switches component, against the reference.
  std::vector<double> switch_error;
  double fitted_switch = std::nan("");
  // Kind "guidance": per cell (row) and scale (column).
  Mat<double> in_class, spread, sw2_scales;
  Mat<double> cfg_gap;  // a network's: its distance from the exact CFG flow (empty otherwise)
};
struct TableModel {
  TableLayout layout = TableLayout::per_solver;
  std::vector<int> nfe;  // the config's NFE ladder
  std::vector<SolverColumns> solvers;
  double model_error_max = std::nan("");  // NaN: the analytic model, no split
  // Kind "sample": the distance between two data samples, the data's mean log-likelihood.
  double sw2_floor = std::nan(""), sw2_floor_spread = std::nan(""), data_mean_log_p0 = std::nan("");
  // Kind "guidance": the scales, and per scale the tilted density's own class fraction and
  // spread and the floor of sw2.
  std::vector<double> scales, tilted_in_class, tilted_spread, scale_floor;
};

// A [m, S] dataset (or series of cells) as an m x S matrix.
Mat<double> rows_of(const std::vector<double>& values, size_t m, size_t width) {
  Mat<double> out(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(width));
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < width; ++j)
      out(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) =
          i * width + j < values.size() ? values[i * width + j] : std::nan("");
  return out;
}

TableLayout layout_of(const std::string& kind) {
  TableLayout layout = TableLayout::per_solver;
  with_kind(kind, [&](const auto& k) { layout = k.table_layout; });
  return layout;
}

TableModel model_from_file(const std::string& path) {
  const h5::File f = h5::File::open(path);
  require(f.exists("/solvers"), path, "/solvers",
          "is missing: not a pflow convergence result (kernel results have no table)");
  const nlohmann::json config =
      parse_json_text(f.read_string("/", "config_json"), path, "config_json");
  require(!config.is_discarded() && config.contains("nfe"), path, "config_json",
          "is not a pflow experiment config");
  TableModel m;
  m.layout = layout_of(config.value("kind", "convergence"));
  m.nfe = config["nfe"].get<std::vector<int>>();
  for (const std::string& label : f.children("/solvers")) {
    const std::string g = "/solvers/" + label;
    SolverColumns s;
    s.label = label;
    s.index = f.read_double(g, "index");
    s.declared = f.read_double(g, "declared_order");
    s.fitted = f.read_double(g, "fitted_order");
    s.nfe = f.read(g + "/nfe");
    s.tolerance = f.read(g + "/tolerance");
    s.err_max = f.read(g + "/err_max");
    s.err_rms = f.read(g + "/err_rms");
    s.wall_s = f.read(g + "/wall_s");
    s.adaptive = !s.tolerance.empty() && !std::isnan(s.tolerance[0]);
    if (f.exists(g + "/err_total_max")) {
      s.err_total_max = f.read(g + "/err_total_max");
      s.err_total_rms = f.read(g + "/err_total_rms");
      s.knee_nfe = f.read_double(g, "knee_nfe");
    }
    if (f.exists(g + "/mean_log_p0")) {  // kind sample (kind guidance has sw2 per scale)
      s.sw2 = f.read(g + "/sw2");
      s.mean_log_p0 = f.read(g + "/mean_log_p0");
    }
    if (f.exists(g + "/roundtrip_max")) {
      s.roundtrip_max = f.read(g + "/roundtrip_max");
      s.roundtrip_rms = f.read(g + "/roundtrip_rms");
      s.fitted_roundtrip = f.read_double(g, "roundtrip_fitted_order");
    }
    if (f.exists(g + "/in_class")) {
      const size_t m = s.nfe.size(), w = f.read("/reference/scales").size();
      s.in_class = rows_of(f.read(g + "/in_class"), m, w);
      s.spread = rows_of(f.read(g + "/spread"), m, w);
      s.sw2_scales = rows_of(f.read(g + "/sw2"), m, w);
      if (f.exists(g + "/exact_cfg_gap")) s.cfg_gap = rows_of(f.read(g + "/exact_cfg_gap"), m, w);
    }
    if (f.exists(g + "/switch_error")) {
      s.switch_error = f.read(g + "/switch_error");
      s.fitted_switch = f.read_double(g, "switch_fitted_order");
    }
    if (f.exists(g + "/err_weak")) {
      s.err_weak = f.read(g + "/err_weak");
      s.declared_weak = f.read_double(g, "declared_weak_order");
      s.fitted_weak = f.read_double(g, "fitted_weak_order");
    }
    if (f.exists(g + "/err_weak_exact")) {
      s.err_weak_exact = f.read(g + "/err_weak_exact");
      s.fitted_weak_exact = f.read_double(g, "fitted_weak_order_exact");
    }
    m.solvers.push_back(std::move(s));
  }
  std::sort(m.solvers.begin(), m.solvers.end(),
            [](const auto& a, const auto& b) { return a.index < b.index; });
  if (f.exists("/data")) {
    m.sw2_floor = f.read_double("/data", "sw2_floor");
    m.sw2_floor_spread = f.read_double("/data", "sw2_floor_spread");
    m.data_mean_log_p0 = f.read_double("/data", "mean_log_p0");
  }
  if (f.exists("/reference/scales")) {
    m.scales = f.read("/reference/scales");
    m.tilted_in_class = f.read("/reference/tilted_in_class");
    m.tilted_spread = f.read("/reference/tilted_spread");
    m.scale_floor = f.read("/reference/sw2_floor");
  }
  if (f.has_attribute("/reference", "model_error_max"))
    m.model_error_max = f.read_double("/reference", "model_error_max");
  return m;
}

TableModel model_from_result(const ExperimentResult& r) {
  TableModel m;
  m.layout = layout_of(r.config.kind);
  m.nfe = r.config.nfe;
  for (size_t i = 0; i < r.solvers.size(); ++i) {
    const SolverRun& run = r.solvers[i];
    SolverColumns s;
    s.label = run.label;
    s.index = static_cast<double>(i);
    s.adaptive = run.adaptive;
    s.declared = run.declared_order;
    s.fitted = run.fit.order;
    s.declared_weak = run.declared_weak_order;
    s.fitted_weak = run.weak_fit.order;
    s.fitted_weak_exact = run.weak_exact_fit.order;
    s.knee_nfe = static_cast<double>(run.knee_nfe);
    const bool inversion = r.config.kind == "inversion";
    const bool interpolation = r.config.kind == "interpolation";
    s.fitted_roundtrip = run.roundtrip_fit.order;
    s.fitted_switch = run.switch_fit.order;
    for (const CellResult& c : run.cells) {
      if (inversion) {
        s.roundtrip_max.push_back(c.roundtrip_max);
        s.roundtrip_rms.push_back(c.roundtrip_rms);
      }
      if (interpolation) s.switch_error.push_back(c.switch_error);
      if (r.config.kind == "guidance") {
        const size_t w = r.config.guidance.at("scales").size(),
                     row = static_cast<size_t>(&c - &run.cells[0]);
        const bool has_gap = std::any_of(run.cells.begin(), run.cells.end(), [](const auto& c) {
          return c.series.count("exact_cfg_gap") > 0;
        });
        if (row == 0) {
          s.in_class = s.spread = s.sw2_scales =
              Mat<double>::Constant(static_cast<Eigen::Index>(run.cells.size()),
                                    static_cast<Eigen::Index>(w), std::nan(""));
          if (has_gap) s.cfg_gap = s.in_class;
        }
        for (const auto& [key, target] :
             {std::pair<const char*, Mat<double>*>{"in_class", &s.in_class},
              {"spread", &s.spread},
              {"sw2", &s.sw2_scales},
              {"exact_cfg_gap", &s.cfg_gap}}) {
          if (target->size() == 0) continue;
          const auto it = c.series.find(key);
          if (!c.failed && it != c.series.end() && it->second.size() == w)
            target->row(static_cast<Eigen::Index>(row)) =
                Eigen::Map<const Vec<double>>(it->second.data(), static_cast<Eigen::Index>(w))
                    .transpose();
        }
      }
      if (!r.analytic_flow.empty()) {
        s.err_total_max.push_back(c.err_total_max);
        s.err_total_rms.push_back(c.err_total_rms);
      }
      s.nfe.push_back(static_cast<double>(c.nfe));
      s.tolerance.push_back(c.tolerance);
      s.err_max.push_back(c.err_max);
      s.err_rms.push_back(c.err_rms);
      s.err_weak.push_back(c.err_weak);
      const auto exact = c.series.find("weak_exact");
      s.err_weak_exact.push_back(
          exact != c.series.end() && !exact->second.empty() ? exact->second[0] : std::nan(""));
      s.wall_s.push_back(c.wall_s);
      s.sw2.push_back(c.sw2);
      s.mean_log_p0.push_back(c.mean_log_p0);
    }
    m.solvers.push_back(std::move(s));
  }
  if (!r.analytic_flow.empty()) m.model_error_max = r.model_error_max;
  for (const Table& t : r.tables) {
    if (t.path == "/reference/scales") m.scales = t.data;
    if (t.path == "/reference/tilted_in_class") m.tilted_in_class = t.data;
    if (t.path == "/reference/tilted_spread") m.tilted_spread = t.data;
    if (t.path == "/reference/sw2_floor") m.scale_floor = t.data;
  }
  m.sw2_floor = r.sw2_floor;
  m.sw2_floor_spread = r.sw2_floor_spread;
  m.data_mean_log_p0 = r.data_mean_log_p0;
  return m;
}

const std::vector<double>& metric_of(const SolverColumns& s, const std::string& metric) {
  if (metric == "err_total_max") return s.err_total_max;
  if (metric == "err_total_rms") return s.err_total_rms;
  if (metric == "sw2") return s.sw2;
  if (metric == "mean_log_p0") return s.mean_log_p0;
  if (metric == "roundtrip_max") return s.roundtrip_max;
  if (metric == "roundtrip_rms") return s.roundtrip_rms;
  if (metric == "switch_error") return s.switch_error;
  return metric == "err_max" ? s.err_max : metric == "err_rms" ? s.err_rms : s.wall_s;
}

std::string number(const char* format, double v) {
  if (std::isnan(v)) return "failed";
  char buf[48];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// A number for siunitx (\num{1.23e-04} typesets 1.23 x 10^-4); NaN is a failed cell.
std::string latex_number(const char* format, double v) {
  if (std::isnan(v)) return "failed";
  if (std::isinf(v)) return "$\\infty$";
  return "\\num{" + number(format, v) + "}";
}

// The preamble a LaTeX table needs, as its first line.
const char* latex_requires = "% requires \\usepackage{booktabs} and \\usepackage{siunitx}\n";

std::string csv_quote(const std::string& s) {
  if (s.find_first_of(",\"") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

// Work-precision results in long form: one row per cell (solver, setting, NFE, metric, and the
// wall time beside an error metric).
struct LongRow {
  std::string label;
  double tolerance, nfe, value, wall;
};

std::string format_long(const std::vector<LongRow>& rows, const std::string& format,
                        const std::string& metric) {
  const bool with_wall = metric != "wall_s";
  const char* value_format = metric == "wall_s" ? "%.3g" : "%.2e";
  auto setting = [](const LongRow& r) {
    return std::isnan(r.tolerance) ? std::string("fixed") : "tol " + number("%.0e", r.tolerance);
  };
  std::ostringstream out;
  if (format == "markdown") {
    out << "| solver | setting | NFE | " << metric << (with_wall ? " | wall_s" : "") << " |\n"
        << "|---|---|---|---|" << (with_wall ? "---|" : "") << "\n";
    for (const LongRow& r : rows) {
      out << "| " << r.label << " | " << setting(r) << " | " << number("%.0f", r.nfe) << " | "
          << number(value_format, r.value) << " |";
      if (with_wall) out << " " << number("%.3g", r.wall) << " |";
      out << "\n";
    }
  } else if (format == "latex") {
    out << latex_requires << "\\begin{tabular}{llrr" << (with_wall ? "r" : "")
        << "}\n\\toprule\nsolver & setting & NFE & \\texttt{" << latex_escape(metric) << "}"
        << (with_wall ? " & wall time (s)" : "") << " \\\\\n\\midrule\n";
    for (const LongRow& r : rows) {
      out << "\\texttt{" << latex_escape(r.label) << "} & "
          << (std::isnan(r.tolerance) ? std::string("fixed steps")
                                      : "tolerance " + latex_number("%.0e", r.tolerance))
          << " & " << latex_number("%.0f", r.nfe) << " & " << latex_number(value_format, r.value);
      if (with_wall) out << " & " << latex_number("%.3g", r.wall);
      out << " \\\\\n";
    }
    out << "\\bottomrule\n\\end{tabular}\n";
  } else {
    out << "solver,setting,nfe," << metric << (with_wall ? ",wall_s" : "") << "\n";
    for (const LongRow& r : rows) {
      out << csv_quote(r.label) << "," << setting(r) << "," << number("%.0f", r.nfe) << ","
          << number("%.6e", r.value);
      if (with_wall) out << "," << number("%.6g", r.wall);
      out << "\n";
    }
  }
  return out.str();
}

std::string work_precision_table(const TableModel& m, const std::string& format,
                                 const std::string& metric) {
  std::vector<LongRow> rows;
  for (const SolverColumns& s : m.solvers) {
    const auto& values = metric_of(s, metric);
    for (size_t i = 0; i < s.nfe.size(); ++i)
      rows.push_back({s.label, s.tolerance[i], s.nfe[i], values[i], s.wall_s[i]});
  }
  return format_long(rows, format, metric);
}

// One row per solver (two for stochastic results: strong and weak), one column per NFE.
struct WideRow {
  std::string label;
  double declared, fitted;
  std::vector<double> values;
};

std::string format_wide(const std::vector<WideRow>& rows, const std::vector<int>& nfe,
                        const std::string& format, const std::string& metric) {
  const char* value_format = metric == "wall_s" ? "%.3g" : "%.2e";
  std::ostringstream out;
  if (format == "markdown") {
    out << "| solver | declared order | fitted order |";
    for (int n : nfe) out << " NFE " << n << " |";
    out << "\n|---|---|---|";
    for (size_t i = 0; i < nfe.size(); ++i) out << "---|";
    out << "\n";
    for (const WideRow& r : rows) {
      out << "| " << r.label << " | " << number("%.0f", r.declared) << " | "
          << (std::isnan(r.fitted) ? std::string("n/a") : number("%.2f", r.fitted)) << " |";
      for (double v : r.values) out << " " << number(value_format, v) << " |";
      out << "\n";
    }
  } else if (format == "latex") {
    // Two header rows: what the columns hold (the metric over the NFE columns), then the NFE.
    out << latex_requires << "\\begin{tabular}{lrr" << std::string(nfe.size(), 'r')
        << "}\n\\toprule\n & declared & fitted & \\multicolumn{" << nfe.size() << "}{c}{\\texttt{"
        << latex_escape(metric) << "} at NFE} \\\\\n\\cmidrule(l){4-" << 3 + nfe.size()
        << "}\nsolver & order & order";
    for (int n : nfe) out << " & " << latex_number("%.0f", n);
    out << " \\\\\n\\midrule\n";
    for (const WideRow& r : rows) {
      out << "\\texttt{" << latex_escape(r.label) << "} & " << latex_number("%.0f", r.declared)
          << " & " << (std::isnan(r.fitted) ? std::string("--") : latex_number("%.2f", r.fitted));
      for (double v : r.values) out << " & " << latex_number(value_format, v);
      out << " \\\\\n";
    }
    out << "\\bottomrule\n\\end{tabular}\n";
  } else {
    out << "solver,declared_order,fitted_order";
    for (int n : nfe) out << ",nfe_" << n;
    out << "\n";
    for (const WideRow& r : rows) {
      out << csv_quote(r.label) << "," << number("%.0f", r.declared) << ","
          << (std::isnan(r.fitted) ? std::string("") : number("%.4f", r.fitted));
      for (double v : r.values) out << "," << number(metric == "wall_s" ? "%.6g" : "%.6e", v);
      out << "\n";
    }
  }
  return out.str();
}

// The error split of a learned or perturbed model's run (markdown): the model error, and per
// solver the knee (the smallest NFE from which the discretisation error stays below the model
// error), the
// discretisation and total errors there, and the total error at the largest NFE.
std::string split_table(const TableModel& m) {
  std::ostringstream out;
  out << "\nmodel error (the model's flow against the data's, max over particles and "
         "coordinates): "
      << number("%.3e", m.model_error_max)
      << "\n\n| solver | knee NFE | err_max at the knee | err_total_max at the knee | "
         "err_total_max at the largest NFE |\n|---|---|---|---|---|\n";
  for (const SolverColumns& s : m.solvers) {
    out << "| " << s.label << " | ";
    const auto at = std::find(s.nfe.begin(), s.nfe.end(), s.knee_nfe);
    if (s.knee_nfe == 0 || at == s.nfe.end()) {
      out << "not reached | | |";
    } else {
      const size_t i = static_cast<size_t>(at - s.nfe.begin());
      out << number("%.0f", s.knee_nfe) << " | " << number("%.2e", s.err_max[i]) << " | "
          << number("%.2e", s.err_total_max[i]) << " |";
    }
    out << " "
        << (s.err_total_max.empty() ? std::string("") : number("%.2e", s.err_total_max.back()))
        << " |\n";
  }
  return out.str();
}

// Kind "sample": one row per solver of sw2 (or mean_log_p0, or wall_s) at each NFE, and in
// markdown the floor (two data samples) or the fresh data's own log-likelihood below it.
std::string sample_table(const TableModel& m, const std::string& format,
                         const std::string& metric) {
  require(metric == "sw2" || metric == "mean_log_p0" || metric == "wall_s", "--metric", metric,
          "must be sw2, mean_log_p0 or wall_s for a result of kind \"sample\"");
  std::vector<WideRow> rows;
  for (const SolverColumns& s : m.solvers)
    rows.push_back({s.label, s.declared, std::nan(""), metric_of(s, metric)});
  std::string table = format_wide(rows, m.nfe, format, metric);
  if (format != "markdown") return table;
  if (metric == "sw2")
    table += "\nfloor (sw2 between two fresh data samples of the same size): " +
             number("%.2e", m.sw2_floor) +
             " (spread of one pair: " + number("%.1e", m.sw2_floor_spread) + ")\n";
  if (metric == "mean_log_p0")
    table +=
        "\nfresh data's own mean log-likelihood under p_0: " + number("%.4f", m.data_mean_log_p0) +
        "\n";
  return table;
}

// Kind "guidance": one row per solver, NFE and scale: the samples' class fraction, spread and
// sw2 beside the tilted density's own class fraction and spread and the floor of sw2 (and for a
// network the RMS distance of its samples from the exact CFG flow's).
std::string guidance_table(const TableModel& m, const std::string& format) {
  std::ostringstream out;
  const bool gap = std::any_of(m.solvers.begin(), m.solvers.end(),
                               [](const SolverColumns& s) { return s.cfg_gap.size() > 0; });
  std::vector<std::string> columns = {
      "solver", "NFE",           "w",   "in_class", "tilted in_class",
      "spread", "tilted spread", "sw2", "sw2 floor"};
  if (gap) columns.push_back("gap to exact CFG");
  const bool csv = format == "csv", latex = format == "latex";
  const std::string sep = csv ? "," : latex ? " & " : " | ";
  if (latex)
    out << latex_requires << "\\begin{tabular}{l" << std::string(columns.size() - 1, 'r')
        << "}\n\\toprule\n";
  for (size_t i = 0; i < columns.size(); ++i)
    out << (i == 0 ? (csv || latex ? "" : "| ") : sep) << columns[i];
  std::string rule = "|";
  for (size_t i = 0; i < columns.size(); ++i) rule += "---|";
  out << (csv ? "\n" : latex ? " \\\\\n\\midrule\n" : " |\n" + rule + "\n");
  for (const SolverColumns& s : m.solvers)
    for (Eigen::Index i = 0; i < s.in_class.rows(); ++i)
      for (size_t k = 0; k < m.scales.size(); ++k) {
        const auto j = static_cast<Eigen::Index>(k);
        const std::string label = latex ? "\\texttt{" + latex_escape(s.label) + "}"
                                  : csv ? csv_quote(s.label)
                                        : s.label;
        out << (csv || latex ? "" : "| ") << label << sep
            << number("%.0f", s.nfe[static_cast<size_t>(i)]) << sep << number("%g", m.scales[k])
            << sep << number("%.4f", s.in_class(i, j)) << sep
            << number("%.4f", m.tilted_in_class[k]) << sep << number("%.4f", s.spread(i, j)) << sep
            << number("%.4f", m.tilted_spread[k]) << sep << number("%.3e", s.sw2_scales(i, j))
            << sep << number("%.3e", m.scale_floor[k]);
        if (gap) out << sep << number("%.3e", s.cfg_gap.size() ? s.cfg_gap(i, j) : std::nan(""));
        out << (csv ? "\n" : latex ? " \\\\\n" : " |\n");
      }
  if (latex) out << "\\bottomrule\n\\end{tabular}\n";
  return out.str();
}

std::string table_of(const TableModel& m, const std::string& format, std::string metric) {
  require(format == "markdown" || format == "latex" || format == "csv", "--format", format,
          "must be markdown, latex or csv");
  if (metric.empty()) metric = m.layout == TableLayout::samples ? "sw2" : "err_max";
  if (m.layout == TableLayout::samples) return sample_table(m, format, metric);
  if (m.layout == TableLayout::guidance) {
    require(metric == "err_max" || metric == "sw2", "--metric", metric,
            "does not apply to a result of kind \"guidance\": its table shows in_class, spread "
            "and sw2 per scale");
    return guidance_table(m, format);
  }
  const bool split = !std::isnan(m.model_error_max);
  const bool roundtrip = !m.solvers.empty() && !m.solvers[0].roundtrip_max.empty();
  const bool switches = !m.solvers.empty() && !m.solvers[0].switch_error.empty();
  require(metric == "err_max" || metric == "err_rms" || metric == "wall_s" ||
              (split && (metric == "err_total_max" || metric == "err_total_rms")) ||
              (roundtrip && (metric == "roundtrip_max" || metric == "roundtrip_rms")) ||
              (switches && metric == "switch_error"),
          "--metric", metric,
          "must be err_max, err_rms or wall_s, or for a learned or perturbed model's run "
          "err_total_max or err_total_rms, for an inversion roundtrip_max or roundtrip_rms, for "
          "an interpolation switch_error (stochastic results show err_rms and err_weak; sample "
          "results sw2 and mean_log_p0)");
  const bool roundtrip_metric = metric == "roundtrip_max" || metric == "roundtrip_rms";
  if (m.layout == TableLayout::per_cell) return work_precision_table(m, format, metric);
  // Stochastic results: two rows per solver, the strong (mean-square, err_rms) and the weak
  // (moments, err_weak) error with their orders; wall_s keeps one row.
  const bool two_rows = m.layout == TableLayout::strong_and_weak && metric != "wall_s";
  std::vector<WideRow> rows;
  for (const SolverColumns& s : m.solvers) {
    if (two_rows) {
      rows.push_back({s.label + " strong", s.declared, s.fitted, s.err_rms});
      rows.push_back({s.label + " weak", s.declared_weak, s.fitted_weak, s.err_weak});
      const bool has_exact = std::any_of(s.err_weak_exact.begin(), s.err_weak_exact.end(),
                                         [](double e) { return !std::isnan(e); });
      if (has_exact && s.err_weak_exact.size() == s.err_weak.size())
        rows.push_back(
            {s.label + " weak vs p", s.declared_weak, s.fitted_weak_exact, s.err_weak_exact});
    } else {
      const double fitted = roundtrip_metric           ? s.fitted_roundtrip
                            : metric == "switch_error" ? s.fitted_switch
                                                       : s.fitted;
      rows.push_back({s.label, s.declared, fitted, metric_of(s, metric)});
    }
    require(rows.back().values.size() == m.nfe.size(), "result", s.label,
            "has " + std::to_string(rows.back().values.size()) + " entries for " +
                std::to_string(m.nfe.size()) + " NFE values");
  }
  std::string table = format_wide(rows, m.nfe, format, metric);
  if (split && format == "markdown" && m.layout == TableLayout::per_solver) table += split_table(m);
  return table;
}

}  // namespace

std::string latex_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '\\':
        out += "\\textbackslash{}";
        break;
      case '^':
        out += "\\textasciicircum{}";
        break;
      case '~':
        out += "\\textasciitilde{}";
        break;
      case '_':
      case '&':
      case '%':
      case '#':
      case '$':
      case '{':
      case '}':
        out += '\\';
        out += ch;
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string elbo_table(const std::map<std::string, std::vector<double>>& columns,
                       const std::string& format) {
  struct Column {
    const char *path, *markdown, *latex, *csv, *number_format;
  };
  const Column all[] = {
      {"/elbo/T", "T", "$T$", "T", "%.0f"},
      {"/elbo/prior", "L_T", "$L_T$", "prior", "%.4g"},
      {"/elbo/transitions", "sum L_{t-1}", "$\\sum L_{t-1}$", "transitions", "%.6g"},
      {"/elbo/decoder", "L_0", "$L_0$", "decoder", "%.6g"},
      {"/elbo/negative_elbo", "-ELBO", "$-$ELBO", "negative_elbo", "%.6g"},
      {"/elbo/mc_negative_elbo", "-ELBO (Monte Carlo)", "$-$ELBO (MC)", "mc_negative_elbo", "%.6g"},
      {"/elbo/mc_standard_error", "standard error", "s.e.", "mc_standard_error", "%.2g"},
      {"/elbo/log_likelihood", "E log p_0", "$E \\log p_0$", "log_likelihood", "%.6g"},
      {"/elbo/gap", "gap", "gap", "gap", "%.4g"}};
  const auto rows = columns.find("/elbo/T");
  require(rows != columns.end(), "result", "/elbo/T", "is missing: not an elbo result");
  std::ostringstream out;
  const bool csv = format == "csv", latex = format == "latex";
  if (latex)
    out << latex_requires << "\\begin{tabular}{" << std::string(9, 'r') << "}\n\\toprule\n";
  for (size_t k = 0; k < 9; ++k) {
    const char* name = csv ? all[k].csv : latex ? all[k].latex : all[k].markdown;
    out << (k == 0 ? (csv || latex ? "" : "| ") : csv ? "," : latex ? " & " : " | ") << name;
  }
  out << (csv     ? "\n"
          : latex ? " \\\\\n\\midrule\n"
                  : " |\n|---|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < rows->second.size(); ++i) {
    for (size_t k = 0; k < 9; ++k) {
      const auto column = columns.find(all[k].path);
      const double v =
          column != columns.end() && i < column->second.size() ? column->second[i] : std::nan("");
      // NaN: a closed form that does not exist (a mixture's), not a failure.
      const std::string text = std::isnan(v) ? "n/a"
                               : latex       ? latex_number(all[k].number_format, v)
                                             : number(all[k].number_format, v);
      out << (k == 0 ? (csv || latex ? "" : "| ") : csv ? "," : latex ? " & " : " | ") << text;
    }
    out << (csv ? "\n" : latex ? " \\\\\n" : " |\n");
  }
  if (latex) out << "\\bottomrule\n\\end{tabular}\n";
  return out.str();
}

std::string result_table(const std::string& path, const std::string& format,
                         const std::string& metric) {
  require(format == "markdown" || format == "latex" || format == "csv", "--format", format,
          "must be markdown, latex or csv");
  {
    const h5::File f = h5::File::open(path);
    if (f.exists("/elbo/T")) {
      std::map<std::string, std::vector<double>> columns;
      for (const char* name : {"T", "prior", "transitions", "decoder", "negative_elbo",
                               "mc_negative_elbo", "mc_standard_error", "log_likelihood", "gap"}) {
        const std::string dataset = std::string("/elbo/") + name;
        if (f.exists(dataset)) columns[dataset] = f.read(dataset);
      }
      return elbo_table(columns, format);
    }
  }
  return table_of(model_from_file(path), format, metric);
}

std::string result_table(const ExperimentResult& result, const std::string& format,
                         const std::string& metric) {
  return table_of(model_from_result(result), format, metric);
}

std::string brief_report(const ExperimentResult& r, double seconds) {
  double CellResult::*error = &CellResult::err_max;  // the kind's primary error
  std::string error_label;
  with_kind(r.config.kind, [&](const auto& kind) {
    error = kind.primary_error;
    error_label = kind.primary_label;
  });
  size_t cells = 0, failed = 0;
  for (const SolverRun& s : r.solvers)
    for (const CellResult& c : s.cells) {
      ++cells;
      failed += c.failed;
    }
  std::ostringstream out;
  out << "pflow run " << r.config.name << ": kind " << r.config.kind << ", " << r.solvers.size()
      << " solvers, " << cells << " cells (" << failed << " failed), " << r.particles
      << " particles, " << r.config.precision << "; reference: " << r.reference_method << "; "
      << number("%.1f", seconds) << " s\n";
  if (!std::isnan(r.sw2_floor))
    out << "  sw2 floor " << number("%.3e", r.sw2_floor) << " +- "
        << number("%.1e", r.sw2_floor_spread) << " (two fresh data samples of " << r.particles
        << " points, RMS over " << r.config.replicates << " pairs)\n";
  if (!r.analytic_flow.empty())
    out << "  model error " << number("%.3e", r.model_error_max)
        << " (the model's flow against the data's: " << r.analytic_method << ")\n";
  for (const SolverRun& s : r.solvers) {
    // The smallest error reached and where; the fitted order against the declared one.
    double best = std::nan("");
    long best_nfe = 0;
    size_t failures = 0;
    for (const CellResult& c : s.cells) {
      failures += c.failed;
      const double e = c.*error;
      if (!c.failed && !(e >= best)) {
        best = e;
        best_nfe = c.nfe;
      }
    }
    out << "  " << s.label << ": declared order " << s.declared_order << ", fitted "
        << (std::isnan(s.fit.order) ? std::string("n/a") : number("%.2f", s.fit.order)) << ", "
        << error_label << " " << number("%.2e", best) << " at NFE " << best_nfe;
    if (!r.analytic_flow.empty())
      out << ", knee " << (s.knee_nfe ? "at NFE " + std::to_string(s.knee_nfe) : "not reached");
    if (failures) out << ", " << failures << " failed";
    out << "\n";
  }
  return out.str();
}

}  // namespace pflow
