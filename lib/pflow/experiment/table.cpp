#include "pflow/experiment/table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "pflow/core/errors.hpp"
#include "pflow/experiment/h5.hpp"

namespace pflow {

namespace {

std::string number(const char* format, double v) {
  if (std::isnan(v)) return "failed";
  char buf[48];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// A number for siunitx (\num{1.23e-04} typesets 1.23 x 10^-4); NaN is a failed cell.
std::string latex_number(const char* format, double v) {
  if (std::isnan(v)) return "failed";
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
std::string work_precision_table(const h5::File& f, const std::string& format,
                                 const std::string& metric) {
  struct Row {
    std::string label, setting;
    double nfe, value, wall, index, tolerance;
  };
  std::vector<Row> rows;
  for (const std::string& label : f.children("/solvers")) {
    const std::string g = "/solvers/" + label;
    const auto nfe = f.read(g + "/nfe"), values = f.read(g + "/" + metric),
               tol = f.read(g + "/tolerance"), wall = f.read(g + "/wall_s");
    const double index = f.read_double(g, "index");
    for (size_t i = 0; i < nfe.size(); ++i)
      rows.push_back({label, std::isnan(tol[i]) ? "fixed" : "tol " + number("%.0e", tol[i]), nfe[i],
                      values[i], wall[i], index + 1e-6 * static_cast<double>(i), tol[i]});
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.index < b.index; });
  const bool with_wall = metric != "wall_s";
  const char* value_format = metric == "wall_s" ? "%.3g" : "%.2e";
  std::ostringstream out;
  if (format == "markdown") {
    out << "| solver | setting | NFE | " << metric << (with_wall ? " | wall_s" : "") << " |\n"
        << "|---|---|---|---|" << (with_wall ? "---|" : "") << "\n";
    for (const Row& r : rows) {
      out << "| " << r.label << " | " << r.setting << " | " << number("%.0f", r.nfe) << " | "
          << number(value_format, r.value) << " |";
      if (with_wall) out << " " << number("%.3g", r.wall) << " |";
      out << "\n";
    }
  } else if (format == "latex") {
    out << latex_requires << "\\begin{tabular}{llrr" << (with_wall ? "r" : "") << "}\n\\toprule\n"
        << "solver & setting & NFE & \\texttt{" << latex_escape(metric) << "}"
        << (with_wall ? " & wall time (s)" : "") << " \\\\\n\\midrule\n";
    for (const Row& r : rows) {
      const std::string setting =
          r.setting == "fixed" ? "fixed steps" : "tolerance " + latex_number("%.0e", r.tolerance);
      out << "\\texttt{" << latex_escape(r.label) << "} & " << setting << " & "
          << latex_number("%.0f", r.nfe) << " & " << latex_number(value_format, r.value);
      if (with_wall) out << " & " << latex_number("%.3g", r.wall);
      out << " \\\\\n";
    }
    out << "\\bottomrule\n\\end{tabular}\n";
  } else {
    out << "solver,setting,nfe," << metric << (with_wall ? ",wall_s" : "") << "\n";
    for (const Row& r : rows) {
      out << csv_quote(r.label) << "," << r.setting << "," << number("%.0f", r.nfe) << ","
          << number("%.6e", r.value);
      if (with_wall) out << "," << number("%.6g", r.wall);
      out << "\n";
    }
  }
  return out.str();
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

std::string result_table(const std::string& path, const std::string& format,
                         const std::string& metric) {
  require(format == "markdown" || format == "latex" || format == "csv", "--format", format,
          "must be markdown, latex or csv");
  require(metric == "err_max" || metric == "err_rms" || metric == "wall_s", "--metric", metric,
          "must be err_max, err_rms or wall_s (stochastic results show err_rms and err_weak)");
  const h5::File f = h5::File::open(path);
  require(f.exists("/solvers"), path, "/solvers",
          "is missing: not a pflow convergence result (kernel results have no table)");
  const nlohmann::json config =
      nlohmann::json::parse(f.read_string("/", "config_json"), nullptr, false);
  require(!config.is_discarded() && config.contains("nfe"), path, "config_json",
          "is not a pflow experiment config");
  if (config.value("kind", "convergence") == "work-precision")
    return work_precision_table(f, format, metric);
  const std::vector<int> nfe = config["nfe"].get<std::vector<int>>();

  struct Row {
    std::string label;
    double declared, fitted;
    std::vector<double> values;
    double index;
  };
  std::vector<Row> rows;
  // Stochastic results: two rows per solver, the strong (mean-square, err_rms) and the weak
  // (moments, err_weak) error with their orders; wall_s keeps one row.
  const bool two_rows = config.value("kind", "convergence") == "stochastic" && metric != "wall_s";
  auto add_row = [&](const std::string& label, const std::string& g, const std::string& name,
                     const std::string& declared, const std::string& fitted, double index) {
    Row row{label, f.read_double(g, declared), f.read_double(g, fitted), f.read(g + "/" + name),
            index};
    require(row.values.size() == nfe.size(), path, g + "/" + name,
            "has " + std::to_string(row.values.size()) + " entries for " +
                std::to_string(nfe.size()) + " NFE values");
    rows.push_back(std::move(row));
  };
  for (const std::string& label : f.children("/solvers")) {
    const std::string g = "/solvers/" + label;
    const double index = f.read_double(g, "index");
    if (two_rows) {
      add_row(label + " strong", g, "err_rms", "declared_order", "fitted_order", index);
      add_row(label + " weak", g, "err_weak", "declared_weak_order", "fitted_weak_order",
              index + 0.5);
    } else {
      add_row(label, g, metric, "declared_order", "fitted_order", index);
    }
  }
  // The config's solver order (HDF5 lists groups alphabetically).
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.index < b.index; });

  const char* value_format = metric == "wall_s" ? "%.3g" : "%.2e";
  std::ostringstream out;
  if (format == "markdown") {
    out << "| solver | declared order | fitted order |";
    for (int n : nfe) out << " NFE " << n << " |";
    out << "\n|---|---|---|";
    for (size_t i = 0; i < nfe.size(); ++i) out << "---|";
    out << "\n";
    for (const Row& r : rows) {
      out << "| " << r.label << " | " << number("%.0f", r.declared) << " | "
          << (std::isnan(r.fitted) ? std::string("n/a") : number("%.2f", r.fitted)) << " |";
      for (double v : r.values) out << " " << number(value_format, v) << " |";
      out << "\n";
    }
  } else if (format == "latex") {
    // Two header rows: what the columns hold (the metric over the NFE columns), then the NFE.
    const size_t last = 3 + nfe.size();
    out << latex_requires << "\\begin{tabular}{lrr" << std::string(nfe.size(), 'r')
        << "}\n\\toprule\n"
        << " & declared & fitted & \\multicolumn{" << nfe.size() << "}{c}{\\texttt{"
        << latex_escape(metric) << "} at NFE} \\\\\n\\cmidrule(l){4-" << last << "}\n"
        << "solver & order & order";
    for (int n : nfe) out << " & " << latex_number("%.0f", n);
    out << " \\\\\n\\midrule\n";
    for (const Row& r : rows) {
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
    for (const Row& r : rows) {
      out << csv_quote(r.label) << "," << number("%.0f", r.declared) << ","
          << (std::isnan(r.fitted) ? std::string("") : number("%.4f", r.fitted));
      for (double v : r.values) out << "," << number(metric == "wall_s" ? "%.6g" : "%.6e", v);
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace pflow
