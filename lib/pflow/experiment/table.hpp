// `pflow table`: a result as a Markdown, LaTeX (booktabs and siunitx) or CSV table: one row per
// solver with its declared and fitted order and the chosen metric at each NFE (work-precision
// results: one row per cell). From a result file, or from a result in memory (`pflow run`'s
// summary): the same text either way.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pflow/experiment/run.hpp"

namespace pflow {

// `metric` is err_max, err_rms, wall_s, err_total_max, err_total_rms (a learned or perturbed
// model's run), sw2 or mean_log_p0 (kind "sample"); empty: the kind's own (sw2 for kind
// "sample", err_max otherwise).
std::string result_table(const std::string& path, const std::string& format,
                         const std::string& metric);
std::string result_table(const ExperimentResult& result, const std::string& format,
                         const std::string& metric);

// Kind "elbo": one row per chain length T (L_T, the sum of the L_{t-1}, L_0, the bound in closed
// form and by Monte Carlo with its standard error, E log p_0 and the gap), from the /elbo/
// datasets by name (a result file's or a result's tables).
std::string elbo_table(const std::map<std::string, std::vector<double>>& columns,
                       const std::string& format);
// A brief report of a finished run (one line for the run, one per solver: declared and fitted
// order, smallest error and its NFE, failed cells), `seconds` its wall time.
std::string brief_report(const ExperimentResult& result, double seconds);

// Text for LaTeX with every special character escaped (\ ^ ~ as \textbackslash{} etc.,
// _ & % # $ { } with a backslash).
std::string latex_escape(const std::string& text);

}  // namespace pflow
