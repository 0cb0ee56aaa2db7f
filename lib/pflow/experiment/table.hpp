// `pflow table`: a result file as a Markdown, LaTeX (booktabs and siunitx) or CSV table: one row
// per solver with its declared and fitted order and the chosen metric at each NFE.
#pragma once

#include <string>

namespace pflow {

std::string result_table(const std::string& path, const std::string& format,
                         const std::string& metric);

// Text for LaTeX with every special character escaped (\ ^ ~ as \textbackslash{} etc.,
// _ & % # $ { } with a backslash).
std::string latex_escape(const std::string& text);

}  // namespace pflow
