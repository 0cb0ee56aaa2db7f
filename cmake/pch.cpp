// Empty source of the pflow_pch target, which only builds the shared precompiled header.
