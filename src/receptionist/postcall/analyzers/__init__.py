"""Call analyzers: offline (rules) and Gemini, and the schema they share."""
